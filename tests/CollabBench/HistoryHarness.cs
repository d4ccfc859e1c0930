using System.Diagnostics;
using System.Text;
using Collab.Ot;
using CollabServer;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabBench;

/// <summary>
/// Reading the past of a long history: builds a document of <c>--ops</c> ops (default
/// 1 000 000) through the server's own store, with snapshots as the server writes them (every
/// <c>max(SnapshotInterval, length/1024)</c> ops) and keeps them (<c>Collab:History:SnapshotSpacing</c>),
/// then times what <c>GET /api/docs/{id}?version=N</c> and <c>?at=T</c> do off the actor: open a
/// history reader, find the version, rebuild the text, close. Not a BenchmarkDotNet benchmark: the
/// database takes a minute to build and each read is one cold-connection sample.
/// </summary>
/// <remarks>
/// dotnet run -c Release --project tests/CollabBench -- history [--ops N] [--length L] [--spacing S] [--samples K] [--dir PATH] [--split]
/// (--dir keeps the database, for a server to be started on; --split also times the parts of a 5 000-op replay: rows, JSON, apply).
/// </remarks>
public static class HistoryHarness
{
    public static void Run(string[] args)
    {
        int Arg(string name, int fallback) => Array.IndexOf(args, name) is var i and >= 0 ? int.Parse(args[i + 1]) : fallback;
        var ops = Arg("--ops", 1_000_000);
        var length = Arg("--length", 100_000);
        var spacing = Arg("--spacing", new HistoryOptions().SnapshotSpacing);
        var samples = Arg("--samples", 300);
        var dirArg = Array.IndexOf(args, "--dir") is var d and >= 0 ? args[d + 1] : null;
        var dir = dirArg ?? Directory.CreateTempSubdirectory("collab-history-bench-").FullName;
        var options = new CollabOptions { DataDir = dir, Sync = SyncMode.Off, History = { SnapshotSpacing = spacing } };
        var catalog = new DocumentCatalog(Options.Create(options));
        try
        {
            Console.WriteLine($"load average at start: {File.ReadAllText("/proc/loadavg").Trim()}");
            var times = Build(catalog, ops, length, options.SnapshotInterval);
            Console.WriteLine($"database: {new FileInfo(Path.Combine(dir, "docs", "long.db")).Length / 1e6:F0} MB");
            var rng = new Random(7);
            // Warm-up (JIT, the OS page cache as a server that has been running would have it).
            for (var i = 0; i < 20; i++)
            {
                ReadVersion(catalog, rng.Next(ops + 1));
            }
            Report("?version=N, N uniform in 0..ops", Enumerable.Range(0, samples).Select(_ => Time(() => ReadVersion(catalog, rng.Next(ops + 1)))));
            Report("?at=T, T uniform over the history", Enumerable.Range(0, samples).Select(_ => Time(() => ReadAt(catalog, times[0] + (long)(rng.NextDouble() * (times[^1] - times[0]))))));
            var kept = KeptSnapshots(catalog);
            Console.WriteLine($"snapshots kept: {kept.Count} (spacing {spacing}); largest gap {kept.Zip(kept.Skip(1)).Max(p => p.Second - p.First)} versions");
            // The worst-placed versions: just below a kept snapshot, the longest replay.
            var worst = kept.Where(v => v > 1).Select(v => v - 1).Take(samples).ToList();
            Report("?version=N just below a kept snapshot (longest replay)", worst.Select(v => Time(() => ReadVersion(catalog, v))));
            if (args.Contains("--split"))
            {
                Split(dir, kept);
            }
            Report("the current version (from the log: newest snapshot + replay)", Enumerable.Range(0, 50).Select(_ => Time(() => ReadVersion(catalog, ops))));
            Console.WriteLine($"load average at end: {File.ReadAllText("/proc/loadavg").Trim()}");
        }
        finally
        {
            if (dirArg is null)
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static long[] Build(DocumentCatalog catalog, int count, int length, int snapshotInterval)
    {
        var started = Stopwatch.StartNew();
        var rng = new Random(42);
        var times = new long[count + 1];
        var clock = DateTimeOffset.Parse("2026-01-01T00:00:00Z").ToUnixTimeMilliseconds();
        times[0] = clock;
        using var store = catalog.Create("long");
        var text = Rope.Empty;
        var version = 0;
        var snapshotVersion = 0;
        var batch = new List<StoredOp>();
        string[] authors = ["ada", "bob", "cy", "dee"];
        while (version < count)
        {
            TextOperation op;
            if (version == 0)
            {
                op = TextOperation.Insert(0, Documents.Text(length)); // the first op pastes the text
            }
            else if (rng.Next(2) == 0 || text.Length < 16)
            {
                var at = rng.Next(text.Length + 1);
                op = TextOperation.Insert(at, "typed text"[..(1 + rng.Next(9))]);
            }
            else
            {
                var n = 1 + rng.Next(8);
                op = TextOperation.Delete(rng.Next(text.Length - n), n);
            }
            text = op.Apply(text);
            version++;
            clock += rng.Next(5_000); // ops up to 5 s apart: about 29 days of editing per million
            times[version] = clock;
            batch.Add(new StoredOp(version, op, authors[version / 50 % authors.Length], version, clock));
            if (batch.Count == 1000 || version == count)
            {
                var chunks = new List<SnapshotChunk>();
                if (version - snapshotVersion >= Math.Max(snapshotInterval, text.Length / 1024))
                {
                    for (var offset = 0; offset < text.Length || chunks.Count == 0; offset += SqliteDocumentStore.SnapshotChunkLength)
                    {
                        var n = Math.Min(SqliteDocumentStore.SnapshotChunkLength, text.Length - offset);
                        chunks.Add(new SnapshotChunk(version, chunks.Count, text.Substring(offset, n), offset + n >= text.Length, text.Length));
                    }
                    snapshotVersion = version;
                }
                // A snapshot commits with the op batch it ends, as the server's chunked snapshots do.
                foreach (var chunk in chunks)
                {
                    store.Commit(chunk == chunks[0] ? batch : [], text.Length, [chunk], FenceToken.None);
                }
                if (chunks.Count == 0)
                {
                    store.Commit(batch, text.Length, [], FenceToken.None);
                }
                batch.Clear();
            }
        }
        Console.WriteLine($"built {count} ops (text {text.Length} chars at the end) in {started.Elapsed.TotalSeconds:F0} s");
        return times;
    }

    private static string ReadVersion(DocumentCatalog catalog, int version)
    {
        using var history = catalog.OpenHistory("long")!;
        _ = history.CommittedAtMs(version);
        return history.TextAt(version);
    }

    private static string ReadAt(DocumentCatalog catalog, long atMs)
    {
        using var history = catalog.OpenHistory("long")!;
        var version = history.VersionAt(atMs)!.Value;
        _ = history.CommittedAtMs(version);
        return history.TextAt(version);
    }

    private static List<int> KeptSnapshots(DocumentCatalog catalog)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(catalog.DataDir, "docs", "long.db")};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version FROM snapshots ORDER BY version";
        using var reader = command.ExecuteReader();
        var result = new List<int> { 0 };
        while (reader.Read())
        {
            result.Add(reader.GetInt32(0));
        }
        return result;
    }

