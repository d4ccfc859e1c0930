using CollabServer.Backup;
using CollabServer.Cluster;
using CollabServer.Documents;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabServer.History;

/// <summary>
/// The retention pass (<see cref="HistoryOptions.Retention"/>): every
/// <see cref="HistoryOptions.RetentionCheckInterval"/>, each document's ops older than the
/// retention period are folded into a snapshot at the boundary. What to fold is read off the
/// document's loop, on a read-only connection; the writes go to the document's owner as messages,
/// fenced like any commit, the deletes a thousand rows at a time so edits interleave. A document
/// another node owns is left to that node's pass: nothing writes a database but its owner. With
/// continuous backup on, an op is folded only once it is in the backup.
/// </summary>
public sealed class RetentionService(
    DocumentCatalog catalog,
    DocumentRegistry registry,
    IDocumentOwnership ownership,
    IOptions<CollabOptions> options,
    TimeProvider clock,
    ILogger<RetentionService> logger,
    BackupShipper? backup = null) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var history = options.Value.History;
        if (history.Retention <= TimeSpan.Zero)
        {
            return;
        }
        using var timer = new PeriodicTimer(history.RetentionCheckInterval, clock);
        do
        {
            await Task.Run(() => PassAsync(history.Retention, stoppingToken), stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One pass over every document; a document that fails is logged and retried next pass.</summary>
    internal async Task PassAsync(TimeSpan retention, CancellationToken cancellationToken = default)
    {
        var cutoff = (clock.GetUtcNow() - retention).ToUnixTimeMilliseconds();
        foreach (var id in catalog.ListIds())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!ownership.Ready)
            {
                return; // draining, stopping, or cut off from Redis: the next pass (here or elsewhere) goes on
            }
            try
            {
                if (await FoldAsync(id, cutoff, cancellationToken).ConfigureAwait(false) is int boundary)
                {
                    Log.RetentionFolded(logger, id, boundary);
                }
            }
            catch (NotOwnerException)
            {
                // Claimed by another node meanwhile: its pass folds it.
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.RetentionFailed(logger, id, ex);
            }
        }
    }

    /// <summary>Folds one document through its owner; the boundary, or null when there was nothing to fold here.</summary>
    internal async Task<int?> FoldAsync(string id, long cutoffMs, CancellationToken cancellationToken = default)
    {
        if (ownership.Clustered && await ownership.RouteAsync(id).ConfigureAwait(false) is { } owner && owner != ownership.NodeUrl)
        {
            return null; // another node owns it
        }
        if (catalog.PlanFold(id, cutoffMs, backup?.ShippedThrough(id)) is not { } plan)
        {
            return null;
        }
        // A document nobody had loaded is loaded (and, in a cluster, claimed) only for the fold,
        // and let go right after it, instead of staying for the idle timeout.
        var wasLive = registry.IsLive(id);
        try
        {
            if (!await registry.AskAsync(id, () => new FoldHistory(plan)).ConfigureAwait(false))
            {
                return null;
            }
            while (await registry.AskAsync(id, () => new DeleteFolded(plan.Boundary)).ConfigureAwait(false) > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
            return plan.Boundary;
        }
        finally
        {
            if (!wasLive)
            {
                registry.StopIfIdle(id);
            }
        }
    }
}
