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
            try
            {
                if (await FoldAsync(id, cutoff).ConfigureAwait(false) is int boundary)
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
    internal async Task<int?> FoldAsync(string id, long cutoffMs)
    {
        if (ownership.Clustered && await ownership.RouteAsync(id).ConfigureAwait(false) is { } owner && owner != ownership.NodeUrl)
        {
            return null; // another node owns it
        }
        if (catalog.PlanFold(id, cutoffMs, backup?.ShippedThrough(id)) is not { } plan)
        {
            return null;
        }
        if (!await registry.AskAsync(id, () => new FoldHistory(plan)).ConfigureAwait(false))
        {
            return null;
        }
        while (await registry.AskAsync(id, () => new DeleteFolded(plan.Boundary)).ConfigureAwait(false) > 0)
        {
        }
        return plan.Boundary;
    }
}