    private static void Split(string dir, List<int> kept)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "docs", "long.db")};Mode=ReadOnly;Pooling=False");
        connection.Open();
        foreach (var stage in new[] { "rows", "rows+parse", "rows+parse+apply" })
        {
            var samples = new List<double>();
            foreach (var v in kept.Skip(1).Take(50))
            {
                var from = v - 1 - 5000;
                samples.Add(Time(() =>
                {
                    using var command = connection.CreateCommand();
                    command.CommandText = "SELECT version, op FROM ops WHERE version > $a AND version <= $b ORDER BY version";
                    command.Parameters.AddWithValue("$a", from);
                    command.Parameters.AddWithValue("$b", v - 1);
                    using var reader = command.ExecuteReader();
                    var rope = Rope.FromString(new string('x', 400_000));
                    while (reader.Read())
                    {
                        var json = reader.GetString(1);
                        if (stage != "rows")
                        {
                            var op = System.Text.Json.JsonSerializer.Deserialize<TextOperation>(json)!;
                            if (stage == "rows+parse+apply" && op.BaseLength <= rope.Length)
                            {
                                rope = op.Apply(rope);
                            }
                        }
                    }
                }));
            }
            Report("5000 ops: " + stage, samples);
        }
    }

    private static double Time(Action read)
    {
        var started = Stopwatch.GetTimestamp();
        read();
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    private static void Report(string what, IEnumerable<double> samples)
    {
        var sorted = samples.Order().ToArray();
        double P(double q) => sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        var line = new StringBuilder($"{what}: n={sorted.Length} p50={P(0.5):F1} ms p95={P(0.95):F1} ms p99={P(0.99):F1} ms max={sorted[^1]:F1} ms");
        Console.WriteLine(line);
    }
}
