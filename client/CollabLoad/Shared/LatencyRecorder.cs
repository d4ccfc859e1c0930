using System.Diagnostics;
using HdrHistogram;

namespace CollabLoad;

/// <summary>
/// Latencies in microseconds, in two HdrHistograms: one for the whole measured window and one
/// for the current second (the live line), swapped out by <see cref="TakeInterval"/>.
/// </summary>
public sealed class LatencyRecorder
{
    // One hour in microseconds: anything longer is clamped (and is a failure anyway).
    private const long Highest = 3_600_000_000;
    private readonly object _gate = new();
    // Allocated once: a histogram of this range is about 190 KB, a large object, and allocating one a
    // second would trigger a gen2 GC of the harness's whole heap about as often.
    private readonly LongHistogram _total = new(Highest, 3);
    private readonly LongHistogram _interval = new(Highest, 3);

    public static long ToMicros(long stopwatchTicks) => stopwatchTicks * 1_000_000 / Stopwatch.Frequency;

    /// <summary>Records one latency; <paramref name="inWindow"/> says whether it counts in the final figures.</summary>
    public void Record(long micros, bool inWindow)
    {
        var value = Math.Clamp(micros, 1, Highest);
        lock (_gate)
        {
            _interval.RecordValue(value);
            if (inWindow)
            {
                _total.RecordValue(value);
            }
        }
    }

    /// <summary>The current second's percentiles; starts the next second afresh.</summary>
    public LatencySummary TakeInterval()
    {
        lock (_gate)
        {
            var summary = LatencySummary.Of(_interval);
            _interval.Reset();
            return summary;
        }
    }

    public LatencySummary Total()
    {
        lock (_gate)
        {
            return LatencySummary.Of(_total);
        }
    }
}

/// <summary>Percentiles of a histogram, in milliseconds.</summary>
public sealed record LatencySummary(long Count, double P50, double P90, double P99, double P999, double Max, double Mean)
{
    public static LatencySummary Of(HistogramBase h) => h.TotalCount == 0
        ? new LatencySummary(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN)
        : new LatencySummary(
            h.TotalCount,
            h.GetValueAtPercentile(50) / 1000.0,
            h.GetValueAtPercentile(90) / 1000.0,
            h.GetValueAtPercentile(99) / 1000.0,
            h.GetValueAtPercentile(99.9) / 1000.0,
            h.GetMaxValue() / 1000.0,
            h.GetMean() / 1000.0);
}
