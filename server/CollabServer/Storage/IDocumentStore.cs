using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>An op as stored: the version it produced, who sent it, and when.</summary>
public sealed record StoredOp(int Version, DocOp Op, string ClientId, long OpId, long CreatedAtMs)
{
    /// <summary>The op as the logs store it (its JSON text), made once however many write it (the document's store, the node log, the backup).</summary>
    public string Json => Op.Json;

    /// <summary>
    /// Who made it, for history, when the document's store should record that with this op: a
    /// member's name the first time its author key commits in an actor's life (and after a name
    /// change), every server write's kind. Only the document's own database keeps it.
    /// </summary>
    public OpAuthorship? Authorship { get; init; }
}

/// <summary>
/// Who made an op, as history shows it: a member (<see cref="Kind"/> <c>member</c>) with the name
/// the server resolved for its connection (the token's <c>name</c>, else the name it joined with),
/// or the server on a caller's behalf: <c>edit</c> (a REST <c>PUT</c>) or <c>restore</c>.
/// </summary>
public sealed record OpAuthorship(string Kind, string Subject, string? Name)
{
    public const string Member = "member";
    public const string RestEdit = "edit";
    public const string Restore = "restore";
}

/// <summary>
/// One piece of a snapshot, written with an op commit. A snapshot of a large text is written a
/// chunk per commit, so no commit carries megabytes; it counts only once its last chunk is in.
/// </summary>
public sealed record SnapshotChunk(int Version, int Seq, string Text, bool IsLast, int Length);

/// <summary>What loading a document found: the content and version, and the ops replayed onto the newest snapshot.</summary>
public sealed record LoadedDocument(DocContent Content, int Version, int SnapshotVersion, IReadOnlyList<StoredOp> RecentOps);

/// <summary>A document's state as REST lists it.</summary>
public sealed record DocumentSummary(string Id, int Version, int Length, DateTimeOffset UpdatedAt)
{
    /// <summary>The <see cref="State"/> of a document whose database was set aside as damaged.</summary>
    public const string Quarantined = "quarantined";

    /// <summary>Null for a healthy document (and then not sent); <see cref="Quarantined"/> otherwise.</summary>
    public string? State { get; init; }
}

/// <summary>
/// The fencing token a commit carries: the owner's lease epoch, and until when (a
/// <see cref="System.Diagnostics.Stopwatch"/> timestamp) the owner may still write under it. A
/// store refuses a commit whose epoch is older than one it has already seen, or whose lease may
/// have run out, in the same transaction as the write, so a node that lost its lease cannot
/// write even before it knows. <see cref="None"/> on a single node.
/// </summary>
public readonly record struct FenceToken(long Epoch, long ValidUntil = long.MaxValue)
{
    public static readonly FenceToken None = new(0);

    /// <summary>
    /// Throws <see cref="FencedException"/> if a write under this token must be refused in a
    /// document that records <paramref name="storedEpoch"/> (read inside the write's transaction);
    /// true when the token's newer epoch must be recorded. Every store checks a write with this.
    /// A single node's token (<see cref="None"/>) needs no stored epoch: skip reading it.
    /// </summary>
    public bool Check(long storedEpoch)
    {
        if (Epoch == 0)
        {
            return false; // a single node: no leases, nothing to fence
        }
        if (System.Diagnostics.Stopwatch.GetTimestamp() >= ValidUntil)
        {
            throw new FencedException($"the lease of epoch {Epoch} may have run out", expired: true);
        }
        if (storedEpoch > Epoch)
        {
            throw new FencedException($"epoch {Epoch} is fenced off by epoch {storedEpoch}", storedEpoch);
        }
        return storedEpoch < Epoch;
    }
}

/// <summary>
/// A commit refused by its <see cref="FenceToken"/>: a newer owner has claimed the document
/// (<see cref="StoredEpoch"/> is newer), or the lease may have run out (<see cref="Expired"/>).
/// </summary>
public sealed class FencedException(string message, long storedEpoch = 0, bool expired = false) : Exception(message)
{
    public long StoredEpoch { get; } = storedEpoch;

    public bool Expired { get; } = expired;
}

