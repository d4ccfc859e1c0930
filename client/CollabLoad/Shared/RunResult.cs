using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CollabLoad;

/// <summary>
/// The outcome of a run: its parameters, its figures (named as <c>--expect</c> names them), the
/// convergence check, and the verdict. Printed as a table and written as JSON.
/// </summary>
public sealed class RunResult
{
    private static readonly JsonSerializerOptions s_json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string Workload { get; set; } = "";
    public string Commit { get; set; } = GitCommit();
    public string Machine { get; set; } = $"{Environment.ProcessorCount} cores, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024 * 1024.0):0} GiB, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}";
    public DateTimeOffset StartedAt { get; set; } = DateTimeOffset.UtcNow;
    public Dictionary<string, string> Parameters { get; } = [];

    /// <summary>Times in ms, sizes in bytes, shares in percent, rates per second.</summary>
    public Dictionary<string, double> Metrics { get; } = [];

    /// <summary>The server's own metrics at the end (when it has <c>/metrics</c>).</summary>
    public Dictionary<string, double> ServerMetrics { get; set; } = [];
    public List<string> Notes { get; } = [];
    public List<string> Errors { get; } = [];
    public List<string> Divergences { get; } = [];
    public List<ExpectationOutcome> Expectations { get; } = [];
    public int ExitCode { get; set; }

    public sealed record ExpectationOutcome(string Expect, double? Actual, bool Met);

    public void Add(string name, double value) => Metrics[name] = value;

    public void AddLatency(string prefix, LatencySummary summary)
    {
        Add($"{prefix}p50", summary.P50);
        Add($"{prefix}p90", summary.P90);
        Add($"{prefix}p99", summary.P99);
        Add($"{prefix}p999", summary.P999);
        Add($"{prefix}max", summary.Max);
        Add($"{prefix}mean", summary.Mean);
    }

    /// <summary>Judges the run: divergence or errors give 2, a missed expectation 1.</summary>
    public void Judge(IEnumerable<Expectation> expectations)
    {
        var missed = false;
        foreach (var expectation in expectations)
        {
            var holds = expectation.Holds(Metrics);
            Expectations.Add(new ExpectationOutcome(expectation.Text, Metrics.TryGetValue(expectation.Metric, out var v) ? v : null, holds == true));
            missed |= holds != true;
        }
        ExitCode = Divergences.Count > 0 || Errors.Count > 0 ? 2 : missed ? 1 : 0;
    }

    public void Print()
    {
        Console.WriteLine();
        Console.WriteLine($"== {Workload} at {Commit} on {Machine}");
        Console.WriteLine("   " + string.Join("  ", Parameters.Select(p => $"{p.Key}={p.Value}")));
        var width = Metrics.Keys.Select(k => k.Length).DefaultIfEmpty(10).Max();
        foreach (var (name, value) in Metrics)
        {
            Console.WriteLine($"   {name.PadRight(width)}  {Format(name, value)}");
        }
        foreach (var note in Notes)
        {
            Console.WriteLine($"   note: {note}");
        }
        foreach (var error in Errors.Take(10))
        {
            Console.WriteLine($"   ERROR: {error}");
        }
        foreach (var divergence in Divergences.Take(10))
        {
            Console.WriteLine($"   DIVERGED: {divergence}");
        }
        foreach (var e in Expectations)
        {
            Console.WriteLine($"   expect {e.Expect,-24} {(e.Met ? "met" : "MISSED")} (actual {(e.Actual is double a ? a.ToString("0.###", CultureInfo.InvariantCulture) : "n/a")})");
        }
        Console.WriteLine(ExitCode switch
        {
            0 => "   RESULT: ok",
            1 => "   RESULT: target missed",
            _ => "   RESULT: FAILED (divergence or errors)",
        });
    }

    public void WriteJson(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, JsonSerializer.Serialize(this, s_json));
    }

    private static string Format(string name, double value)
    {
        if (double.IsNaN(value))
        {
            return "n/a";
        }
        var text = value.ToString(Math.Abs(value) >= 100 ? "#,0" : "0.###", CultureInfo.InvariantCulture);
        return name switch
        {
            _ when name.Contains("rss", StringComparison.Ordinal) || name.EndsWith("_bytes", StringComparison.Ordinal) || name.EndsWith("_per_conn", StringComparison.Ordinal) => $"{text} B ({value / 1024:0.0} KiB)",
            _ when name is "ops" or "committed" or "offered" || name.EndsWith("_per_s", StringComparison.Ordinal) => $"{text} /s",
            _ when name.EndsWith("_s", StringComparison.Ordinal) => $"{text} s",
            _ when name.EndsWith("_us", StringComparison.Ordinal) => $"{text} µs",
            _ when name is "delivered" || name.EndsWith("_pct", StringComparison.Ordinal) => $"{text} %",
            _ when name.EndsWith("_per_op", StringComparison.Ordinal) && name != "cpu_per_op" => text,
            _ when name is "server_batch_mean" or "server_log_batches_per_sync" => text, // counts, not times
            _ when name.StartsWith('p') || name.Contains("_p", StringComparison.Ordinal) || name.EndsWith("max", StringComparison.Ordinal)
                || name.EndsWith("mean", StringComparison.Ordinal) || name.EndsWith("_ms", StringComparison.Ordinal) || name == "cpu_per_op" => $"{text} ms",
            _ => text,
        };
    }

    private static string GitCommit()
    {
        try
        {
            using var git = Process.Start(new ProcessStartInfo("git", "rev-parse --short HEAD")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            var commit = git?.StandardOutput.ReadToEnd().Trim();
            git?.WaitForExit();
            return string.IsNullOrEmpty(commit) ? "unknown" : commit;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "unknown";
        }
    }
}
