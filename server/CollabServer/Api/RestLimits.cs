using System.Threading.RateLimiting;
using Collab;
using CollabServer.Diagnostics;
using CollabServer.Errors;
using CollabServer.Identity;
using Microsoft.Extensions.Options;

namespace CollabServer.Api;

/// <summary>
/// The REST API's limits (<see cref="RestLimitsOptions"/>, <c>Collab:Rest:</c>), all built on
/// System.Threading.RateLimiting: requests per subject (ASP.NET Core's rate limiter middleware, a
/// token bucket per subject), reads of the past (<see cref="PastReadLimits"/>) and documents a
/// <c>PUT</c> creates (<see cref="CreationBudget"/>). A refusal is 429 <c>rate_limited</c> as
/// problem details, counted in <c>collab_limits_refused_total{limit}</c>.
/// </summary>
public static class RestLimits
{
    /// <summary>Registers the limits; called once from <see cref="CollabServerSetup.AddCollabServer"/>.</summary>
    public static IServiceCollection AddRestLimits(this IServiceCollection services)
    {
        services.AddSingleton<PastReadLimits>();
        services.AddSingleton<CreationBudget>();
        services.AddRateLimiter(limiter =>
        {
            limiter.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                if (!http.Request.Path.StartsWithSegments("/api"))
                {
                    return RateLimitPartition.GetNoLimiter("");
                }
                var rest = http.RequestServices.GetRequiredService<IOptions<CollabOptions>>().Value.Rest;
                return RateLimitPartition.GetTokenBucketLimiter(SubjectKey(http), _ => TokenBucket(rest.RequestsPerSecond, rest.RequestsBurst));
            });
            limiter.OnRejected = (context, _) =>
            {
                var http = context.HttpContext;
                return new ValueTask(Refuse(http.RequestServices.GetRequiredService<CollabMetrics>(), "rest_requests",
                    "too many requests: slow down and retry").ToProblem().ExecuteAsync(http));
            };
        });
        return services;
    }

    /// <summary>Applies the request limit to <c>/api/</c>; called once from <see cref="CollabServerSetup.UseCollabServer"/>, after authentication (the subject is the token's).</summary>
    public static WebApplication UseRestLimits(this WebApplication app)
    {
        app.UseRateLimiter();
        return app;
    }

    /// <summary>Who a request counts against: the token's subject, or without one the remote address.</summary>
    public static string SubjectKey(HttpContext http)
    {
        var identity = ConnectionIdentity.From(http.User);
        return identity.IsAuthenticated ? "sub:" + identity.Subject : "ip:" + http.Connection.RemoteIpAddress;
    }

    /// <summary>A <c>rate_limited</c> refusal by <paramref name="limit"/>, counted.</summary>
    internal static CollabError Refuse(CollabMetrics metrics, string limit, string sentence)
    {
        metrics.LimitRefused(limit);
        return new CollabError(ErrorCodes.RateLimited, sentence);
    }

    /// <summary>A token bucket of <paramref name="perSecond"/> tokens a second (whole tokens per period, so periods longer than a second below one a second), <paramref name="burst"/> saved up, no queue.</summary>
    internal static TokenBucketRateLimiterOptions TokenBucket(double perSecond, int burst) => new()
    {
        TokenLimit = burst,
        TokensPerPeriod = perSecond >= 1 ? (int)Math.Round(perSecond) : 1,
        ReplenishmentPeriod = perSecond >= 1 ? TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(1 / perSecond),
        QueueLimit = 0,
        // The partitioned limiter replenishes every bucket on its own timer (no timer per subject).
        AutoReplenishment = false,
    };
}

/// <summary>
/// Bounds reads of the past (<c>?version=</c>, <c>?at=</c>, <c>/history</c>, <c>restore</c>), which
/// rebuild old texts and read op rows with synchronous SQLite on the thread pool:
/// <list type="bullet">
/// <item>per subject, <see cref="RestLimitsOptions.PastReadsPerSubject"/> in flight until the answer is written, <see cref="RestLimitsOptions.PastReadQueuePerSubject"/> waiting, newest first (a newer one pushes the oldest waiting out), others refused (<c>history_reads_subject</c>);</item>
/// <item>per node, <see cref="RestLimitsOptions.PastReads"/> reading storage at once (each holds a thread), <see cref="RestLimitsOptions.PastReadQueue"/> waiting, more refused (<c>history_reads</c>), so writers of other documents keep their threads;</item>
/// <item>per node, <see cref="RestLimitsOptions.PastReadBytes"/> of rebuilt texts in flight until their answers are written; a read that would pass it waits, while at most as much again waits, else it is refused (<c>history_bytes</c>).</item>
/// </list>
/// </summary>
public sealed class PastReadLimits : IDisposable
{
    /// <summary>The byte budget counts in units of this many bytes (a permit each).</summary>
    private const long ByteUnit = 64 * 1024;

    /// <summary>Bytes a rebuilt text holds per code unit: the rope's chunks and the answer's string, two bytes each.</summary>
    public const long BytesPerChar = 4;

    private readonly PartitionedRateLimiter<string> _subjects;
    private readonly ConcurrencyLimiter _storage;
    private readonly ConcurrencyLimiter _bytes;
    private readonly int _byteUnits;
    private readonly CollabMetrics _metrics;

