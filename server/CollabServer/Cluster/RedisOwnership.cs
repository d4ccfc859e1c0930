using System.Collections.Concurrent;
using System.Diagnostics;
using CollabServer.Diagnostics;
using CollabServer.Errors;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CollabServer.Cluster;

/// <summary>
/// Ownership through Redis (ARCHITECTURE: "Redis only for routing", "Fencing"). Redis holds
/// three kinds of keys, and nothing else ever: edits and broadcasts never pass through it.
/// <list type="bullet">
/// <item><c>collab:node:{id}</c> = <c>url documents</c> with a TTL, and the set <c>collab:nodes</c>: the node registry, refreshed by a heartbeat.</item>
/// <item><c>collab:lease:{doc}</c> = <c>node:epoch</c> with a TTL: the owner lease of an active document.</item>
/// <item><c>collab:epoch:{doc}</c>: the document's epoch counter, raised by every claim, kept a day after the last one.</item>
/// </list>
/// Each lease operation is one Lua script, so it is atomic. One loop, every third of the TTL,
/// refreshes the registration and renews every lease this node holds in one script call per
/// thousand documents; so Redis sees a constant few commands a second per node, however many
/// edits are made. A lease is trusted only until a fifth of the TTL (at least 250 ms) before
/// it could run out, measured from before the renewal was sent, on the monotonic clock.
/// </summary>
public sealed class RedisOwnership : IDocumentOwnership, IHostedService, IDisposable
{
    // KEYS: lease, epoch. ARGV: node, ttl ms, stored epoch, epoch ttl ms. → {1, epoch} | {0, owner}
    private const string ClaimScript = """
        local cur = redis.call('GET', KEYS[1])
        if cur then
          local owner = string.match(cur, '^(.*):%d+$')
          if owner ~= ARGV[1] then return {0, owner} end
        end
        local e = redis.call('INCR', KEYS[2])
        local stored = tonumber(ARGV[3])
        if e <= stored then
          e = stored + 1
          redis.call('SET', KEYS[2], e)
        end
        redis.call('PEXPIRE', KEYS[2], ARGV[4])
        redis.call('SET', KEYS[1], ARGV[1] .. ':' .. e, 'PX', ARGV[2])
        return {1, e}
        """;

    // KEYS: leases. ARGV: ttl ms, then the value each lease must still have. → 1 renewed | 0 lost, per key
    private const string RenewScript = """
        local r = {}
        for i, k in ipairs(KEYS) do
          if redis.call('GET', k) == ARGV[i + 1] then
            redis.call('PEXPIRE', k, ARGV[1])
            r[i] = 1
          else
            r[i] = 0
          end
        end
        return r
        """;

