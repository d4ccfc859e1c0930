using CollabServer.Backup;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabServer.History;

/// <summary>
/// The retention pass (<see cref="HistoryOptions.Retention"/>): every
/// <see cref="HistoryOptions.RetentionCheckInterval"/>, each document's ops older than the
/// retention period are folded into a snapshot at the boundary. It runs on its own thread and its
/// own connections, a thousand rows per transaction, so it never holds up a document's edits.
/// With continuous backup on, an op is folded only once it is in the backup.
/// </summary>
public sealed class RetentionService(DocumentCatalog catalog, IOptions<CollabOptions> options, TimeProvider clock, ILogger<RetentionService> logger, BackupShipper? backup = null) : BackgroundService
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
            await Task.Run(() => Pass(history.Retention, stoppingToken), stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    /// <summary>One pass over every document; a document that fails is logged and retried next pass.</summary>
    internal void Pass(TimeSpan retention, CancellationToken cancellationToken = default)
    {
        var cutoff = (clock.GetUtcNow() - retention).ToUnixTimeMilliseconds();
        foreach (var id in catalog.ListIds())
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                if (catalog.FoldBefore(id, cutoff, backup?.ShippedThrough(id)) is int boundary)
                {
                    Log.RetentionFolded(logger, id, boundary);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Log.RetentionFailed(logger, id, ex);
            }
        }
    }
}
