using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text.Json.Serialization;

namespace CollabLoad;

/// <summary>
/// What the harness reads about the server from outside: its CPU time and RSS from /proc (when
/// it runs on this machine and its PID is known), its Prometheus metrics when it has them
/// (<c>collab*</c> names; optional), and documents over REST.
/// </summary>
public sealed class ServerProbe(IReadOnlyList<Uri> urls, int? pid) : IDisposable
{
    private static readonly long s_clockTicks = ClockTicksPerSecond();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public int? Pid { get; } = pid;

    /// <summary>User + system CPU seconds of the server so far, or null without a PID.</summary>
    public double? CpuSeconds()
    {
        if (Pid is not int p || !File.Exists($"/proc/{p}/stat"))
        {
            return null;
        }
        var stat = File.ReadAllText($"/proc/{p}/stat");
        // Fields after the ")" that closes the command name: state is field 3, utime 14, stime 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return (double)ticks / s_clockTicks;
    }

    /// <summary>The server's resident set size in bytes, or null without a PID.</summary>
    public long? RssBytes()
    {
        if (Pid is not int p || !File.Exists($"/proc/{p}/status"))
        {
            return null;
        }
        foreach (var line in File.ReadLines($"/proc/{p}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        return null;
    }

    /// <summary>
    /// Kernel counters of a process from /proc, or null without a PID: context switches
    /// (voluntary + nonvoluntary, per thread from /proc/PID/task/*/status: the process-level
    /// status counts only the main thread; a thread that exits inside a window loses its
    /// switches from that window, one created inside it counts whole) and
    /// read/write-family syscalls (<c>syscr</c> + <c>syscw</c> of /proc/PID/io; Linux keeps no
    /// cheap count of all syscalls per process, so this is a lower bound: epoll_wait, futex,
    /// fsync and the like are not in it).
    /// </summary>
    public ProcCounters? Counters() => Pid is int p ? ProcCounters.Read(p) : null;

    /// <summary>Sum of every series of <paramref name="name"/> (all label sets), or null when absent.</summary>
    public static double? Sum(Dictionary<string, double> metrics, string name)
    {
        double? sum = null;
        foreach (var (key, value) in metrics)
        {
            if (key == name || key.StartsWith(name + "{", StringComparison.Ordinal))
            {
                sum = (sum ?? 0) + value;
            }
        }
        return sum;
    }

    /// <summary>The server's <c>collab*</c>, <c>process_*</c> and <c>dotnet_*</c> metrics, summed over nodes; empty when it has no <c>/metrics</c>.</summary>
    public async Task<Dictionary<string, double>> MetricsAsync()
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var url in urls)
        {
            try
            {
                using var response = await _http.GetAsync(new Uri(url, "/metrics")).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    continue;
                }
                var text = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
                foreach (var line in text.Split('\n'))
                {
                    if (line.Length == 0 || line[0] == '#' || !(line.StartsWith("collab", StringComparison.Ordinal) || line.StartsWith("process_", StringComparison.Ordinal) || line.StartsWith("dotnet_", StringComparison.Ordinal)))
                    {
                        continue;
                    }
                    var space = line.LastIndexOf(' ');
                    if (space > 0 && double.TryParse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                    {
                        var name = line[..space];
                        result[name] = result.GetValueOrDefault(name) + value;
                    }
                }
            }
            catch (HttpRequestException)
            {
                // No metrics endpoint (yet): the harness works without it.
            }
            catch (TaskCanceledException)
            {
            }
        }
        return result;
    }

    /// <summary>GET /api/docs/{id} on the node that owns the document.</summary>
    public async Task<DocumentBody?> GetDocumentAsync(string docId)
    {
        var node = await OwnerAsync(docId).ConfigureAwait(false);
        using var response = await _http.GetAsync(new Uri(node, $"/api/docs/{docId}")).ConfigureAwait(false);
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<DocumentBody>().ConfigureAwait(false);
    }

    /// <summary>PUT /api/docs/{id}: creates the document or replaces its text.</summary>
    public async Task PutDocumentAsync(string docId, string text)
    {
        var node = await OwnerAsync(docId).ConfigureAwait(false);
        using var response = await _http.PutAsJsonAsync(new Uri(node, $"/api/docs/{docId}"), new { text }).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
    }

    private async Task<Uri> OwnerAsync(string docId)
    {
        if (urls.Count == 1)
        {
            return urls[0];
        }
        try
        {
            var route = await _http.GetFromJsonAsync<RouteBody>(new Uri(urls[0], $"/api/route/{docId}")).ConfigureAwait(false);
            if (route?.Node is { Length: > 0 } node && Uri.TryCreate(node, UriKind.Absolute, out var uri))
            {
                return uri;
            }
        }
        catch (HttpRequestException)
        {
            // No router: any node will do.
        }
        return urls[0];
    }

    public void Dispose() => _http.Dispose();

    private static long ClockTicksPerSecond()
    {
        try
        {
            var ticks = sysconf(2); // _SC_CLK_TCK
            return ticks > 0 ? ticks : 100;
        }
        catch (EntryPointNotFoundException)
        {
            return 100;
        }
        catch (DllNotFoundException)
        {
            return 100;
        }
    }

    [DllImport("libc")]
    private static extern long sysconf(int name);

    public sealed class DocumentBody
    {
        [JsonPropertyName("id")] public string Id { get; set; } = "";
        [JsonPropertyName("version")] public int Version { get; set; }
        [JsonPropertyName("text")] public string Text { get; set; } = "";

        /// <summary>A rich-text document's contents; null for a text document.</summary>
        [JsonPropertyName("delta")] public Collab.Ot.Delta? Delta { get; set; }
    }

    private sealed class RouteBody
    {
        [JsonPropertyName("node")] public string? Node { get; set; }
    }
}

/// <summary>Context switches and read/write syscalls of one process so far (see <see cref="ServerProbe.Counters"/>).</summary>
public sealed record ProcCounters(Dictionary<int, long> SwitchesPerThread, long? RwSyscalls)
{
    /// <summary>Context switches since <paramref name="before"/>, per thread still alive now.</summary>
    public long SwitchesSince(ProcCounters before) =>
        SwitchesPerThread.Sum(t => t.Value - before.SwitchesPerThread.GetValueOrDefault(t.Key));

    public static ProcCounters? Read(int pid)
    {
        var taskDir = $"/proc/{pid}/task";
        if (!Directory.Exists(taskDir))
        {
            return null;
        }
        var switches = new Dictionary<int, long>();
        foreach (var task in Directory.EnumerateDirectories(taskDir))
        {
            try
            {
                var tid = int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture);
                foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                    {
                        switches[tid] = switches.GetValueOrDefault(tid) + long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The thread exited between listing and reading.
            }
        }
        long? syscalls = null;
        try
        {
            // /proc/PID/io counts the whole thread group, exited threads included.
            foreach (var line in File.ReadLines($"/proc/{pid}/io"))
            {
                if (line.StartsWith("syscr:", StringComparison.Ordinal) || line.StartsWith("syscw:", StringComparison.Ordinal))
                {
                    syscalls = (syscalls ?? 0) + long.Parse(line[6..].Trim(), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not readable (another user's process): no syscall figure.
        }
        return new ProcCounters(switches, syscalls);
    }
}
