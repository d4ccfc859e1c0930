using CollabServer.Errors;
using CollabServer.Documents.Types;

namespace CollabServer.Storage.Postgres;

/// <summary>
/// Storage when PostgreSQL is the durable tier: whether a document exists, its life and its
/// epoch are PostgreSQL's; its ops are read and written on the node's own SQLite file (the
/// working copy, <see cref="DocumentCatalog"/>), which is made when absent and brought up to date
/// from PostgreSQL when the document is loaded. A node with an empty disk so serves any document.
/// </summary>
public sealed class PostgresStorage(DocumentCatalog local, PostgresDatabase database, PostgresCommitLog log) : IDocumentStorage
{
    public bool Exists(string docId) => local.IsQuarantined(docId) || database.Find(docId) is { Deleted: false };

    public bool IsQuarantined(string docId) => local.IsQuarantined(docId);

    /// <summary>A damaged working copy is not kept: PostgreSQL has the document, and the next load makes the copy again from it.</summary>
    public void Quarantine(string docId)
    {
        log.SetDurable(docId, null);
        local.Delete(docId);
    }

    /// <summary>The working copy, opened again (after a while without writes); it was brought up to date when the document was loaded.</summary>
    public IDocumentStore? OpenExisting(string docId) =>
        local.OpenExisting(docId) is SqliteDocumentStore store ? new PostgresDocumentStore(store, null, database, log, docId) : null;

    /// <summary>
    /// Opens the document to load it: PostgreSQL says whether it exists and which life of it is
    /// current. A missing working copy is made (empty, caught up by <see cref="PostgresDocumentStore.Load"/>);
    /// one of another life, or of a deleted document, goes.
    /// </summary>
    public IDocumentStore? OpenToLoad(string docId)
    {
        var row = database.Find(docId);
        var store = local.OpenExisting(docId) as SqliteDocumentStore;
        if (row is null or { Deleted: true })
        {
            if (store is not null && row is null && store.HeadVersion() > 0)
            {
                store.Dispose();
                throw CollabError.Unavailable($"document '{docId}' is on this node's disk but not in PostgreSQL; this version does not import it");
            }
            if (store is not null)
            {
                store.Dispose();
                local.Delete(docId); // a copy of a document deleted on another node
            }
            log.SetDurable(docId, null);
            return null;
        }
        if (store is not null && store.Incarnation != row.Incarnation)
        {
            store.Dispose();
            local.Delete(docId); // a copy of an earlier life of the document
            store = null;
        }
        store ??= local.Create(docId, row.Incarnation, row.Type);
        return new PostgresDocumentStore(store, row, database, log, docId);
    }

    public IDocumentStore Create(string docId, DocumentType? type = null)
    {
        type ??= DocumentType.Text;
        var incarnation = Random.Shared.NextInt64(1, long.MaxValue);
        if (local.Exists(docId))
        {
            local.Delete(docId); // a leftover copy of a deleted life
        }
        // The copy first: if PostgreSQL then refuses, the copy goes; a copy PostgreSQL does not know goes at its next load anyway.
        var store = local.Create(docId, incarnation, type);
        try
        {
            if (!database.Create(docId, incarnation, type, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()))
            {
                // A live row is there: ours, made by an attempt whose answer was lost, if nothing was
                // ever written to it (only this document's owner makes it); then it is taken as is.
                if (database.Find(docId) is not { Deleted: false, Version: 0 } row)
                {
                    throw CollabError.Unavailable($"document '{docId}' was just made on another node; try again");
                }
                store.Dispose();
                local.Delete(docId);
                store = local.Create(docId, row.Incarnation, row.Type);
            }
        }
        catch
        {
            store.Dispose();
            local.Delete(docId);
            throw;
        }
        log.SetDurable(docId, 0);
        return new PostgresDocumentStore(store, null, database, log, docId);
    }

    /// <summary>Deletes the document's life its working copy holds, fenced by the copy's epoch (the one its owner recorded), and the copy.</summary>
    public void Delete(string docId)
    {
        if (local.OpenExisting(docId) is SqliteDocumentStore copy)
        {
            using (copy)
            {
                database.Delete(docId, copy.Incarnation, copy.StoredEpoch());
            }
            local.Delete(docId);
        }
        log.SetDurable(docId, null);
    }
}

/// <summary>Redirect records (<see cref="IDocumentRedirects"/>) in PostgreSQL's <c>collab_redirects</c>, seen by every node.</summary>
public sealed class PostgresRedirects(PostgresDatabase database) : IDocumentRedirects
{
    public string? Get(string docId) => database.FindRedirect(docId);

    public void Set(string docId, string movedTo) => database.SetRedirect(docId, movedTo);

    public void Remove(string docId) => database.RemoveRedirect(docId);
}

