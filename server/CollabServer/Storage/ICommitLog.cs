namespace CollabServer.Storage;

/// <summary>
/// A document's batch as the commit log keeps it: which document (and which life of it: a
/// document deleted and made again under the same id has a new <see cref="Incarnation"/>), the
/// owner's lease epoch it was written under, and its ops, whose versions follow one another.
/// </summary>
public sealed record LogBatch(string DocId, long Incarnation, long Epoch, IReadOnlyList<StoredOp> Ops)
{
    /// <summary>The text's length after the batch.</summary>
    public int Length { get; init; }

    /// <summary>The chunk of a snapshot written with the batch, if any (a log that loads documents by itself keeps them).</summary>
    public SnapshotChunk? Snapshot { get; init; }
}

/// <summary>
/// Where an acknowledged op is durable: the seam between a document's commit and the disk.
/// A document's actor commits each batch to its own store first (synced or not as
/// <see cref="CollabOptions.DocumentSync"/> says for this log), then appends it here and acknowledges the
/// batch only once <see cref="Append"/> reports it durable. Implementations:
/// <see cref="DocumentFileLog"/> (each document's file is synced at every commit) and
/// <see cref="NodeCommitLog"/> (one log per node, one sync for every batch that arrived since
/// the last one; the documents' files are brought up to date from it after a crash).
/// </summary>
public interface ICommitLog
{
    /// <summary>Whether a batch is durable as soon as its document's store has committed it (then <see cref="Append"/> is never called).</summary>
    bool DurableOnStoreCommit { get; }

    /// <summary>
    /// Makes a batch that its document's store has just committed durable. <paramref name="durable"/>
    /// is called exactly once, on any thread, with null when the batch is durable or with the
    /// error when it cannot be made so; it must return at once.
    /// </summary>
    void Append(LogBatch batch, Action<Exception?> durable);

    /// <summary>
    /// Brings every document's own database up to date with what the log holds that the database
    /// may lack (after a crash), then lets go of that part of the log. Called once, before the
    /// node serves anything.
    /// </summary>
    void Recover(IDocumentStorage storage);
}

/// <summary>
/// The per-document mode (<c>Collab:CommitLog=Document</c>): a batch is durable when its
/// document's SQLite commit returns, synced as <see cref="CollabOptions.Sync"/> says. There is
/// no separate log to append to or recover from.
/// </summary>
public sealed class DocumentFileLog : ICommitLog
{
    public bool DurableOnStoreCommit => true;

    public void Append(LogBatch batch, Action<Exception?> durable) => durable(null);

    public void Recover(IDocumentStorage storage)
    {
    }
}

/// <summary>A batch the commit log could not make durable; its document's actor steps down (its file may hold ops it never acknowledged).</summary>
public sealed class CommitLogException(string message, Exception? inner = null) : IOException(message, inner);