    public PastReadLimits(IOptions<CollabOptions> options, CollabMetrics metrics)
    {
        var rest = options.Value.Rest;
        _metrics = metrics;
        _subjects = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetConcurrencyLimiter(key, _ => new ConcurrencyLimiterOptions
        {
            PermitLimit = rest.PastReadsPerSubject,
            QueueLimit = rest.PastReadQueuePerSubject,
            QueueProcessingOrder = QueueProcessingOrder.NewestFirst,
        }));
        _storage = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = rest.PastReads,
            QueueLimit = rest.PastReadQueue,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
        _byteUnits = (int)Math.Clamp(rest.PastReadBytes / ByteUnit, 1, int.MaxValue / 2);
        _bytes = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = _byteUnits,
            QueueLimit = _byteUnits,
            QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });
    }

    /// <summary>Enters a past read of the request's subject, for the whole request; <c>rate_limited</c> when it has its share in flight and waiting.</summary>
    public async Task<IDisposable> EnterSubjectAsync(HttpContext http)
    {
        var lease = await _subjects.AcquireAsync(RestLimits.SubjectKey(http), 1, http.RequestAborted);
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            throw RestLimits.Refuse(_metrics, "history_reads_subject", "too many reads of the past at once from you: wait for one to finish, then retry");
        }
        return lease;
    }

    /// <summary>Runs <paramref name="read"/> (synchronous storage work) on the thread pool once one of the node's storage permits is free.</summary>
    public async Task<T> RunAsync<T>(Func<T> read, CancellationToken cancellationToken)
    {
        using var lease = await _storage.AcquireAsync(1, cancellationToken);
        if (!lease.IsAcquired)
        {
            throw RestLimits.Refuse(_metrics, "history_reads", "this node is busy reading the past: retry in a moment");
        }
        return await Task.Run(read, cancellationToken);
    }

    /// <summary>
    /// Reserves room for a rebuilt text of <paramref name="chars"/> code units until the lease is
    /// disposed (after the answer is written). Waits while the budget is spent; <c>rate_limited</c>
    /// when too many bytes already wait.
    /// </summary>
    public async Task<IDisposable> ReserveAsync(long chars, CancellationToken cancellationToken)
    {
        var units = (int)Math.Clamp((chars * BytesPerChar + ByteUnit - 1) / ByteUnit, 1, _byteUnits);
        var lease = await _bytes.AcquireAsync(units, cancellationToken);
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            throw RestLimits.Refuse(_metrics, "history_bytes", "this node holds too many old texts being read: retry in a moment");
        }
        return lease;
    }

    public void Dispose()
    {
        _subjects.Dispose();
        _storage.Dispose();
        _bytes.Dispose();
    }
}

/// <summary>
/// Documents a <c>PUT</c> may create, per subject (or remote address): <c>Collab:Rest:DocumentsCreatedPerMinute</c>
/// a minute, that many at once, the same shape as a hub connection's budget (<c>ClientConnection</c>,
/// <c>Collab:DocumentsCreatedPerMinute</c>). A <c>PUT</c> of a document that does not exist takes
/// one before anything is read or written; an authenticated hub connection's first write to a new
/// document takes one from its subject's budget too, so the hub and REST share it.
/// </summary>
public sealed class CreationBudget : IDisposable
{
    private readonly PartitionedRateLimiter<string> _buckets;
    private readonly CollabMetrics _metrics;
    private readonly int _perMinute;

    public CreationBudget(IOptions<CollabOptions> options, CollabMetrics metrics)
    {
        _metrics = metrics;
        _perMinute = options.Value.Rest.DocumentsCreatedPerMinute;
        var perMinute = Math.Max(1, _perMinute);
        _buckets = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = perMinute,
            TokensPerPeriod = perMinute,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = false,
        }));
    }

    /// <summary>Takes one creation from the request's subject; <c>rate_limited</c> when its budget is spent.</summary>
    public void Take(HttpContext http)
    {
        if (!TryTake(RestLimits.SubjectKey(http)))
        {
            throw RestLimits.Refuse(_metrics, "rest_creations", _perMinute > 0
                ? $"you created more than {_perMinute} documents in a minute"
                : $"this server does not create documents by PUT (Collab:Rest:DocumentsCreatedPerMinute is 0)");
        }
    }

    /// <summary>Takes one creation from <paramref name="key"/>'s budget (<see cref="RestLimits.SubjectKey"/>'s form); false when it is spent.</summary>
    public bool TryTake(string key)
    {
        using var lease = _perMinute > 0 ? _buckets.AttemptAcquire(key) : null;
        return lease is { IsAcquired: true };
    }

    public void Dispose() => _buckets.Dispose();
}

/// <summary>An answer that holds leases (a past read's share of the limits) until it is written.</summary>
internal sealed class HeldResult(IResult inner, params IDisposable?[] leases) : IResult
{
    public async Task ExecuteAsync(HttpContext httpContext)
    {
        try
        {
            await inner.ExecuteAsync(httpContext);
        }
        finally
        {
            foreach (var lease in leases)
            {
                lease?.Dispose();
            }
        }
    }
}
