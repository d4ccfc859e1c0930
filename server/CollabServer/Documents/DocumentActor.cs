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
    private readonly DocumentWriteBudget _writeBytes;

    private readonly ILogger _logger;
    private int _started;

    // State below is touched only by the loop.
    private DocumentState _state = DocumentState.Loading;
    private Lease _lease = null!; // claimed before the load; see ActorStart
    private readonly DocumentDatabase _database;
    private Sequencer _sequencer = null!; // made by Load
    private readonly CommitPipeline _pipeline;
    private readonly ParkedWork _parked = new();
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
        _writeBytes = new DocumentWriteBudget(_options, services.Metrics);
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

    private bool Closed => _state is DocumentState.Closing or DocumentState.Deleted or DocumentState.Moved;

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        try
        {
            Load(await ActorStart.ClaimAndLoadAsync(DocId, _services, _database, () => TryPost(new LeaseLostWork())).ConfigureAwait(false));
        }
        catch (Exception ex)
        {
            _database.Dispose();
            ActorStart.FailWaiting(DocId, _services, ex, _queue);
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
                else if (!_parked.Park(work, committing: !_pipeline.IsIdle))
                {
                    Run(work);
                }
            }
            // The queue is empty: commit what was sequenced, unless a commit is still in flight,
            // in which case it all goes into the next one (see CommitPipeline.Start).
            try
            {
                StartCommit();
                if (!_parked.IsEmpty && _pipeline.IsIdle)
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
            if (closing && _pipeline.IsIdle && _parked.IsEmpty)
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

    private void RunParked() => _parked.RunReady(() => _pipeline.IsIdle, () => Closed, Run);

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
                leave.Answer(_members.Leave(leave.ConnectionId, _sequencer.Version));
                break;
            case UpdatePresence presence:
                _members.SetPresence(presence.ConnectionId, presence.Request, _sequencer, _options.PresenceMapBudget);
                presence.Answer(true);
                break;
            case ReadText read:
                read.Answer(Exists ? (_sequencer.Version, _sequencer.Content) : null);
                break;
            case ReadSummary summary:
                summary.Answer(Exists ? new DocumentSummary(DocId, _sequencer.Version, _sequencer.Content.Length, DateTimeOffset.FromUnixTimeMilliseconds(_updatedAtMs)) : null);
                break;
            case ReadOps ops: // committed ops after From, with their times; parked until nothing is uncommitted
                var committed = _database.ReadCommittedOps(Math.Max(0, ops.From), _sequencer.Version, ops.Limit);
                ops.Answer(committed?.ConvertAll(op => op.ToMessage(DocId, withTime: true)) ?? (Exists ? [] : null));
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
            case FoldHistory fold: // retention's writes: through this owner's store, under its lease
                fold.Answer(_database.RetentionWrite(store => store.WriteFold(fold.Plan, _lease.Fence), false));
                break;
            case DeleteFolded delete: // a thousand at a time, so edits wait at most for one short transaction
                delete.Answer(_database.RetentionWrite(store => store.DeleteFolded(delete.Boundary, 1000, _lease.Fence), 0));
                break;
            case IdleCheck idle:
                StopIfIdle(idle.IdleTimeout);
                break;
            case CommitDone done:
                CompleteCommit(done.Commit);
                break;
            case StopWork:
                _state = _state is DocumentState.Live or DocumentState.Idle ? DocumentState.Stopping : _state;
                break;
            case LeaseLostWork:
                Relinquish("moved");
                break;
            default:
                throw new UnreachableException($"a document actor does not take {work.GetType().Name}");
        }
    }

    /// <summary>Takes the claimed lease and the loaded document: the actor is live.</summary>
    private void Load((Lease Lease, LoadedDocument Loaded) start)
    {
        var (lease, loaded) = start;
        _lease = lease;
        _sequencer = new Sequencer(loaded, _options.OpWindow, _options.OpWindowBytes, _options.MaxDocumentLength, _options.MaxTransformOps, OpenLog);
        _database.Type = loaded.Content.Type;
        _pipeline.SnapshotVersion = loaded.SnapshotVersion;
        // Loaded from a snapshot at the newest version, no op was replayed: read the newest one's time.
        var newest = loaded.RecentOps.Count > 0 ? loaded.RecentOps[^1]
            : loaded.Version > 0 ? _database.OpenIfExists()?.ReadOps(loaded.Version - 1, loaded.Version).FirstOrDefault() : null;
        _updatedAtMs = newest?.CreatedAtMs ?? 0;
        _clockMs = _updatedAtMs;
        _database.CloseIfUnused(busy: false);
        _state = DocumentState.Live;
    }

    private void Shutdown()
    {
        _parked.FailAll();
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
    private void WriteSnapshot() => _pipeline.WriteSnapshot(_database, _sequencer.Version, _sequencer.Content, _lease.Fence, _logger);

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
        _members.ResetAll(reason);
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
        var member = work.Connection is { } connection ? _members.Writer(connection.ConnectionId) : null;
        var clientId = member?.AuthorKey ?? ServerClientId; // the server's own ops (REST) have no member
        // A write that would create the document (a join creates nothing on disk) spends the
        // connection's creation budget, once it is known to be a valid op.
        var creates = !_database.Exists && _pipeline.IsIdle;
        var request = work.Request;
        var op = work.ServerOp ?? _sequencer.Type.FromSubmit(request);
        if (work.Connection is not null)
        {
            _writeBytes.Take(DocId, op.Size);
        }
        // Op times never go backwards (a clock stepped back stamps the previous time), so the
        // history reader finds the version at an instant by binary search over versions.
        _clockMs = Math.Max(_clockMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var authorship = member is null ? work.ServerWrite : _members.NameToRecord(member);
        Sequenced result;
        try
        {
            result = _sequencer.Sequence(clientId, request.OpId, op, request.BaseVersion, _clockMs, authorship);
        }
        catch (CollabError) when (member is not null && authorship is not null)
        {
            _members.NameNotRecorded(clientId); // refused: its next op records the name
            throw;
        }
        if (result.Outcome != SequenceOutcome.Sequenced && member is not null && authorship is not null)
        {
            _members.NameNotRecorded(clientId);
        }
        switch (result.Outcome)
        {
            case SequenceOutcome.Sequenced:
                if (creates && work.Connection is { } creator && !creator.TryTakeCreation())
                {
                    _sequencer.Rollback(); // nothing else is uncommitted: the pipeline was idle
                    _members.NamesNotRecorded();
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

    /// <summary>Hands the sequenced batch to a commit, unless one is in flight (see <see cref="CommitPipeline.Start"/>).</summary>
    private void StartCommit(bool inline = false)
    {
        var done = _pipeline.Start(
            _sequencer.WorkContent,
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
            if (commit.Error is FencedException)
            {
                _services.Metrics.FencedCommit();
            }
            else
            {
                Log.CommitFailed(_logger, DocId, commit.Batch.Length, commit.Error);
            }
            var error = commit.Refusal(DocId);
            rejected.ForEach(p => p.Fail(error));
            _sequencer.Rollback();
            _members.NamesNotRecorded(); // the names in the rolled-back ops were not stored
            if (commit.EndsOwnership)
            {
                Relinquish("moved");
            }
            return;
        }

        _sequencer.Committed(commit.Version, commit.Content);
        _database.Written();
        _updatedAtMs = commit.Batch[^1].Op.CreatedAtMs;
        _services.Committed(new CommittedBatch(DocId, commit.Ops, commit.Duration));
        foreach (var p in commit.Batch)
        {
            p.Complete();
            _members.Broadcast(HubNames.Op, p.Op.ToMessage(DocId), except: p.Work.Connection?.ConnectionId);
        }
    }
}
