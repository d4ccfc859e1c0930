using System.Globalization;

namespace CollabLoad;

/// <summary>
/// A target given with <c>--expect</c>, such as <c>p99&lt;=25ms</c>: a metric of the result, a
/// comparison and a value. Times compare in milliseconds, sizes in bytes, shares in percent.
/// </summary>
public sealed record Expectation(string Metric, string Comparison, double Value, string Text)
{
    public static Expectation Parse(string text)
    {
        var compact = text.Replace(" ", "", StringComparison.Ordinal);
        foreach (var comparison in new[] { "<=", ">=", "==", "<", ">" })
        {
            var at = compact.IndexOf(comparison, StringComparison.Ordinal);
            if (at <= 0)
            {
                continue;
            }
            var metric = compact[..at].ToLowerInvariant();
            var (number, unit) = LoadOptions.SplitUnit(compact[(at + comparison.Length)..]);
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                break;
            }
            value *= unit switch
            {
                "" or "ms" or "%" or "b" or "ops" => 1,
                "us" => 0.001,
                "s" => 1000,
                "kib" or "kb" => 1024,
                "mib" or "mb" => 1024 * 1024,
                "k" => 1000,
                _ => throw new UsageException($"--expect {text}: unknown unit '{unit}'"),
            };
            return new Expectation(metric, comparison, value, text);
        }
        throw new UsageException($"--expect {text}: write METRIC<=VALUE, e.g. p99<=25ms or ops>=5000");
    }

    /// <summary>Null when the result has no such metric (which counts as missed).</summary>
    public bool? Holds(IReadOnlyDictionary<string, double> metrics)
    {
        if (!metrics.TryGetValue(Metric, out var actual) || double.IsNaN(actual))
        {
            return null;
        }
        return Comparison switch
        {
            "<=" => actual <= Value,
            ">=" => actual >= Value,
            "<" => actual < Value,
            ">" => actual > Value,
            _ => Math.Abs(actual - Value) < 1e-9,
        };
    }
}
