using System.Diagnostics;
using Collab.Ot;
using CollabServer.Errors;
using CollabServer.Storage;
using CollabServer.Documents.Types;

namespace CollabServer.Documents;

/// <summary>An op sequenced into the batch, waiting for the commit, with every submit waiting on it.</summary>
internal sealed class Pending(StoredOp op, SubmitWork work)
{
    public StoredOp Op { get; } = op;

    public SubmitWork Work { get; } = work;

    /// <summary>Resubmissions of the same (clientId, opId) that arrived while it was uncommitted.</summary>
    public List<SubmitWork>? Duplicates { get; set; }

    public void Complete()
    {
        Work.Complete(Op.Version);
        Duplicates?.ForEach(d => d.Complete(Op.Version));
    }

    public void Fail(Exception error)
    {
        Work.Fail(error);
        Duplicates?.ForEach(d => d.Fail(error));
    }
}

/// <summary>
/// Group commit for one document (Orleans' BatchWorker): sequenced ops gather in a batch; when
/// the loop runs dry the batch is committed in one transaction off the loop, while the loop
/// sequences the next one, so each fsync carries every op that arrived during the previous one.
/// One commit is in flight at a time, so batches land in order. Snapshots of the text are cut
/// from the immutable rope and written a chunk per commit. Used only on the actor's loop; the
/// commit itself runs on the thread pool and reports back through <c>onDone</c>.
/// </summary>
internal sealed class CommitPipeline(string docId, ICommitLog log, int snapshotInterval, int maxBatch)
{
    private readonly List<Pending> _pending = [];
    private SnapshotProgress? _snapshotting;

    /// <summary>The commit running off the loop, if any.</summary>
    public Commit? InFlight { get; private set; }

    /// <summary>The version of the newest complete snapshot.</summary>
    public int SnapshotVersion { get; set; }

    /// <summary>Nothing sequenced and nothing committing.</summary>
    public bool IsIdle => InFlight is null && _pending.Count == 0;

    /// <summary>Enough is waiting that the batch should go now.</summary>
    public bool IsFull => _pending.Count >= maxBatch;

    public void Add(Pending pending) => _pending.Add(pending);

    /// <summary>The uncommitted op at <paramref name="version"/> (in flight or waiting).</summary>
    public Pending Find(int version)
    {
        if (InFlight is { } commit && version <= commit.Version)
        {
            return commit.Batch[version - commit.Batch[0].Op.Version];
        }
        return _pending[version - _pending[0].Op.Version];
    }

    /// <summary>
    /// Starts committing the waiting batch, which leads to <paramref name="content"/> at
    /// <paramref name="version"/>, unless a commit is in flight (then it all goes in the next one).
    /// <paramref name="inline"/> commits on this thread and returns the finished commit; otherwise
    /// <paramref name="onDone"/> is called, from another thread, once the commit is durable or failed.
    /// </summary>
    /// <remarks>
    /// The document's own commit runs on the pool, so the loop sequences the next batch meanwhile;
    /// then, unless that commit made the batch durable (<see cref="ICommitLog.DurableOnStoreCommit"/>),
    /// the <see cref="ICommitLog"/> does, and the commit completes when it says so.
    /// </remarks>
    public Commit? Start(DocContent content, int version, Func<IDocumentStore> openStore, FenceToken fence, bool inline, Action<Commit> onDone)
    {
        if (InFlight is not null || _pending.Count == 0)
        {
            return null;
        }
        if (_snapshotting is null && version - SnapshotVersion >= Math.Max(snapshotInterval, content.Length / 1024))
        {
            // The content is immutable: capturing it is free; its chunks go out with the next commits.
            _snapshotting = new SnapshotProgress(content, version);
        }
        var commit = new Commit([.. _pending], content, version, _snapshotting, fence);
        _pending.Clear();
        InFlight = commit;
        IDocumentStore store;
        try
        {
            store = openStore();
        }
        catch (Exception ex)
        {
            // Could not open the database: the same as a failed commit.
            commit.Fail(ex);
            return commit;
        }
        if (inline)
        {
            commit.Run(store);
            if (commit.Error is null && !log.DurableOnStoreCommit)
            {
                AppendToLog(commit, store, fence, inline: true, onDone).GetAwaiter().GetResult();
            }
            return commit;
        }
        commit.Task = Task.Run(() =>
        {
            commit.Run(store);
            if (commit.Error is null && !log.DurableOnStoreCommit)
            {
                return AppendToLog(commit, store, fence, inline: false, onDone);
            }
            onDone(commit);
            return Task.CompletedTask;
        });
        return null;
    }

    /// <summary>Hands a batch its store has taken to the commit log; the commit completes (and <paramref name="onDone"/> is called unless inline) once the log says it is durable.</summary>
    private Task AppendToLog(Commit commit, IDocumentStore store, FenceToken fence, bool inline, Action<Commit> onDone)
    {
        var durable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        log.Append(new LogBatch(docId, store.Incarnation, fence.Epoch, commit.Ops) { Length = commit.Content.Length, Snapshot = commit.Chunk }, error =>
        {
            commit.Durable(error);
            durable.SetResult();
            if (!inline)
            {
                onDone(commit);
            }
        });
        return durable.Task;
    }

    /// <summary>Whether the commit in flight still uses the document's store (then reading it must wait).</summary>
    public bool StoreBusy => InFlight is { Stored: false };

