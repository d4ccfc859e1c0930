using System.Collections.Concurrent;
using System.Diagnostics;

namespace CollabLoad;

/// <summary>
/// What every client of a run adds to: counts, the latency histograms and the measured window.
/// Only ops submitted inside the window [<see cref="WindowStart"/>, <see cref="WindowEnd"/>) count
/// in the final figures; the warm-up before it and the drain after it do not.
/// </summary>
public sealed class RunCounters
{
    private long _windowStart = long.MaxValue;
    private long _windowEnd = long.MaxValue;

    public long Submitted;
    public long SubmittedInWindow;
    public long Committed;
    public long CommittedInWindow;
    public long Delivered;
    public long DeliveredInWindow;
    public long Late;
    public long Errors;
    public long Resyncs;
    public long Reconnects;

    /// <summary>Submit → every other member applied it.</summary>
    public LatencyRecorder Delivery { get; } = new();

    /// <summary>Submit → the author's own op acknowledged (committed, fsync included).</summary>
    public LatencyRecorder Commit { get; } = new();

    /// <summary>The first few error messages, for the report.</summary>
    public ConcurrentQueue<string> ErrorSamples { get; } = new();

    public long WindowStart => Volatile.Read(ref _windowStart);
    public long WindowEnd => Volatile.Read(ref _windowEnd);

    public void StartWindow() => Volatile.Write(ref _windowStart, Stopwatch.GetTimestamp());

    public void EndWindow() => Volatile.Write(ref _windowEnd, Stopwatch.GetTimestamp());

    public TimeSpan WindowLength => WindowEnd == long.MaxValue || WindowStart == long.MaxValue
        ? TimeSpan.Zero
        : Stopwatch.GetElapsedTime(WindowStart, WindowEnd);

    public bool InWindow(long ticks) => ticks >= WindowStart && ticks < WindowEnd;

    public void Error(string message)
    {
        Interlocked.Increment(ref Errors);
        if (ErrorSamples.Count < 20)
        {
            ErrorSamples.Enqueue(message);
        }
    }

    /// <summary>Counts an op the author submitted at <paramref name="submitted"/>.</summary>
    public void OnSubmitted(long submitted)
    {
        Interlocked.Increment(ref Submitted);
        if (InWindow(submitted))
        {
            Interlocked.Increment(ref SubmittedInWindow);
        }
    }

    /// <summary>Counts the author's acknowledgement of an op submitted at <paramref name="submitted"/>.</summary>
    public void OnCommitted(long submitted)
    {
        var inWindow = InWindow(submitted);
        Interlocked.Increment(ref Committed);
        if (inWindow)
        {
            Interlocked.Increment(ref CommittedInWindow);
        }
        Commit.Record(LatencyRecorder.ToMicros(Stopwatch.GetTimestamp() - submitted), inWindow);
    }

    /// <summary>Counts an op every other member has now applied.</summary>
    public void OnDelivered(long submitted)
    {
        var inWindow = InWindow(submitted);
        Interlocked.Increment(ref Delivered);
        if (inWindow)
        {
            Interlocked.Increment(ref DeliveredInWindow);
        }
        Delivery.Record(LatencyRecorder.ToMicros(Stopwatch.GetTimestamp() - submitted), inWindow);
    }
}
