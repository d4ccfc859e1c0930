using System.Diagnostics;
using System.Threading.Channels;
using Collab;
using Collab.Messages;
using CollabServer.Cluster;
using CollabServer.Errors;
using CollabServer.Storage;

namespace CollabServer.Documents;

/// <summary>
/// One document: the sequencer of its ops. Its queue is the only way in and its loop the only
/// code that touches its state, so edits apply strictly one after another without locks. The
/// loop hands each concern to its own type: ordering to the <see cref="Sequencer"/>, group
/// commit to the <see cref="CommitPipeline"/>, the database's open/closed life to
/// <see cref="DocumentDatabase"/>, members and broadcasts to <see cref="Membership"/>.
/// </summary>
/// <remarks>
/// Nothing is acknowledged or broadcast before it is committed: the loop sequences every submit
/// waiting in the queue against the working text, commits them in one transaction, then acks
/// and broadcasts. If the commit fails, the working text is dropped (the rope is immutable, so
/// that is free) and every uncommitted op is rejected with <c>unavailable</c>.
/// </remarks>
public sealed partial class DocumentActor
{
    /// <summary>The clientId of ops made by the server itself (REST writes); clients never have an empty id.</summary>
    internal const string ServerClientId = "";

    private static readonly UnboundedChannelOptions s_queueOptions = new()
    {
        SingleReader = true,
        SingleWriter = false,
        AllowSynchronousContinuations = false,
    };

    private readonly Channel<Work> _queue = Channel.CreateUnbounded<Work>(s_queueOptions);
    private readonly ActorServices _services;
    private readonly Action<DocumentActor> _closed;
    private readonly CollabOptions _options;
    private readonly TokenBucket _writeBytes;

    /// <summary>Author keys whose name this actor has had stored with one of their ops (<see cref="AuthorshipOf"/>).</summary>
    private readonly HashSet<string> _namedAuthors = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private int _started;

    // State below is touched only by the loop.
    private DocumentState _state = DocumentState.Loading;
    private Lease _lease = null!; // claimed before the load; see ClaimAndLoadAsync
    private readonly DocumentDatabase _database;
    private Sequencer _sequencer = null!; // made by Load
    private readonly CommitPipeline _pipeline;
    /// <summary>Messages waiting, in arrival order, behind one that needs every sequenced op committed (see <see cref="Work.NeedsCommitted"/>).</summary>
    private readonly Queue<Work> _parked = new();
    private readonly Membership _members;
    private long _lastActivity = Stopwatch.GetTimestamp();
    private long _updatedAtMs;
    private long _clockMs; // the newest op time stamped; see Sequence

    /// <summary>The actor of <paramref name="docId"/>; <paramref name="closed"/> is called once it has stopped and closed its database (or its load failed).</summary>
    internal DocumentActor(string docId, ActorServices services, Action<DocumentActor> closed)
    {
        DocId = docId;
        _services = services;
        _closed = closed;
        _options = services.Options;
        _writeBytes = new TokenBucket(_options.DocumentWriteBytesPerSecond, _options.DocumentWriteBytesBurst);
        _logger = services.Logger;
        _database = new DocumentDatabase(services.Storage, docId, _options.DatabaseIdleTimeout, services.Redirects);
        _pipeline = new CommitPipeline(docId, services.CommitLog, _options.SnapshotInterval, _options.MaxBatch);
        _members = new Membership(docId, services.Metrics);
    }

    public string DocId { get; }

    /// <summary>Completes when the loop has stopped and the database is closed.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Number of members, read without the loop (for metrics).</summary>
    public int MemberCount => _members.CountForMetrics;

    /// <summary>The bytes of recent ops in memory, for metrics (read from any thread; zero before the load).</summary>
    public long OpWindowBytes => Volatile.Read(ref _sequencer) is { } sequencer ? sequencer.WindowBytes : 0;