    // KEYS: lease. ARGV: the value it must still have, then (hand over) the new owner and ttl ms. → 1 | 0
    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
        if ARGV[2] then
          redis.call('SET', KEYS[1], ARGV[2] .. ':0', 'PX', ARGV[3])
        else
          redis.call('DEL', KEYS[1])
        end
        return 1
        """;

    private const string NodesKey = "collab:nodes";
    private const int RenewBatch = 1000;

    private readonly CollabOptions _options;
    private readonly CollabMetrics _metrics;
    private readonly ILogger<RedisOwnership> _logger;
    private readonly ConnectionMultiplexer _redis;
    private readonly ConcurrentDictionary<string, Held> _held = new(StringComparer.Ordinal);
    private readonly long _ttlMs;
    private readonly long _trustTicks;
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;
    private long _registeredUntil; // Stopwatch timestamp: the registration is trusted until then
    private volatile bool _draining;
    private volatile HashSet<string> _nodeOrigins = new(StringComparer.OrdinalIgnoreCase);
    private long _originsReadAt; // Stopwatch timestamp of the last registry read for an unknown origin

    private sealed record Held(Lease Lease, string Value, Action Lost);

    public RedisOwnership(IOptions<CollabOptions> options, CollabMetrics metrics, ILogger<RedisOwnership> logger)
    {
        _options = options.Value;
        _metrics = metrics;
        _logger = logger;
        NodeId = _options.NodeId is { } id && Collab.DocumentId.IsValid(id) && !id.Contains(':')
            ? id
            : throw new InvalidOperationException("Collab:NodeId must be set in a cluster (Collab:Redis): 1 to 128 of A-Z a-z 0-9 . _ -");
        NodeUrl = Uri.TryCreate(_options.NodeUrl, UriKind.Absolute, out var url) && url.Scheme is "http" or "https"
            ? url.AbsoluteUri.TrimEnd('/')
            : throw new InvalidOperationException("Collab:NodeUrl must be set in a cluster (Collab:Redis): the http(s) base URL clients reach this node at");
        _ttlMs = (long)_options.LeaseTtl.TotalMilliseconds;
        var margin = Math.Max(_ttlMs / 5, 250);
        _trustTicks = (_ttlMs - margin) * Stopwatch.Frequency / 1000;
        if (_trustTicks <= 0)
        {
            throw new InvalidOperationException("Collab:LeaseTtl must be at least 1 s.");
        }
        var config = ConfigurationOptions.Parse(_options.Redis!);
        // Start and keep running while Redis is away; a command while it is away fails at once
        // (and answers unavailable) instead of waiting in a backlog.
        config.AbortOnConnectFail = false;
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.ConnectTimeout = 2000;
        config.SyncTimeout = config.AsyncTimeout = 2000;
        config.ReconnectRetryPolicy = new LinearRetry(500);
        config.ClientName = $"collab-{NodeId}";
        _redis = ConnectionMultiplexer.Connect(config);
        metrics.ObserveOwnership(() => _held.Count);
    }

    public bool Clustered => true;

    public string NodeId { get; }

    public string NodeUrl { get; }

    public bool IsNodeOrigin(string origin) => _nodeOrigins.Contains(origin.TrimEnd('/'));

    public async ValueTask<bool> IsNodeOriginAsync(string origin)
    {
        if (IsNodeOrigin(origin))
        {
            return true;
        }
        // A page served by a node that registered after this one last read the registry: read it
        // again, at most once a second however many unknown origins ask (a foreign origin is
        // refused from the list in memory meanwhile).
        var now = Stopwatch.GetTimestamp();
        var last = Interlocked.Read(ref _originsReadAt);
        if (Stopwatch.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1) || Interlocked.CompareExchange(ref _originsReadAt, now, last) != last)
        {
            return false;
        }
        try
        {
            await RefreshNodeOriginsAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is CollabError or RedisException or TimeoutException)
        {
            return false;
        }
        return IsNodeOrigin(origin);
    }

    private async Task RefreshNodeOriginsAsync() =>
        _nodeOrigins = new HashSet<string>(
            (await NodesAsync().ConfigureAwait(false)).Select(n => Uri.TryCreate(n.Url, UriKind.Absolute, out var u) ? u.GetLeftPart(UriPartial.Authority) : null).OfType<string>(),
            StringComparer.OrdinalIgnoreCase);

    public bool Ready => !_draining && Stopwatch.GetTimestamp() < Volatile.Read(ref _registeredUntil);

    private IDatabase Db => _redis.GetDatabase();

    private static RedisKey LeaseKey(string docId) => "collab:lease:" + docId;

    private static RedisKey EpochKey(string docId) => "collab:epoch:" + docId;

    /// <summary>
    /// How long a document's epoch counter outlives its last claim. Joining ids that are never
    /// written must not leave a key each for ever; a written document records its epoch in its own
    /// storage, and a claim takes the higher of the two, so only an owner paused this long on a
    /// never-written document could meet a reused epoch, and its lease ran out long before.
    /// </summary>
    internal static readonly TimeSpan EpochKeyTtl = TimeSpan.FromDays(1);

    private static RedisKey NodeKey(string nodeId) => "collab:node:" + nodeId;

    public async Task<Lease> ClaimAsync(string docId, long storedEpoch, Action lost)
    {
        var started = Stopwatch.GetTimestamp();
        RedisResult[] result;
        try
        {
            if (_draining)
            {
                // Another node takes it: say who owns it, if anyone does.
                var owner = await OwnerAsync(docId).ConfigureAwait(false);
                if (owner is { } o && o.Node != NodeId)
                {
                    throw await NotOwnerAsync(docId, o.Node).ConfigureAwait(false);
                }
                throw CollabError.Unavailable("this node is shutting down; join through another node");
            }
            result = (RedisResult[])(await Db.ScriptEvaluateAsync(ClaimScript, [LeaseKey(docId), EpochKey(docId)], [NodeId, _ttlMs, storedEpoch, (long)EpochKeyTtl.TotalMilliseconds]).ConfigureAwait(false))!;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw Unreachable(ex);
        }
        if ((long)result[0] == 0)
        {
            throw await NotOwnerAsync(docId, (string)result[1]!).ConfigureAwait(false);
        }
        var epoch = (long)result[1];
        var lease = new Lease(docId, epoch, started + _trustTicks);
        _held[docId] = new Held(lease, $"{NodeId}:{epoch}", lost);
        _metrics.LeaseClaimed();
        Log.LeaseClaimed(_logger, docId, epoch);
        return lease;
    }

    private async Task<NotOwnerException> NotOwnerAsync(string docId, string owner)
    {
        var url = await UrlOfAsync(owner).ConfigureAwait(false);
        if (url is null)
        {
            // Its registration ran out: it died, and its lease runs out within one TTL.
            throw CollabError.Unavailable($"the owner of document '{docId}' (node {owner}) stopped answering; another node takes the document over within {_options.LeaseTtl.TotalSeconds:0.#} s");
        }
        return new NotOwnerException(docId, owner, url);
    }

    public void Release(Lease lease)
    {
        if (lease.Epoch == 0 || !_held.TryGetValue(lease.DocId, out var held) || held.Lease != lease
            || !_held.TryRemove(new KeyValuePair<string, Held>(lease.DocId, held)) || !lease.End())
        {
            return;
        }
        // Nobody waits for this: if it fails, the lease runs out by itself.
        _ = Db.ScriptEvaluateAsync(ReleaseScript, [LeaseKey(lease.DocId)], [held.Value], CommandFlags.FireAndForget);
    }

    public bool HandOver(Lease lease, string nodeId)
    {
        if (!_held.TryGetValue(lease.DocId, out var held) || held.Lease != lease || lease.Ended)
        {
            return false;
        }
        try
        {
            var moved = (long)Db.ScriptEvaluate(ReleaseScript, [LeaseKey(lease.DocId)], [held.Value, nodeId, _ttlMs]) == 1;
            _held.TryRemove(new KeyValuePair<string, Held>(lease.DocId, held));
            lease.End();
            return moved;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    public async Task<string?> RouteAsync(string docId)
    {
        try
        {
            return await OwnerAsync(docId).ConfigureAwait(false) is { } owner && owner.Node != NodeId
                ? (await NotOwnerAsync(docId, owner.Node).ConfigureAwait(false)).Url
                : NodeUrl;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    public async Task<IReadOnlyList<NodeInfo>> NodesAsync()
    {
        try
        {
            var ids = (await Db.SetMembersAsync(NodesKey).ConfigureAwait(false)).Select(v => (string)v!).Order(StringComparer.Ordinal).ToArray();
            var values = ids.Length == 0 ? [] : await Db.StringGetAsync([.. ids.Select(NodeKey)]).ConfigureAwait(false);
            var nodes = new List<NodeInfo>();
            for (var i = 0; i < ids.Length; i++)
            {
                if (values[i].IsNull)
                {
                    _ = Db.SetRemoveAsync(NodesKey, ids[i], CommandFlags.FireAndForget);
                }
                else if (ParseNode((string)values[i]!) is var (url, documents))
                {
                    nodes.Add(new NodeInfo(ids[i], url, documents));
                }
            }
            return nodes;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            throw Unreachable(ex);
        }
    }

    /// <summary>
    /// Stops taking documents (claims answer with their owner, or unavailable) and leaves the
    /// node list at once, so no other node moves a document here meanwhile.
    /// </summary>
    public async Task BeginDrainAsync()
    {
        _draining = true;
        try
        {
            await Db.SetRemoveAsync(NodesKey, NodeId).ConfigureAwait(false);
            await Db.KeyDeleteAsync(NodeKey(NodeId)).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.RedisFailed(_logger, ex.Message);
        }
    }

    private async Task<(string Node, long Epoch)?> OwnerAsync(string docId)
    {
        var value = (string?)await Db.StringGetAsync(LeaseKey(docId)).ConfigureAwait(false);
        if (value is null || value.LastIndexOf(':') is var colon && colon < 0)
        {
            return null;
        }
        return (value[..colon], long.Parse(value[(colon + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    private async Task<string?> UrlOfAsync(string nodeId) =>
        (string?)await Db.StringGetAsync(NodeKey(nodeId)).ConfigureAwait(false) is { } value && ParseNode(value) is var (url, _) ? url : null;

    /// <summary>A registration, <c>url documents</c>; null unless the URL is an absolute http(s) one.</summary>
    private static (string Url, int Documents)? ParseNode(string value) =>
        value.Split(' ') is [var url, var documents] && int.TryParse(documents, out var n)
            && Uri.TryCreate(url, UriKind.Absolute, out var parsed) && parsed.Scheme is "http" or "https"
            ? (url, n)
            : null;

    private CollabError Unreachable(Exception ex)
    {
        Log.RedisFailed(_logger, ex.Message);
        return CollabError.Unavailable("the cluster's routing store (Redis) cannot be reached; try again shortly");
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await VerifyDurableTierAsync().ConfigureAwait(false);
        _loop = Task.Run(RunAsync, CancellationToken.None);
    }

    /// <summary>
    /// Refuses to join a cluster whose acknowledged edits would live on one machine's disk: without
    /// PostgreSQL the nodes must share one data directory, or a document's edits are lost with its
    /// owner's machine (and the next owner starts it empty). Each node leaves a mark in the data
    /// directory (<c>nodes/{NodeId}</c>), registers, and then looks for the marks of every live node;
    /// of two nodes started together on different disks, the later to look sees the other.
    /// </summary>
    private async Task VerifyDurableTierAsync()
    {
        if (_options.UsesPostgres)
        {
            return;
        }
        var marks = Path.Combine(_options.DataDir, "nodes");
        Directory.CreateDirectory(marks);
        await File.WriteAllTextAsync(Path.Combine(marks, NodeId), NodeUrl).ConfigureAwait(false);
        string[] missing;
        try
        {
            var db = Db;
            await db.StringSetAsync(NodeKey(NodeId), $"{NodeUrl} 0", TimeSpan.FromMilliseconds(_ttlMs)).ConfigureAwait(false);
            await db.SetAddAsync(NodesKey, NodeId).ConfigureAwait(false);
            var live = (await NodesAsync().ConfigureAwait(false)).Select(n => n.Node);
            missing = [.. live.Where(node => node != NodeId && !File.Exists(Path.Combine(marks, node))).Order(StringComparer.Ordinal)];
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or CollabError)
        {
            Log.RedisFailed(_logger, ex.Message); // cannot look now; the node serves nothing until Redis is back anyway
            return;
        }
        if (missing.Length > 0)
        {
            await Db.KeyDeleteAsync(NodeKey(NodeId)).ConfigureAwait(false);
            await Db.SetRemoveAsync(NodesKey, NodeId).ConfigureAwait(false);
            throw new OptionsValidationException(CollabOptions.Section, typeof(CollabOptions),
            [
                $"node {NodeId} does not share its data directory ({Path.GetFullPath(_options.DataDir)}) with node(s) {string.Join(", ", missing)} of this cluster, "
                + "and Collab:Postgres is not set: each document's acknowledged edits would be on one machine's disk, lost with it. "
                + "Give every node the same data directory, or set Collab:Postgres on every node (docs/OPERATIONS.md, \"PostgreSQL\").",
            ]);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        if (!_draining)
        {
            // Leave the registry at once rather than when the registration runs out (a drain has
            // left it already).
            await BeginDrainAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Every third of the TTL: the registration, then every lease held.</summary>
    private async Task RunAsync()
    {
        var period = TimeSpan.FromMilliseconds(_ttlMs / 3.0);
        while (!_stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                if (!_draining)
                {
                    var db = Db;
                    var register = db.StringSetAsync(NodeKey(NodeId), $"{NodeUrl} {_held.Count}", TimeSpan.FromMilliseconds(_ttlMs));
                    var add = db.SetAddAsync(NodesKey, NodeId);
                    await Task.WhenAll(register, add).ConfigureAwait(false);
                    Volatile.Write(ref _registeredUntil, started + _trustTicks);
                }
                await RefreshNodeOriginsAsync().ConfigureAwait(false);
            }
            catch (CollabError)
            {
                // Logged by NodesAsync; the last list stays.
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                Log.RedisFailed(_logger, ex.Message);
            }
            try
            {
                await RenewAsync(started).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Never let the loop die: without it every lease would run out.
                Log.RedisFailed(_logger, ex.Message);
            }
            try
            {
                await Task.Delay(period - Stopwatch.GetElapsedTime(started) is { Ticks: > 0 } wait ? wait : TimeSpan.Zero, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task RenewAsync(long started)
    {
        var held = _held.Values.ToArray();
        for (var from = 0; from < held.Length; from += RenewBatch)
        {
            var batch = held.AsSpan(from, Math.Min(RenewBatch, held.Length - from)).ToArray();
            RedisKey[] keys = [.. batch.Select(h => LeaseKey(h.Lease.DocId))];
            RedisValue[] values = [_ttlMs, .. batch.Select(h => (RedisValue)h.Value)];
            RedisResult[] results;
            try
            {
                results = (RedisResult[])(await Db.ScriptEvaluateAsync(RenewScript, keys, values).ConfigureAwait(false))!;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                // Not renewed: each lease stays trusted until its time, then commits are refused.
                _metrics.RenewFailed(batch.Length);
                Log.RedisFailed(_logger, ex.Message);
                continue;
            }
            for (var i = 0; i < batch.Length; i++)
            {
                var h = batch[i];
                if ((long)results[i] == 1)
                {
                    h.Lease.Extend(started + _trustTicks);
                }
                else if (_held.TryRemove(new KeyValuePair<string, Held>(h.Lease.DocId, h)) && h.Lease.End())
                {
                    // Taken over, or run out while Redis was away: the actor stops and its members rejoin.
                    _metrics.RenewFailed(1);
                    Log.LeaseLost(_logger, h.Lease.DocId, h.Lease.Epoch);
                    h.Lost();
                }
            }
        }
    }

    public void Dispose()
    {
        _stop.Dispose();
        _redis.Dispose();
    }
}
