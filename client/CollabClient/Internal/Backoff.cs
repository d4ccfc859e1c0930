namespace Collab.Client.Internal;

/// <summary>Exponential backoff with full jitter, bounded below and above.</summary>
internal static class Backoff
{
    /// <summary>
    /// A random delay between <paramref name="min"/> and <c>min(max, min * 2^attempt)</c>: the
    /// ceiling doubles with each failed attempt, and the jitter keeps a crowd of clients that lost
    /// the same server from coming back in step.
    /// </summary>
    public static TimeSpan Delay(int attempt, TimeSpan min, TimeSpan max)
    {
        if (max < min)
        {
            max = min;
        }
        var ceiling = min.Ticks * Math.Pow(2, Math.Min(attempt, 30));
        var cap = Math.Min(max.Ticks, ceiling);
        return TimeSpan.FromTicks(min.Ticks + (long)(Random.Shared.NextDouble() * (cap - min.Ticks)));
    }
}