    internal void EnsureStarted()
    {
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            Completion = Task.Run(RunAsync);
        }
    }

    /// <summary>Queues work; false when the actor is shutting down (wait for <see cref="Completion"/>, then ask the registry again).</summary>
    internal bool TryPost(Work work) => _queue.Writer.TryWrite(work);

    /// <summary>Asks the loop to commit what it has and shut down.</summary>
    internal void Stop() => TryPost(new StopWork());

    private void RequestStop()
    {
        if (_state is DocumentState.Live or DocumentState.Idle)
        {
            _state = DocumentState.Stopping;
        }
    }

    private bool Closed => _state is DocumentState.Closing or DocumentState.Deleted or DocumentState.Moved;

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        try
        {
            await ClaimAndLoadAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Exception error = CollabError.Unavailable("the document could not be loaded; try again later");
            _database.Dispose();
            if (_lease is not null)
            {
                _services.Ownership.Release(_lease);
            }
            if (ex is CollabError or NotOwnerException)
            {
                error = ex; // refused, or owned by another node: the hub redirects
            }
            else if (DocumentCatalog.IsDamage(ex) && TryQuarantine(ex))
            {
                error = CollabError.Quarantined(DocId);
            }
            else
            {
                Log.DocumentLoadFailed(_logger, DocId, ex);
            }
            _queue.Writer.TryComplete();
            while (reader.TryRead(out var work))
            {
                work.Fail(error is NotOwnerException owner && work is SubmitWork
                    ? new CollabError(ErrorCodes.NotJoined, $"document '{DocId}' is owned by the node at {owner.Url}; join it there")
                    : error);
            }
            _closed(this);
            return;
        }

        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var work))
            {
                if (Closed)
                {
                    // Posted just before the queue closed: the registry hands it to the next actor.
                    work.Fail(ActorClosedException.Instance);
                    continue;
                }
                if (work is not (IdleCheck or CommitDone or FoldHistory or DeleteFolded))
                {
                    _lastActivity = Stopwatch.GetTimestamp();
                }
                if (work is CommitDone or IdleCheck or StopWork or LeaseLostWork)
                {
                    // Never parked: a commit's completion is what lets parked work go on.
                    Run(work);
                    RunParked();
                }
                else if (_parked.Count > 0 || (work.NeedsCommitted && !_pipeline.IsIdle))
                {
                    _parked.Enqueue(work);
                }
                else
                {
                    Run(work);
                }
            }
            // The queue is empty: commit what was sequenced, unless a commit is still in flight,
            // in which case it all goes into the next one (see CommitPipeline.Start).
            try
            {
                StartCommit();
                if (_parked.Count > 0 && _pipeline.IsIdle)
                {
                    // A commit that could not even open its store completes at once, with no
                    // CommitDone to let parked work go on: it goes on here.
                    RunParked();
                    StartCommit();
                }
            }
            catch (Exception ex)
            {
                Log.ActorFault(_logger, DocId, ex);
            }
            var closing = _state is DocumentState.Stopping or DocumentState.Deleted or DocumentState.Moved || (_state is DocumentState.Idle && _members.Count == 0);
            if (closing && _pipeline.IsIdle && _parked.Count == 0)
            {
                // From here on the queue takes nothing new; whatever is still in it goes back to
                // the registry, which waits for this actor to close and gives it to a new one.
                if (_state is not (DocumentState.Deleted or DocumentState.Moved))
                {
                    _state = DocumentState.Closing;
                }
                _queue.Writer.TryComplete();
            }
        }

        Shutdown();
    }

    /// <summary>Handles one message; a refusal or a fault fails that message only.</summary>
    private void Run(Work work)
    {
        try
        {
            Handle(work);
        }
        catch (CollabError refused)
        {
            work.Fail(refused); // the request was wrong, and changed nothing
        }
        catch (Exception ex)
        {
            // One bad message must not take the document down.
            Log.ActorFault(_logger, DocId, ex);
            work.Fail(CollabError.Unavailable("the server failed to handle the request"));
        }
    }

    /// <summary>
    /// Runs parked work in arrival order, as far as it can: a message that needs every op
    /// committed waits (with all after it) until the pipeline is idle. Closed meanwhile, the rest
    /// goes back to the registry.
    /// </summary>
    private void RunParked()
    {
        while (_parked.TryPeek(out var next) && (!next.NeedsCommitted || _pipeline.IsIdle || Closed))
        {
            _parked.Dequeue();
            if (Closed)
            {
                next.Fail(ActorClosedException.Instance);
                continue;
            }
            Run(next);
        }
    }

    /// <summary>Every message the actor takes, in one place (see ActorMessages.cs).</summary>
    private void Handle(Work work)
    {
        switch (work)
        {
            case SubmitWork submit:
                Sequence(submit);
                if (_pipeline.IsFull)
                {
                    StartCommit();
                }
                break;
            case JoinDocument join:
                join.Answer(Join(join.Connection, join.Request, join.ReadOnly));
                break;
            case LeaveDocument leave:
                leave.Answer(Leave(leave.ConnectionId));
                break;
            case UpdatePresence presence:
                presence.Answer(SetPresence(presence.ConnectionId, presence.Request));
                break;
            case ReadText read:
                read.Answer(Read());
                break;
            case ReadSummary summary:
                summary.Answer(Summary());
                break;
            case ReadOps ops:
                ops.Answer(ReadOps(ops.From, ops.Limit));
                break;
            case ReplaceText replace:
                Replace(replace);
                break;
            case DeleteDocument delete:
                delete.Answer(Delete(delete.Version, delete.MovedTo));
                break;
            case LoadDocument load:
                load.Answer(true); // loaded (and claimed) before any message is handled
                break;
            case MoveDocument move:
                move.Answer(MoveTo(move.NodeId));
                break;
            case FoldHistory fold:
                fold.Answer(WriteFold(fold.Plan));
                break;
            case DeleteFolded delete:
                delete.Answer(DeleteFoldedOps(delete.Boundary));
                break;
            case IdleCheck idle:
                StopIfIdle(idle.IdleTimeout);
                break;
            case CommitDone done:
                CompleteCommit(done.Commit);
                break;
            case StopWork:
                RequestStop();
                break;
            case LeaseLostWork:
                Relinquish("moved");
                break;
            default:
                throw new UnreachableException($"a document actor does not take {work.GetType().Name}");
        }
    }

    /// <summary>
    /// Sets a damaged database aside once, so the document never costs a failed load again and
    /// never stops the others; an admin inspects or deletes it. False when even that fails (then
    /// the next request tries the load again).
    /// </summary>
    private bool TryQuarantine(Exception damage)
    {
        try
        {
            _services.Storage.Quarantine(DocId);
            Log.DocumentQuarantined(_logger, DocId, damage);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.DocumentLoadFailed(_logger, DocId, new AggregateException(damage, ex));
            return false;
        }
    }

    /// <summary>
    /// Claims the document for this node (see <see cref="IDocumentOwnership"/>), then loads it. In
    /// a cluster the claim's epoch is above the one the database records, and is written into it
    /// before anything is served, so the previous owner can commit nothing more.
    /// </summary>
    private async Task ClaimAndLoadAsync()
    {
        var started = Stopwatch.GetTimestamp();
        if (_services.Storage.IsQuarantined(DocId))
        {
            throw CollabError.Quarantined(DocId);
        }
        var store = _database.OpenForLoad();
        var ownership = _services.Ownership;
        _lease = ownership.Clustered
            ? await ownership.ClaimAsync(DocId, store?.StoredEpoch() ?? 0, () => TryPost(new LeaseLostWork())).ConfigureAwait(false)
            : Lease.SingleNode(DocId);
        if (_lease.Epoch != 0)
        {
            try
            {
                store?.Fence(_lease.Fence);
            }
            catch (FencedException)
            {
                throw CollabError.Unavailable("the document was just claimed by another node; try again");
            }
        }
        var loaded = store?.Load() ?? new LoadedDocument(Collab.Ot.Rope.Empty, 0, 0, []);
        _sequencer = new Sequencer(loaded, _options.OpWindow, _options.OpWindowBytes, _options.MaxDocumentLength, _options.MaxTransformOps, OpenLog);
        _pipeline.SnapshotVersion = loaded.SnapshotVersion;
        // Loaded from a snapshot at the newest version, no op was replayed: read the newest one's time.
        var newest = loaded.RecentOps.Count > 0 ? loaded.RecentOps[^1]
            : loaded.Version > 0 && store is not null ? store.ReadOps(loaded.Version - 1, loaded.Version).FirstOrDefault() : null;
        _updatedAtMs = newest?.CreatedAtMs ?? 0;
        _clockMs = _updatedAtMs;
        _database.CloseIfUnused(busy: false);
        _state = DocumentState.Live;
        if (store is not null)
        {
            Log.DocumentLoaded(_logger, DocId, loaded.Version, loaded.Text.Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }

    private void Shutdown()
    {
        while (_parked.TryDequeue(out var parked))
        {
            parked.Fail(ActorClosedException.Instance); // the registry hands it to the next actor
        }
        Flush();
        if (_state is not (DocumentState.Deleted or DocumentState.Moved))
        {
            WriteSnapshot();
        }
        _database.Dispose();
        _services.Ownership.Release(_lease);
        _closed(this);
    }

    /// <summary>Writes a snapshot at the current version if there is none: the next load (here or on another node) reads it instead of replaying.</summary>
    private void WriteSnapshot()
    {
        if (!_database.Exists || _sequencer.Version <= _pipeline.SnapshotVersion)
        {
            return;
        }
        try
        {
            _database.Open().WriteSnapshot(_sequencer.Version, _sequencer.Text, _lease.Fence);
            _pipeline.SnapshotVersion = _sequencer.Version;
        }
        catch (Exception ex)
        {
            Log.SnapshotFailed(_logger, DocId, ex);
        }
    }

    /// <summary>
    /// This node owns the document no more (its lease was lost, or handed over in a move): every
    /// member is told to join again, which sends it to the new owner, and the actor closes.
    /// </summary>
    private void Relinquish(string reason)
    {
        if (_state is DocumentState.Moved or DocumentState.Deleted)
        {
            return;
        }
        _state = DocumentState.Moved;
        // What is sequenced is committed now (or refused by its fence, if the lease is gone), so
        // every op this actor took is answered before its members are sent away.
        Flush();
        _members.Broadcast(HubNames.Reset, new ResetMessage { DocId = DocId, Reason = reason }, except: null);
        _members.Clear();
    }

    /// <summary>The committed op log for reads on the loop: first settles the commit in flight, which uses the same database.</summary>
    private IOpLog? OpenLog()
    {
        if (_pipeline.StoreBusy)
        {
            DrainCommit();
        }
        return _database.OpenIfExists();
    }

    /// <summary>Sequences one submit into the current batch: who it is from, then the sequencer's dedupe, transform and apply.</summary>
    private void Sequence(SubmitWork work)
    {
        string clientId;
        if (work.Connection is null)
        {
            clientId = ServerClientId; // the server's own op (REST)
        }
        else if (!_members.TryGet(work.Connection.ConnectionId, out var member))
        {
            throw new CollabError(ErrorCodes.NotJoined, $"join document '{DocId}' before submitting to it");
        }
        else if (member.ReadOnly)
        {
            throw new CollabError(ErrorCodes.Forbidden, $"you may read document '{DocId}' but not edit it");
        }
        else
        {
            clientId = member.AuthorKey;
        }
        // A write that would create the document (a join creates nothing on disk) spends the
        // connection's creation budget, once it is known to be a valid op.
        var creates = !_database.Exists && _pipeline.IsIdle;
        var request = work.Request;
        if (work.Connection is not null && !_writeBytes.TryTake(OpSize.Of(request.Op!)))
        {
            // However many writers it has, a document grows its log at a bounded rate.
            _services.Metrics.LimitRefused("document_write_bytes");
            throw new CollabError(ErrorCodes.RateLimited, $"document '{DocId}' takes at most {_options.DocumentWriteBytesPerSecond} bytes of ops a second; slow down");
        }
        // Op times never go backwards (a clock stepped back stamps the previous time), so the
        // history reader finds the version at an instant by binary search over versions.
        _clockMs = Math.Max(_clockMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var authorship = AuthorshipOf(work, clientId);
        Sequenced result;
        try
        {
            result = _sequencer.Sequence(clientId, request.OpId, request.Op!, request.BaseVersion, _clockMs, authorship);
        }
        catch (CollabError) when (authorship?.Kind == OpAuthorship.Member)
        {
            _namedAuthors.Remove(clientId); // refused: its next op records the name
            throw;
        }
        if (result.Outcome != SequenceOutcome.Sequenced && authorship?.Kind == OpAuthorship.Member)
        {
            _namedAuthors.Remove(clientId);
        }
        switch (result.Outcome)
        {
            case SequenceOutcome.Sequenced:
                if (creates && work.Connection is { } creator && !creator.TryTakeCreation())
                {
                    _sequencer.Rollback(); // nothing else is uncommitted: the pipeline was idle
                    _namedAuthors.Clear();
                    throw new CollabError(ErrorCodes.RateLimited, $"this connection created more than {_options.DocumentsCreatedPerMinute} documents in a minute");
                }
                _pipeline.Add(new Pending(result.Op!, work));
                break;
            case SequenceOutcome.AlreadyPending:
                var twin = _pipeline.Find(result.Version);
                (twin.Duplicates ??= []).Add(work);
                break;
            case SequenceOutcome.AlreadyCommitted:
                work.Complete(result.Version);
                break;
        }
    }

    /// <summary>
    /// What history should record about who made this op: a server write's kind every time; a
    /// member's name the first time its author key writes in this actor's life (or after it
    /// changed its name), so the database holds one row per author, not one per op.
    /// </summary>
    private OpAuthorship? AuthorshipOf(SubmitWork work, string authorKey)
    {
        if (work.Connection is null)
        {
            return work.ServerWrite;
        }
        if (!_members.TryGet(work.Connection.ConnectionId, out var member) || !_namedAuthors.Add(authorKey))
        {
            return null;
        }
        return new OpAuthorship(OpAuthorship.Member, member.Identity.Subject, member.Identity.Name ?? member.User?.Name);
    }

    /// <summary>Hands the sequenced batch to a commit, unless one is in flight (see <see cref="CommitPipeline.Start"/>).</summary>
    private void StartCommit(bool inline = false)
    {
        var done = _pipeline.Start(
            _sequencer.WorkText,
            _sequencer.WorkVersion,
            _database.Open,
            _lease.Fence, // refused in the commit's transaction if the lease was lost or ran out
            inline || Closed,
            // The writer is never completed while a commit is in flight (see RunAsync).
            commit => _queue.Writer.TryWrite(new CommitDone(commit)));
        if (done is not null)
        {
            CompleteCommit(done);
        }
    }

    /// <summary>Waits for the commit in flight, if any, and completes it. The database is the loop's again afterwards.</summary>
    private void DrainCommit()
    {
        if (_pipeline.Drain() is { } commit)
        {
            CompleteCommit(commit);
        }
    }

    /// <summary>Commits everything sequenced so far and returns when it is durable (or rejected).</summary>
    private void Flush()
    {
        DrainCommit();
        StartCommit(inline: true);
    }

    /// <summary>Acks and broadcasts a committed batch, or rejects it and everything sequenced after it.</summary>
    private void CompleteCommit(CommitPipeline.Commit commit)
    {
        if (!_pipeline.Finish(commit, _sequencer.Version, out var rejected))
        {
            return; // completed already, by DrainCommit
        }
        if (commit.Error is not null)
        {
            var error = CollabError.Unavailable("the op could not be stored; resubmit it");
            if (commit.Error is FencedException fenced)
            {
                _services.Metrics.FencedCommit();
                error = CollabError.Unavailable($"this node cannot write document '{DocId}' now ({fenced.Message}); resubmit it");
            }
            else
            {
                Log.CommitFailed(_logger, DocId, commit.Batch.Length, commit.Error);
            }
            foreach (var p in rejected)
            {
                p.Fail(error);
            }
            _sequencer.Rollback();
            _namedAuthors.Clear(); // the names in the rolled-back ops were not stored: record them again
            if (commit.Error is FencedException { Expired: false } or Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19 } or CommitLogException)
            {
                // A newer owner wrote its epoch, or the log has versions this actor never saw
                // (SQLITE_CONSTRAINT: written by another node), or the commit log failed after the
                // store took the batch (the file holds ops this actor rolled back): ours is over;
                // the members join again, and the next actor loads what is on disk.
                Relinquish("moved");
            }
            return;
        }

        _sequencer.Committed(commit.Version, commit.Text);
        _database.Written();
        _updatedAtMs = commit.Batch[^1].Op.CreatedAtMs;
        _services.Committed(new CommittedBatch(DocId, commit.Ops, commit.Duration));
        foreach (var p in commit.Batch)
        {
            p.Complete();
            _members.Broadcast(HubNames.Op, ToMessage(p.Op), except: p.Work.Connection?.ConnectionId);
        }
    }
}
