using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace CollabServer.Hubs;

/// <summary>
/// The bytes of ops each writer may send through the hub: a token bucket per token subject (per
/// connection for anonymous members), so that one writer cannot fill the disk however many
/// connections and documents it spreads its ops over. Buckets of writers who went quiet are let
/// go by the limiter itself.
/// </summary>
public sealed class WriteBudget : IDisposable
{
    private readonly PartitionedRateLimiter<string> _limiter;
    private readonly int _burst;

    public WriteBudget(IOptions<CollabOptions> options)
    {
        var o = options.Value;
        _burst = (int)Math.Min(int.MaxValue, o.WriteBytesBurst);
        // Refilled ten times a second, so a writer under the rate never waits on the period
        // (once a second for rates too small to split).
        var tenths = o.WriteBytesPerSecond >= 10;
        var perPeriod = (int)Math.Min(int.MaxValue, tenths ? o.WriteBytesPerSecond / 10 : o.WriteBytesPerSecond);
        _limiter = PartitionedRateLimiter.Create<string, string>(writer => RateLimitPartition.GetTokenBucketLimiter(writer, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = _burst,
            TokensPerPeriod = perPeriod,
            ReplenishmentPeriod = tenths ? TimeSpan.FromMilliseconds(100) : TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    /// <summary>Takes <paramref name="bytes"/> from the writer's bucket; false (nothing taken) when it does not hold that many.</summary>
    public bool TryTake(ClientConnection connection, long bytes)
    {
        var writer = connection.Identity.IsAuthenticated ? "sub:" + connection.Identity.Subject : "conn:" + connection.ConnectionId;
        using var lease = _limiter.AttemptAcquire(writer, (int)Math.Min(bytes, _burst));
        return lease.IsAcquired;
    }

    public void Dispose() => _limiter.Dispose();
}
