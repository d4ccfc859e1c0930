namespace CollabServer.Cluster;

/// <summary>
/// Draining a cluster node on SIGTERM: before the server stops accepting requests, the
/// node stops taking documents and moves each one it owns to another live node (round robin), or
/// gives its lease back when it is the last node. The members follow their documents (Reset,
/// join again, redirect), so nothing is lost and nobody waits for a lease to run out.
/// </summary>
public sealed class ClusterDrain(RedisOwnership ownership, Documents.DocumentRegistry registry, ILogger<ClusterDrain> logger) : IHostedLifecycleService
{
    /// <summary>Longest a drain takes before the node stops anyway (leases then run out by themselves).</summary>
    private static readonly TimeSpan s_limit = TimeSpan.FromSeconds(5);

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        await ownership.BeginDrainAsync().ConfigureAwait(false);
        IReadOnlyList<string> others;
        try
        {
            others = [.. (await ownership.NodesAsync().ConfigureAwait(false)).Where(n => n.Node != ownership.NodeId).Select(n => n.Node)];
        }
        catch (Errors.CollabError)
        {
            others = []; // Redis away: the documents just stop, and their leases run out
        }
        Log.Draining(logger, registry.ActiveCount, others.Count);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(s_limit);
        try
        {
            await registry.DrainAsync(others, limit.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Out of time: what is left closes with the registry.
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