    /// <summary>Waits for the commit in flight, if any, and returns it for completion.</summary>
    public Commit? Drain()
    {
        if (InFlight is { } commit)
        {
            commit.Task?.GetAwaiter().GetResult();
            return commit;
        }
        return null;
    }

    /// <summary>
    /// Writes a whole snapshot at <paramref name="version"/>, outside of an op commit (with none in
    /// flight), unless the document has none or one at least as new; a failure is logged, since the
    /// next load only replays more.
    /// </summary>
    public void WriteSnapshot(DocumentDatabase database, int version, DocContent content, FenceToken fence, ILogger logger)
    {
        if (!database.Exists || version <= SnapshotVersion)
        {
            return;
        }
        try
        {
            database.Open().WriteSnapshot(version, content, fence);
            SnapshotVersion = version;
        }
        catch (Exception ex)
        {
            Log.SnapshotFailed(logger, docId, ex);
        }
    }

    /// <summary>
    /// Takes a finished commit off the pipeline: false if it was taken already (by
    /// <see cref="Drain"/>). On failure every waiting op is handed back through
    /// <paramref name="rejected"/> too, since it was transformed over the failed batch.
    /// </summary>
    public bool Finish(Commit commit, int committedVersion, out List<Pending> rejected)
    {
        rejected = [];
        if (InFlight != commit)
        {
            return false;
        }
        InFlight = null;
        if (commit.Error is not null)
        {
            rejected.AddRange(commit.Batch);
            rejected.AddRange(_pending);
            _pending.Clear();
            // A snapshot taken of the rejected text must not be written.
            if (_snapshotting is not null && _snapshotting.Version > committedVersion)
            {
                _snapshotting = null;
            }
            return true;
        }
        if (commit.Chunk is { } chunk)
        {
            _snapshotting!.Written(chunk);
            if (chunk.IsLast)
            {
                SnapshotVersion = chunk.Version;
                _snapshotting = null;
            }
        }
        return true;
    }

    /// <summary>A snapshot being written a chunk per commit.</summary>
    internal sealed class SnapshotProgress(DocContent content, int version)
    {
        private readonly Rope _text = content.Snapshot;
        private int _seq;
        private int _offset;

        public int Version => version;

        /// <summary>The next chunk to write; built off the loop.</summary>
        public SnapshotChunk Next()
        {
            var length = SqliteDocumentStore.ChunkLengthAt(_text, _offset);
            return new SnapshotChunk(version, _seq, _text.Substring(_offset, length), _offset + length >= _text.Length, content.Length);
        }

        public void Written(SnapshotChunk chunk)
        {
            _seq = chunk.Seq + 1;
            _offset += chunk.Text.Length;
        }
    }

    /// <summary>One group commit: the batch, the content and version it leads to, and maybe a snapshot chunk.</summary>
    internal sealed class Commit
    {
        private readonly SnapshotProgress? _snapshot;
        private readonly FenceToken _fence;

        internal Commit(Pending[] batch, DocContent content, int version, SnapshotProgress? snapshot, FenceToken fence)
        {
            Batch = batch;
            Ops = Array.ConvertAll(batch, p => p.Op);
            Content = content;
            Version = version;
            _snapshot = snapshot;
            _fence = fence;
        }

        public Pending[] Batch { get; }

        public DocContent Content { get; }

        public int Version { get; }

        public SnapshotChunk? Chunk { get; private set; }

        public Task? Task { get; set; }

        public Exception? Error { get; private set; }

        public TimeSpan Duration { get; private set; }

        /// <summary>Whether the document's own store has committed the batch (it may still wait for the log); set off the loop, read on it.</summary>
        public bool Stored => Volatile.Read(ref _stored);

        private bool _stored;

        private long _started;

        /// <summary>The batch's ops, made once: written by the commit, then handed to the commit listeners, which may keep it (it is never changed).</summary>
        public StoredOp[] Ops { get; }

        public void Fail(Exception error) => Error = error;

        /// <summary>
        /// Whether the failure ends this actor's ownership: a newer owner wrote its epoch, or the
        /// log has versions this actor never saw (SQLITE_CONSTRAINT: written by another node), or
        /// the commit log failed after the store took the batch (the file holds ops this actor
        /// rolled back). The members join again, and the next actor loads what is on disk.
        /// </summary>
        public bool EndsOwnership => Error is FencedException { Expired: false } or Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19 } or CommitLogException;

        /// <summary>What the failed batch's ops (and every op sequenced after them) are answered.</summary>
        public CollabError Refusal(string docId) => Error is FencedException fenced
            ? CollabError.Unavailable($"this node cannot write document '{docId}' now ({fenced.Message}); resubmit it")
            : CollabError.Unavailable("the op could not be stored; resubmit it");

        /// <summary>Writes the batch to the document's store in one transaction; never throws.</summary>
        public void Run(IDocumentStore store)
        {
            _started = Stopwatch.GetTimestamp();
            try
            {
                Chunk = _snapshot?.Next();
                store.Commit(Ops, Content.Length, Chunk is null ? [] : [Chunk], _fence);
            }
            catch (Exception ex)
            {
                Error = ex;
            }
            Volatile.Write(ref _stored, true);
            Duration = Stopwatch.GetElapsedTime(_started);
        }

        /// <summary>The commit log has made the stored batch durable, or could not (<paramref name="error"/>).</summary>
        public void Durable(Exception? error)
        {
            Error = error;
            Duration = Stopwatch.GetElapsedTime(_started);
        }
    }
}