/// <summary>
/// A document's working copy in SQLite, with PostgreSQL behind it: fencing writes the epoch to
/// PostgreSQL first, loading catches the copy up with PostgreSQL first, and each commit records
/// which versions PostgreSQL is known to hold (so a copy that took a batch PostgreSQL never did,
/// in a crash between the two commits, is mended at the next load). Everything else is the copy's.
/// </summary>
internal sealed class PostgresDocumentStore(SqliteDocumentStore copy, PostgresDocument? row, PostgresDatabase database, PostgresCommitLog log, string docId) : IDocumentStore
{
    private long _epoch = row?.Epoch ?? 0;

    public long Incarnation => copy.Incarnation;

    public DocumentType Type => copy.Type;

    /// <summary>
    /// Brings the copy up to date with PostgreSQL, then loads it. What the copy holds up to the
    /// version it recorded as durable is PostgreSQL's; anything after it is replaced by what
    /// PostgreSQL has (ops of a crashed commit that never reached PostgreSQL go).
    /// </summary>
    public LoadedDocument Load()
    {
        var current = database.Find(docId) ?? throw CollabError.Unavailable($"document '{docId}' is no longer in PostgreSQL");
        if (current.Incarnation != copy.Incarnation || current.Deleted)
        {
            throw CollabError.Unavailable($"document '{docId}' was deleted or made again while it loaded; try again");
        }
        var head = copy.HeadVersion();
        // Never past PostgreSQL's head (a failover to a standby that lacked some commits loses them
        // there, and the copy must follow), and from nothing when retention folded ops the copy
        // would need to keep.
        var keep = Math.Min(Math.Min(copy.ReadConfirmed(), head), current.Version);
        if (keep < copy.RetainedFrom() || keep < current.RetainedFrom)
        {
            keep = 0; // the copy would keep ops that retention removed (here, or in PostgreSQL)
        }
        if (keep != current.Version || head != current.Version)
        {
            var (ops, chunks, snapshots) = database.ReadAfter(docId, keep);
            copy.CatchUp(keep, ops, chunks, snapshots, current.Version, Math.Max(_epoch, current.Epoch), current.CreatedAtMs,
                keep == 0 ? (current.RetainedFrom, current.RetainedFromAtMs) : null);
        }
        log.SetDurable(docId, current.Version);
        return copy.Load();
    }

    /// <summary>Records a new owner's epoch in PostgreSQL (where the fence holds for every node), then in the copy.</summary>
    public void Fence(FenceToken fence)
    {
        database.Fence(docId, copy.Incarnation, fence.Epoch);
        _epoch = Math.Max(_epoch, fence.Epoch);
        copy.Fence(fence);
    }

    public long StoredEpoch() => Math.Max(_epoch, copy.StoredEpoch());

    /// <remarks>
    /// The copy does not refuse a batch because the lease may have run out: PostgreSQL orders every
    /// write and holds the fence, so such a batch is refused there if a newer owner has claimed the
    /// document (which fences PostgreSQL before it loads), and otherwise is in PostgreSQL before any
    /// newer owner loads. The copy is this node's alone.
    /// </remarks>
    public void Commit(IReadOnlyList<StoredOp> ops, int length, IReadOnlyList<SnapshotChunk> snapshot, FenceToken fence)
    {
        copy.ConfirmedMark = log.DurableVersion(docId);
        copy.Commit(ops, length, snapshot, fence with { ValidUntil = long.MaxValue });
    }

    public void WriteSnapshot(int version, DocContent content, FenceToken fence)
    {
        copy.ConfirmedMark = log.DurableVersion(docId);
        copy.WriteSnapshot(version, content, fence);
    }

    public int Replay(IReadOnlyList<LogBatch> batches) => copy.Replay(batches);

    public List<StoredOp> ReadOps(int after, int upTo, int limit = int.MaxValue) => copy.ReadOps(after, upTo, limit);

    public int? FindOp(string clientId, long opId) => copy.FindOp(clientId, opId);

    public long MaxOpId(string clientId) => copy.MaxOpId(clientId);

    /// <summary>
    /// Retention: the copy folds (only up to what PostgreSQL is known to hold, so a load never has
    /// to keep ops the fold removed), then PostgreSQL, under the same fence. If PostgreSQL's fold
    /// fails, it keeps more than the copy, which only costs space until the next fold.
    /// </summary>
    public bool WriteFold(FoldPlan plan, FenceToken fence)
    {
        if (plan.Boundary > (log.DurableVersion(docId) ?? 0) || !copy.WriteFold(plan, fence))
        {
            return false;
        }
        database.Fold(docId, copy.Incarnation, fence.Epoch, plan, plan.Chunks ?? SqliteDocumentStore.ChunksOf(plan.Boundary, plan.Content));
        return true;
    }

    public int DeleteFolded(int boundary, int limit, FenceToken fence) => copy.DeleteFolded(boundary, limit, fence);

    public void Dispose() => copy.Dispose();
}
