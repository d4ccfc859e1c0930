using Microsoft.Extensions.Options;

namespace CollabServer.Cluster;

/// <summary>No Redis configured: this node owns every document, with epoch 0 (nothing to fence).</summary>
public sealed class SingleNodeOwnership(IOptions<CollabOptions> options) : IDocumentOwnership
{
    public bool Clustered => false;

    public string? NodeId { get; } = options.Value.NodeId;

    public string? NodeUrl { get; } = options.Value.NodeUrl;

    public bool Ready => true;

    public Task<Lease> ClaimAsync(string docId, long storedEpoch, Action lost) => Task.FromResult(Lease.SingleNode(docId));

    public bool IsNodeOrigin(string origin) => false;

    public void Release(Lease lease)
    {
    }

    public bool HandOver(Lease lease, string nodeId) => false;

    public Task<string?> RouteAsync(string docId) => Task.FromResult(NodeUrl);

    public Task<IReadOnlyList<NodeInfo>> NodesAsync() => Task.FromResult<IReadOnlyList<NodeInfo>>([]);
}
