using System.Diagnostics;
using CollabServer.Cluster;
using CollabServer.Errors;
using CollabServer.Storage;

namespace CollabServer.Documents;

/// <summary>
/// How a document's actor starts, before its loop takes any message: a quarantined document is
/// refused; the document is claimed for this node (<see cref="IDocumentOwnership"/>), and in a
/// cluster the claim's epoch is written into its database before anything is served, so the
/// previous owner can commit nothing more; then it is loaded. And what the work that waited is
/// told when the start fails.
/// </summary>
internal static class ActorStart
{
    /// <summary>The lease and what was loaded; a failure after the claim releases the lease before it throws.</summary>
    public static async Task<(Lease Lease, LoadedDocument Loaded)> ClaimAndLoadAsync(string docId, ActorServices services, DocumentDatabase database, Action leaseLost)
    {
        var started = Stopwatch.GetTimestamp();
        if (services.Storage.IsQuarantined(docId))
        {
            throw CollabError.Quarantined(docId);
        }
        var store = database.OpenForLoad();
        var ownership = services.Ownership;
        var lease = ownership.Clustered
            ? await ownership.ClaimAsync(docId, store?.StoredEpoch() ?? 0, leaseLost).ConfigureAwait(false)
            : Lease.SingleNode(docId);
        try
        {
            if (lease.Epoch != 0)
            {
                try
                {
                    store?.Fence(lease.Fence);
                }
                catch (FencedException)
                {
                    throw CollabError.Unavailable("the document was just claimed by another node; try again");
                }
            }
            var loaded = store?.Load() ?? new LoadedDocument(Types.DocumentType.Text.Empty, 0, 0, []);
            if (store is not null)
            {
                Log.DocumentLoaded(services.Logger, docId, loaded.Version, loaded.Content.Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            return (lease, loaded);
        }
        catch
        {
            ownership.Release(lease);
            throw;
        }
    }

    /// <summary>Closes <paramref name="queue"/> after a failed start and fails the work in it with what <see cref="Failure"/> says.</summary>
    public static void FailWaiting(string docId, ActorServices services, Exception ex, System.Threading.Channels.Channel<Work> queue)
    {
        var error = Failure(docId, services, ex);
        queue.Writer.TryComplete();
        while (queue.Reader.TryRead(out var work))
        {
            work.Fail(error is NotOwnerException owner && work is SubmitWork
                ? new CollabError(Collab.ErrorCodes.NotJoined, $"document '{docId}' is owned by the node at {owner.Url}; join it there")
                : error);
        }
    }

    /// <summary>
    /// What the waiting work is told about a failed start: a refusal, or another node's ownership
    /// (the hub redirects), as it is; a damaged database is set aside (quarantined) once, so it
    /// never costs a failed load again; anything else is logged and is <c>unavailable</c>.
    /// </summary>
    private static Exception Failure(string docId, ActorServices services, Exception ex)
    {
        if (ex is CollabError or NotOwnerException)
        {
            return ex;
        }
        if (DocumentCatalog.IsDamage(ex) && TryQuarantine(docId, services, ex))
        {
            return CollabError.Quarantined(docId);
        }
        Log.DocumentLoadFailed(services.Logger, docId, ex);
        return CollabError.Unavailable("the document could not be loaded; try again later");
    }

    /// <summary>False when even setting it aside fails (then the next request tries the load again).</summary>
    private static bool TryQuarantine(string docId, ActorServices services, Exception damage)
    {
        try
        {
            services.Storage.Quarantine(docId);
            Log.DocumentQuarantined(services.Logger, docId, damage);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.DocumentLoadFailed(services.Logger, docId, new AggregateException(damage, ex));
            return false;
        }
    }
}
