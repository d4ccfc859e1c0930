namespace CollabServer.Cluster;

/// <summary>
/// Who owns which document: the seam between the document actors and the cluster. On a single
/// node (<see cref="SingleNodeOwnership"/>) this node owns everything with epoch 0; in a cluster
/// (<see cref="RedisOwnership"/>) each document's owner holds a lease in Redis. The registry
/// claims a lease before an actor loads, the actor writes under it, and gives it back when it stops.
/// </summary>
public interface IDocumentOwnership
{
    /// <summary>Whether this node is part of a cluster (Redis is configured).</summary>
    bool Clustered { get; }

    /// <summary>This node's id and base URL (on a single node, from configuration or null).</summary>
    string? NodeId { get; }

    string? NodeUrl { get; }

    /// <summary>Whether this node can serve: it reaches Redis and is not shutting down.</summary>
    bool Ready { get; }

    /// <summary>
    /// Claims the document for this node, with an epoch above <paramref name="storedEpoch"/> (the
    /// newest the document's database records). Throws <see cref="NotOwnerException"/> when another
    /// live node owns it, and <see cref="Errors.CollabError"/> <c>unavailable</c> when it cannot
    /// be claimed now. <paramref name="lost"/> is called (once, from any thread) if the lease is
    /// lost to another node, or was not renewed in time.
    /// </summary>
    Task<Lease> ClaimAsync(string docId, long storedEpoch, Action lost);

    /// <summary>Gives the lease back (the actor stopped); nothing if it ended already.</summary>
    void Release(Lease lease);

    /// <summary>
    /// Hands the lease to <paramref name="nodeId"/> (a live move): from now on that node claims the
    /// document and this one redirects to it. False if this node no longer held it. Blocks for one
    /// Redis round trip, on purpose: the actor's loop waits, so nothing is sequenced meanwhile.
    /// </summary>
    bool HandOver(Lease lease, string nodeId);

    /// <summary>The base URL of the document's owner, or this node's when nobody owns it (it would claim it); <c>unavailable</c> while its owner is dead but its lease runs.</summary>
    Task<string?> RouteAsync(string docId);

    /// <summary>The live nodes, with how many documents each owns.</summary>
    Task<IReadOnlyList<NodeInfo>> NodesAsync();

    /// <summary>Whether <paramref name="origin"/> (<c>scheme://host:port</c>) is a live node's: a page served by one node may connect to the others.</summary>
    bool IsNodeOrigin(string origin);

    /// <summary>
    /// <see cref="IsNodeOrigin"/>, but an origin this node does not know yet (a node that joined
    /// since it last read the registry) is looked up again before the answer is no.
    /// </summary>
    ValueTask<bool> IsNodeOriginAsync(string origin) => new(IsNodeOrigin(origin));
}

/// <summary>One live node, as <c>GET /api/cluster</c> lists it.</summary>
public sealed record NodeInfo(string Node, string Url, int Documents);

/// <summary>The document is owned by another live node: clients go there (<c>redirect</c>), REST calls are forwarded there.</summary>
public sealed class NotOwnerException(string docId, string nodeId, string url)
    : Exception($"document '{docId}' is owned by node {nodeId} at {url}")
{
    public string NodeId { get; } = nodeId;

    public string Url { get; } = url;
}
