using System.Globalization;
using Collab.Client;

namespace CollabLoad;

/// <summary>The workloads the harness can drive (see docs/PERFORMANCE.md for what each measures).</summary>
public enum Workload
{
    Hot,
    Many,
    Idle,
    Cold,
    Large,
    Editor,
}

/// <summary>The command line, parsed. Every default keeps a run short (about 15 s) and bounded.</summary>
public sealed class LoadOptions
{
    public Workload Workload { get; set; }

    /// <summary>Server base URLs; clients are spread over them round-robin (a cluster redirects them to the owner).</summary>
    public List<Uri> Urls { get; } = [];

    public string? ServerDll { get; set; }
    public string? DataDir { get; set; }
    public List<string> ServerArgs { get; } = [];
    public Dictionary<string, string> ServerEnv { get; } = [];
    public int? ServerPid { get; set; }
    public string Sync { get; set; } = "Full";

    public TimeSpan Duration { get; set; } = TimeSpan.FromSeconds(15);
    public TimeSpan Warmup { get; set; } = TimeSpan.FromSeconds(5);
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public int? Clients { get; set; }
    public int? Writers { get; set; }
    public int? Docs { get; set; }
    public double? Rate { get; set; }
    public int? Connections { get; set; }
    public double SizeMb { get; set; } = 10;
    public int History { get; set; } = 100_000;
    public string Phase { get; set; } = "all";
    public bool Kill { get; set; }
    public int ConnectConcurrency { get; set; } = 32;
    public long MaxOps { get; set; } = 2_000_000;

    public string DocPrefix { get; set; } = "load-" + DateTime.UtcNow.ToString("HHmmss", CultureInfo.InvariantCulture);
    public CollabProtocol Protocol { get; set; } = CollabProtocol.MessagePack;

    /// <summary>Whether the documents are rich text (Quill deltas; writers also format ranges) instead of text.</summary>
    public bool RichText { get; set; }
    public int Seed { get; set; } = 12345;
    public string? JsonPath { get; set; }
    public List<Expectation> Expectations { get; } = [];
    public bool Quiet { get; set; }

    public const string Usage = """
        CollabLoad: load generator and checker for CollabServer.

        usage: CollabLoad <hot|many|idle|cold|large|editor> [options]

        target (one of):
          --url URL               a server or cluster node (repeat, or comma-separate, for several)
          --server-dll PATH       start the server itself (on a free 127.0.0.1 port), stop it at the end
            --data-dir DIR        its data directory (required with --server-dll; created if missing)
            --sync Full|Normal|Off  Collab:Sync of the server: whether it syncs before acknowledging (default Full)
            --server-arg ARG      extra server argument, e.g. --server-arg --Collab:OpWindow=2000
            --server-env N=V      environment variable for the server, e.g. DOTNET_ThreadPool_UnfairSemaphoreSpinLimit=0;
                                  the server also gets its collab.env (runtime settings); N= runs it without N
          --server-pid PID        the server's PID, to read its CPU time and RSS from /proc

        workload shape (defaults in brackets):
          --clients C             hot/large/editor: clients on the document [20]; many: clients per document [4]
          --writers W             hot/large/editor: how many of them write [10]
          --docs D                many [200], idle [1000], cold [20]
          --rate R                many: ops per second per client [5]
                                  editor: ops per second in all, paced per writer, each waiting for its ack [1000]
          --connections N         idle: joined connections [10000]
          --size MB               large: document size in MB of text [10]
          --history H             cold: ops of history per document [100000]
          --phase all|prepare|measure  cold: prepare documents, measure first text after a restart, or both [all]
          --kill                  cold: stop the server with SIGKILL instead of SIGTERM before measuring
          --duration T            measured time, e.g. 15s [15s]; --warmup T [5s]
          --max-ops N             stop writing after N ops in all [2000000]
          --doc-prefix P          document id prefix [load-HHMMSS]
          --protocol msgpack|json [msgpack]   --seed N [12345]   --connect-concurrency N [32]
          --type text|rich-text   hot/many/idle: the documents' type; rich-text writers insert 1-3 characters
                                  and one op in four formats a range (retain with an attribute) and types after it [text]

        output:
          --json FILE             write the result as JSON
          --expect EXPR           fail (exit 1) unless EXPR holds, e.g. p99<=25ms, ops>=5000, delivered>=99%,
                                  rss_per_conn<=16KiB, first_text_p99<=50ms, cpu_per_op<=0.15ms (repeatable)
          --quiet                 no live line

        exit code: 0 ok; 1 an expectation missed; 2 divergence or errors; 3 bad usage or setup failure.
        """;

