using System.Diagnostics;

namespace CollabServer;

/// <summary>A token bucket: <c>rate</c> tokens a second, at most <c>burst</c> saved up. Thread-safe.</summary>
internal sealed class TokenBucket(double rate, double burst)
{
    private readonly Lock _lock = new();
    private readonly double _burst = burst;
    private double _tokens = burst;
    private long _last = Stopwatch.GetTimestamp();

    public bool TryTake() => TryTake(1);

    /// <summary>Takes <paramref name="amount"/> tokens (at most the burst's worth); false, taking none, when fewer are saved up.</summary>
    public bool TryTake(double amount)
    {
        amount = Math.Min(amount, _burst);
        lock (_lock)
        {
            var now = Stopwatch.GetTimestamp();
            _tokens = Math.Min(_burst, _tokens + Stopwatch.GetElapsedTime(_last, now).TotalSeconds * rate);
            _last = now;
            if (_tokens < amount)
            {
                return false;
            }
            _tokens -= amount;
            return true;
        }
    }
}