/// <summary>The committed ops of one document, read on the document's loop.</summary>
public interface IOpLog
{
    /// <summary>The ops with <paramref name="after"/> &lt; version ≤ <paramref name="upTo"/>, oldest first.</summary>
    List<StoredOp> ReadOps(int after, int upTo, int limit = int.MaxValue);

    /// <summary>The version produced by (clientId, opId), if that op was ever committed.</summary>
    int? FindOp(string clientId, long opId);

    /// <summary>The highest op id a client ever committed, or <see cref="long.MinValue"/>.</summary>
    long MaxOpId(string clientId);
}

/// <summary>
/// One document's durable storage, used only by the document's actor (its loop, or the one
/// commit it has in flight), so implementations need no locks.
/// </summary>
public interface IDocumentStore : IOpLog, IDisposable
{
    /// <summary>The document's type, fixed when it was created.</summary>
    DocumentType Type { get; }

    /// <summary>Reads the newest snapshot and replays the ops after it.</summary>
    LoadedDocument Load();

    /// <summary>Which life of the document this store holds: made at random when it is created, so a document deleted and made again under the same id is told apart in the commit log.</summary>
    long Incarnation { get; }

    /// <summary>
    /// Recovery from the commit log (one transaction): appends the ops of <paramref name="batches"/>
    /// (in log order) that follow the newest version stored, skipping batches of another
    /// <see cref="Incarnation"/> and batches whose epoch is below the one stored; how many went in.
    /// </summary>
    int Replay(IReadOnlyList<LogBatch> batches);

    /// <summary>
    /// Commits ops (and chunks of a snapshot) in one transaction, so a whole group of ops costs one
    /// fsync. <paramref name="length"/> is the text's length after the last op. Throws, changing
    /// nothing, if anything fails; <see cref="FencedException"/> if <paramref name="fence"/> is stale.
    /// </summary>
    void Commit(IReadOnlyList<StoredOp> ops, int length, IReadOnlyList<SnapshotChunk> snapshot, FenceToken fence);

    /// <summary>Writes a whole snapshot in one transaction, outside of an op commit (on shutdown).</summary>
    void WriteSnapshot(int version, DocContent content, FenceToken fence);

    /// <summary>
    /// Records a new owner's epoch before it serves anything, so the owner before it can commit
    /// nothing more; <see cref="FencedException"/> (with the stored epoch) if a newer one is stored.
    /// </summary>
    void Fence(FenceToken fence);

    /// <summary>The newest owner epoch recorded in the document (0 for none).</summary>
    long StoredEpoch();

    /// <summary>
    /// Retention's write (one fenced transaction): the snapshot at <see cref="FoldPlan.Boundary"/>
    /// becomes the oldest readable version, and older snapshots go. False, changing nothing, when
    /// the document is no longer the one planned from.
    /// </summary>
    bool WriteFold(FoldPlan plan, FenceToken fence);

    /// <summary>Deletes at most <paramref name="limit"/> ops at or below a boundary already written by <see cref="WriteFold"/>, in one fenced transaction; how many went.</summary>
    int DeleteFolded(int boundary, int limit, FenceToken fence);
}

/// <summary>What retention folds in one document: the ops up to <see cref="Boundary"/> (committed at <see cref="BoundaryAtMs"/>) into a snapshot of <see cref="Content"/>.</summary>
public sealed record FoldPlan(int Boundary, long BoundaryAtMs, DocContent Content)
{
    /// <summary>The content cut into snapshot chunks off the loop, so the owner's write only inserts them.</summary>
    internal IReadOnlyList<SnapshotChunk>? Chunks { get; init; }
}

/// <summary>A batch that is durable: what listeners after each commit (metrics, backup) are told. <see cref="Ops"/> is never changed afterwards, so a listener may keep it.</summary>
public sealed record CommittedBatch(string DocId, IReadOnlyList<StoredOp> Ops, TimeSpan Duration);

/// <summary>
/// Told about every durable commit, on the document's loop, before the ops are acknowledged. It
/// must return at once (queue work elsewhere); a listener that throws is logged and ignored.
/// </summary>
public interface ICommitListener
{
    void Committed(CommittedBatch batch);

    /// <summary>Told, on the document's loop, that a document's files were deleted (after its last commit was told).</summary>
    void Deleted(string docId)
    {
    }
}