    public static LoadOptions Parse(string[] args)
    {
        var options = new LoadOptions();
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            throw new UsageException("");
        }
        options.Workload = args[0].ToLowerInvariant() switch
        {
            "hot" => Workload.Hot,
            "many" => Workload.Many,
            "idle" => Workload.Idle,
            "cold" => Workload.Cold,
            "large" => Workload.Large,
            "editor" => Workload.Editor,
            var other => throw new UsageException($"unknown workload '{other}'"),
        };
        for (var i = 1; i < args.Length; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{name} needs a value");
            switch (name)
            {
                case "--url":
                    foreach (var part in Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                    {
                        options.Urls.Add(new Uri(part));
                    }
                    break;
                case "--server-dll": options.ServerDll = Value(); break;
                case "--data-dir": options.DataDir = Value(); break;
                case "--server-arg": options.ServerArgs.Add(Value()); break;
                case "--server-env":
                    var pair = Value().Split('=', 2);
                    options.ServerEnv[pair[0]] = pair.Length == 2 ? pair[1] : throw new UsageException("--server-env takes NAME=VALUE");
                    break;
                case "--server-pid": options.ServerPid = ParseInt(name, Value()); break;
                case "--sync": options.Sync = Value(); break;
                case "--duration": options.Duration = ParseTime(name, Value()); break;
                case "--warmup": options.Warmup = ParseTime(name, Value()); break;
                case "--clients": options.Clients = ParseInt(name, Value()); break;
                case "--writers": options.Writers = ParseInt(name, Value()); break;
                case "--docs": options.Docs = ParseInt(name, Value()); break;
                case "--rate": options.Rate = double.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--connections": options.Connections = ParseInt(name, Value()); break;
                case "--size": options.SizeMb = double.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--history": options.History = ParseInt(name, Value()); break;
                case "--phase": options.Phase = Value(); break;
                case "--kill": options.Kill = true; break;
                case "--max-ops": options.MaxOps = long.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--doc-prefix": options.DocPrefix = Value(); break;
                case "--protocol":
                    options.Protocol = Value().ToLowerInvariant() switch
                    {
                        "json" => CollabProtocol.Json,
                        "msgpack" or "messagepack" => CollabProtocol.MessagePack,
                        var p => throw new UsageException($"unknown protocol '{p}'"),
                    };
                    break;
                case "--seed": options.Seed = ParseInt(name, Value()); break;
                case "--type":
                    options.RichText = Value() switch
                    {
                        "text" => false,
                        "rich-text" => true,
                        var t => throw new UsageException($"unknown document type '{t}' (text or rich-text)"),
                    };
                    break;
                case "--connect-concurrency": options.ConnectConcurrency = ParseInt(name, Value()); break;
                case "--json": options.JsonPath = Value(); break;
                case "--expect": options.Expectations.Add(Expectation.Parse(Value())); break;
                case "--quiet": options.Quiet = true; break;
                default: throw new UsageException($"unknown option '{name}'");
            }
        }
        if (options.Urls.Count == 0 && options.ServerDll is null)
        {
            throw new UsageException("give --url or --server-dll");
        }
        if (options.ServerDll is not null && options.DataDir is null)
        {
            throw new UsageException("--server-dll needs --data-dir");
        }
        if (options.RichText && options.Workload is not (Workload.Hot or Workload.Many or Workload.Idle))
        {
            throw new UsageException("--type rich-text is for hot, many and idle");
        }
        if (options.Phase is not ("all" or "prepare" or "measure"))
        {
            throw new UsageException("--phase is all, prepare or measure");
        }
        if (options.Workload == Workload.Cold && options.Phase == "all" && options.ServerDll is null)
        {
            throw new UsageException("cold needs --server-dll (to restart the server itself), or run --phase prepare, restart the server, then --phase measure");
        }
        return options;
    }

    private static int ParseInt(string name, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0 ? n : throw new UsageException($"{name}: '{value}' is not a count");

    /// <summary>Parses 15s, 500ms, 2m or a plain number of seconds.</summary>
    public static TimeSpan ParseTime(string name, string value)
    {
        var (number, unit) = SplitUnit(value);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0)
        {
            throw new UsageException($"{name}: '{value}' is not a duration");
        }
        return unit switch
        {
            "" or "s" => TimeSpan.FromSeconds(n),
            "ms" => TimeSpan.FromMilliseconds(n),
            "m" or "min" => TimeSpan.FromMinutes(n),
            _ => throw new UsageException($"{name}: unknown unit '{unit}'"),
        };
    }

    internal static (string Number, string Unit) SplitUnit(string value)
    {
        var end = value.Length;
        while (end > 0 && (char.IsLetter(value[end - 1]) || value[end - 1] == '%'))
        {
            end--;
        }
        return (value[..end], value[end..].ToLowerInvariant());
    }
}

/// <summary>A command line that cannot run; the message says why.</summary>
public sealed class UsageException(string message) : Exception(message);
