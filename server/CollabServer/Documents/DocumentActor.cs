using System.Diagnostics;
using System.Threading.Channels;
using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Hubs;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace CollabServer.Documents;

/// <summary>
/// One document: its text, its op log, its database and its members. Its queue is the only way
/// in and its loop the only code that touches its state, so edits apply strictly one after
/// another without locks.
/// </summary>
/// <remarks>
/// Group commit (Orleans' BatchWorker): the loop sequences every submit waiting in the queue
/// against a working copy of the text, then commits them all in one transaction, then acks and
/// broadcasts. Nothing is acknowledged or broadcast before it is committed; if the commit fails,
/// the working copy is dropped (the rope is immutable, so that is free) and every op in the batch
/// is rejected with <c>unavailable</c>.
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
    private readonly DocumentRegistry _registry;
    private readonly CollabOptions _options;
    private readonly ILogger _logger;
    private readonly string _path;
    private int _started;

    // State below is touched only by the loop.
    // The database is open only while the document is written: a node holds thousands of joined
    // documents, and an open SQLite connection (page cache, WAL index) costs ~200 KiB each.
    private DocumentStore? _store;
    private bool _exists;
    private long _lastWrite; // long ago: a database opened only to load or create is closed at once
    private Rope _text = Rope.Empty;
    private int _version;
    private int _snapshotVersion;
    private long _updatedAtMs;
    private long _lastActivity = Stopwatch.GetTimestamp();

    /// <summary>Committed ops (WindowStart, _version], oldest first.</summary>
    private readonly List<StoredOp> _window = [];
    private readonly Dictionary<(string ClientId, long OpId), int> _recentIds = [];
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);

    // The batch being committed, and the one being sequenced behind it; both are applied to the
    // working text, neither is acknowledged.
    private Commit? _inFlight;
    private readonly List<Pending> _pending = [];
    private readonly Dictionary<string, long> _maxOpId = new(StringComparer.Ordinal);
    private SnapshotProgress? _snapshotting;
    private bool _stopping;
    private bool _idle;
    private bool _closing;
    private readonly Dictionary<(string ClientId, long OpId), Pending> _pendingIds = [];
    private Rope _workText = Rope.Empty;
    private int _workVersion;

    internal DocumentActor(string docId, DocumentRegistry registry, CollabOptions options, ILogger logger)
    {
        DocId = docId;
        _registry = registry;
        _options = options;
        _logger = logger;
        _path = DocumentStore.PathFor(options.DataDir, docId);
    }

    public string DocId { get; }

    /// <summary>Completes when the loop has stopped and the database is closed.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Number of members, read without the loop (for metrics).</summary>
    public int MemberCount => Volatile.Read(ref _memberCount);
    private int _memberCount;

    private int WindowStart => _version - _window.Count;

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

    internal void RequestStop() => _stopping = true;

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        try
        {
            Load();
        }
        catch (Exception ex)
        {
            Log.DocumentLoadFailed(_logger, DocId, ex);
            _queue.Writer.TryComplete();
            var error = CollabErrors.Create(ErrorCodes.Unavailable, "the document could not be loaded; try again later");
            while (reader.TryRead(out var work))
            {
                work.Fail(error);
            }
            _store?.Dispose();
            _registry.Remove(this);
            return;
        }

        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out var work))
            {
                if (_closing)
                {
                    // Posted just before the queue closed: the registry hands it to the next actor.
                    work.Fail(ActorClosedException.Instance);
                    continue;
                }
                if (work is not IdleCheck and not CommitDone)
                {
                    _lastActivity = Stopwatch.GetTimestamp();
                }
                try
                {
                    if (work is SubmitWork submit)
                    {
                        Sequence(submit);
                        if (_pending.Count >= _options.MaxBatch)
                        {
                            StartCommit();
                        }
                    }
                    else
                    {
                        work.Run(this);
                    }
                }
                catch (Exception ex)
                {
                    // One bad message must not take the document down.
                    Log.ActorFault(_logger, DocId, ex);
                    work.Fail(ex as HubException ?? CollabErrors.Create(ErrorCodes.Unavailable, "the server failed to handle the request"));
                }
            }
            // The queue is empty: commit what was sequenced, unless a commit is still in flight,
            // in which case it all goes into the next one (see StartCommit).
            try
            {
                StartCommit();
            }
            catch (Exception ex)
            {
                Log.ActorFault(_logger, DocId, ex);
            }
            if ((_stopping || (_idle && _members.Count == 0)) && _inFlight is null && _pending.Count == 0 && !_closing)
            {
                // From here on the queue takes nothing new; whatever is still in it goes back to
                // the registry, which waits for this actor to close and gives it to a new one.
                _closing = true;
                _queue.Writer.TryComplete();
            }
        }

        Shutdown();
    }

    private void Load()
    {
        var started = Stopwatch.GetTimestamp();
        _store = DocumentStore.OpenExisting(_path, _options.Sync);
        if (_store is null)
        {
            return;
        }
        _exists = true;
        var loaded = _store.Load();
        _text = loaded.Text;
        _version = loaded.Version;
        _snapshotVersion = loaded.SnapshotVersion;
        foreach (var op in loaded.RecentOps)
        {
            AddToWindow(op);
        }
        _updatedAtMs = loaded.RecentOps.Count > 0 ? loaded.RecentOps[^1].CreatedAtMs : 0;
        _workText = _text;
        _workVersion = _version;
        CloseDatabaseIfUnused();
        Log.DocumentLoaded(_logger, DocId, _version, _text.Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    private void Shutdown()
    {
        Flush();
        if (_exists && _version > _snapshotVersion)
        {
            try
            {
                // Makes the next load a snapshot read instead of a replay.
                EnsureCreated().WriteSnapshot(_version, _text);
            }
            catch (Exception ex)
            {
                Log.SnapshotFailed(_logger, DocId, ex);
            }
        }
        _store?.Dispose();
        _store = null;
        _registry.Remove(this);
    }

    /// <summary>The open database, opening or creating it first. Only with no commit in flight.</summary>
    private DocumentStore EnsureCreated()
    {
        if (_store is null)
        {
            _store = _exists
                ? DocumentStore.OpenExisting(_path, _options.Sync) ?? throw new FileNotFoundException($"The database of '{DocId}' is gone.", _path)
                : DocumentStore.Create(_path, _options.Sync);
            _exists = true;
        }
        return _store;
    }

    /// <summary>Closes the database when nothing was written for a while; the text stays in memory.</summary>
    private void CloseDatabaseIfUnused()
    {
        if (_store is not null && _inFlight is null && _pending.Count == 0 && Stopwatch.GetElapsedTime(_lastWrite) >= _options.DatabaseIdleTimeout)
        {
            _store.Dispose();
            _store = null;
        }
    }

    /// <summary>Sequences one submit into the current batch: dedupe, transform, validate, apply to the working text.</summary>
    private void Sequence(SubmitWork work)
    {
        var request = work.Request;
        if (work.Connection is null || !_members.TryGetValue(work.Connection.ConnectionId, out var member))
        {
            throw CollabErrors.Create(ErrorCodes.NotJoined, $"join document '{DocId}' before submitting to it");
        }
        if (member.ReadOnly)
        {
            throw CollabErrors.Create(ErrorCodes.Forbidden, $"you may read document '{DocId}' but not edit it");
        }
        var key = (member.ClientId, request.OpId);
        if (_pendingIds.TryGetValue(key, out var twin))
        {
            (twin.Duplicates ??= []).Add(work);
            return;
        }
        if (FindCommitted(key) is int committed)
        {
            work.Complete(committed);
            return;
        }
        var op = TransformIncoming(request.Op!, request.BaseVersion);
        var created = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var pending = new Pending(new StoredOp(_workVersion + 1, op, member.ClientId, request.OpId, created), work);
        Append(pending);
    }

    private int? FindCommitted((string ClientId, long OpId) key)
    {
        if (_recentIds.TryGetValue(key, out var version))
        {
            return version;
        }
        // Clients number their ops upwards, so an op id above the highest this client ever
        // committed is new without a look at the log: one query per client per actor life
        // instead of one per op (which would also have to wait for the commit in flight).
        if (!_maxOpId.TryGetValue(key.ClientId, out var max))
        {
            max = Store?.MaxOpId(key.ClientId) ?? long.MinValue;
            _maxOpId[key.ClientId] = max;
        }
        return key.OpId > max ? null : Store?.FindOp(key.ClientId, key.OpId);
    }

    /// <summary>Rewrites an op made at <paramref name="baseVersion"/> to apply on the working text; throws the protocol's error if it can't.</summary>
    private TextOperation TransformIncoming(TextOperation op, int baseVersion)
    {
        if (op.Error is not null)
        {
            throw CollabErrors.Create(ErrorCodes.InvalidOp, op.Error);
        }
        if (baseVersion < 0 || baseVersion > _workVersion)
        {
            throw CollabErrors.Create(ErrorCodes.UnknownVersion, $"base version {baseVersion} is not between 0 and the current version {_workVersion}");
        }
        var since = OpsSince(baseVersion);
        var baseLength = _workText.Length;
        foreach (var applied in since)
        {
            baseLength -= applied.Op.LengthDelta;
        }
        if (op.BaseLength > baseLength)
        {
            throw CollabErrors.Create(ErrorCodes.InvalidOp, $"the op retains or deletes {op.BaseLength} code units, past the end of the document (length {baseLength} at version {baseVersion})");
        }
        foreach (var applied in since)
        {
            op = TextOperation.Transform(op, applied.Op, aWinsTies: true);
        }
        if (op.Validate(_workText) is string problem)
        {
            throw CollabErrors.Create(ErrorCodes.InvalidOp, problem);
        }
        if ((long)_workText.Length + op.LengthDelta > _options.MaxDocumentLength)
        {
            throw CollabErrors.Create(ErrorCodes.TooLarge, $"the document would be longer than {_options.MaxDocumentLength} code units");
        }
        return op;
    }

    /// <summary>Every op after <paramref name="baseVersion"/> up to the working version, oldest first.</summary>
    private List<StoredOp> OpsSince(int baseVersion)
    {
        var result = new List<StoredOp>(_workVersion - baseVersion);
        if (baseVersion < WindowStart)
        {
            var older = Store?.ReadOps(baseVersion, WindowStart) ?? [];
            if (older.Count != WindowStart - baseVersion)
            {
                throw CollabErrors.Create(ErrorCodes.UnknownVersion, $"the ops after version {baseVersion} are no longer kept");
            }
            result.AddRange(older);
        }
        for (var i = Math.Max(0, baseVersion - WindowStart); i < _window.Count; i++)
        {
            result.Add(_window[i]);
        }
        if (_inFlight is not null)
        {
            foreach (var p in _inFlight.Batch)
            {
                if (p.Op.Version > baseVersion)
                {
                    result.Add(p.Op);
                }
            }
        }
        foreach (var p in _pending)
        {
            if (p.Op.Version > baseVersion)
            {
                result.Add(p.Op);
            }
        }
        return result;
    }

    private void Append(Pending pending)
    {
        _workText = pending.Op.Op.Apply(_workText);
        _workVersion = pending.Op.Version;
        _pending.Add(pending);
        _pendingIds[(pending.Op.ClientId, pending.Op.OpId)] = pending;
    }

    /// <summary>
    /// Hands the sequenced batch to a commit, unless one is in flight. The commit runs off the
    /// loop, which meanwhile goes on sequencing the next batch against the working text, so each
    /// fsync covers every op that arrived during the previous one. Only one commit is in flight,
    /// so batches land in order; acks and broadcasts wait for <see cref="CompleteCommit"/>.
    /// </summary>
    private void StartCommit(bool inline = false)
    {
        if (_inFlight is not null || _pending.Count == 0)
        {
            return;
        }
        if (_snapshotting is null && _workVersion - _snapshotVersion >= Math.Max(_options.SnapshotInterval, _workText.Length / 1024))
        {
            // The rope is immutable: capturing it is free; its chunks go out with the next commits.
            _snapshotting = new SnapshotProgress(_workText, _workVersion);
        }
        var commit = new Commit([.. _pending], _workText, _workVersion, _snapshotting);
        _pending.Clear();
        _inFlight = commit;
        DocumentStore store;
        try
        {
            store = EnsureCreated();
        }
        catch (Exception ex)
        {
            // Could not open the database: the same as a failed commit.
            commit.Fail(ex);
            CompleteCommit(commit);
            return;
        }
        if (inline || _closing)
        {
            commit.Run(store, _registry.Metrics);
            CompleteCommit(commit);
            return;
        }
        commit.Task = Task.Run(() =>
        {
            commit.Run(store, _registry.Metrics);
            // The writer is never completed while a commit is in flight (see RunAsync).
            _queue.Writer.TryWrite(new CommitDone(commit));
        });
    }

    /// <summary>Waits for the commit in flight, if any, and completes it. The database is the loop's again afterwards.</summary>
    private void DrainCommit()
    {
        if (_inFlight is { } commit)
        {
            commit.Task?.GetAwaiter().GetResult();
            CompleteCommit(commit);
        }
    }

    /// <summary>Commits everything sequenced so far and returns when it is durable (or rejected).</summary>
    private void Flush()
    {
        DrainCommit();
        StartCommit(inline: true);
    }

    /// <summary>The database for reads on the loop: no commit may be using it at the same time.</summary>
    private DocumentStore? Store
    {
        get
        {
            DrainCommit();
            return _exists ? EnsureCreated() : null;
        }
    }

    /// <summary>Acks and broadcasts a committed batch, or rejects it and everything sequenced after it.</summary>
    internal void CompleteCommit(Commit commit)
    {
        if (_inFlight != commit)
        {
            return; // completed already, by DrainCommit
        }
        _inFlight = null;
        if (commit.Error is not null)
        {
            Log.CommitFailed(_logger, DocId, commit.Batch.Length, commit.Error);
            var error = CollabErrors.Create(ErrorCodes.Unavailable, "the op could not be stored; resubmit it");
            // Ops sequenced after the failed batch were transformed over it: they go too.
            foreach (var p in commit.Batch.Concat(_pending))
            {
                p.Work.Fail(error);
                p.Duplicates?.ForEach(d => d.Fail(error));
            }
            _pending.Clear();
            _pendingIds.Clear();
            _workText = _text;
            _workVersion = _version;
            // A snapshot taken of the rejected text must not be written.
            if (_snapshotting is not null && _snapshotting.Version > _version)
            {
                _snapshotting = null;
            }
            return;
        }

        _text = commit.Text;
        _version = commit.Version;
        _lastWrite = Stopwatch.GetTimestamp();
        _updatedAtMs = commit.Batch[^1].Op.CreatedAtMs;
        if (commit.Chunk is { } chunk)
        {
            _snapshotting!.Written(chunk);
            if (chunk.IsLast)
            {
                _snapshotVersion = chunk.Version;
                _snapshotting = null;
            }
        }
        foreach (var p in commit.Batch)
        {
            AddToWindow(p.Op);
            _pendingIds.Remove((p.Op.ClientId, p.Op.OpId));
            if (_maxOpId.TryGetValue(p.Op.ClientId, out var max) && p.Op.OpId > max)
            {
                _maxOpId[p.Op.ClientId] = p.Op.OpId;
            }
            p.Work.Complete(p.Op.Version);
            p.Duplicates?.ForEach(d => d.Complete(p.Op.Version));
            Broadcast(HubNames.Op, new OpMessage
            {
                DocId = DocId,
                Version = p.Op.Version,
                Op = p.Op.Op,
                ClientId = p.Op.ClientId,
                OpId = p.Op.OpId,
            }, except: p.Work.Connection?.ConnectionId);
        }
        TrimWindow();
    }

    private void AddToWindow(StoredOp op)
    {
        _window.Add(op);
        _recentIds[(op.ClientId, op.OpId)] = op.Version;
    }

    private void TrimWindow()
    {
        // Trim in chunks so the cost is amortized over many ops.
        var excess = _window.Count - _options.OpWindow;
        if (excess < Math.Max(64, _options.OpWindow / 4))
        {
            return;
        }
        for (var i = 0; i < excess; i++)
        {
            _recentIds.Remove((_window[i].ClientId, _window[i].OpId));
        }
        _window.RemoveRange(0, excess);
    }

    /// <summary>Sends a message to every member but one, without waiting on any socket.</summary>
    private void Broadcast(string method, object payload, string? except)
    {
        if (_members.Count == 0 || (_members.Count == 1 && except is not null && _members.ContainsKey(except)))
        {
            return;
        }
        var message = new SerializedHubMessage(new InvocationMessage(method, [payload]));
        var sent = 0;
        foreach (var member in _members.Values)
        {
            if (!string.Equals(member.Connection.ConnectionId, except, StringComparison.Ordinal))
            {
                member.Connection.Send(message);
                sent++;
            }
        }
        if (method == HubNames.Op)
        {
            _registry.Metrics.Delivered(sent);
        }
    }

    /// <summary>A member of the document: one connection that joined it.</summary>
    private sealed class Member(ClientConnection connection, string clientId, UserInfo? user, bool readOnly)
    {
        public ClientConnection Connection { get; } = connection;
        public string ClientId { get; } = clientId;
        public UserInfo? User { get; set; } = user;
        public bool ReadOnly { get; } = readOnly;
        public int PresenceVersion { get; set; }
        public List<SelectionRange> Selection { get; set; } = [];
    }

    /// <summary>An op sequenced into the batch, waiting for the commit.</summary>
    internal sealed class Pending(StoredOp op, SubmitWork work)
    {
        public StoredOp Op { get; } = op;
        public SubmitWork Work { get; } = work;
        public List<SubmitWork>? Duplicates { get; set; }
    }

    /// <summary>A snapshot being written a chunk per commit.</summary>
    internal sealed class SnapshotProgress(Rope text, int version)
    {
        private int _seq;

        public int Version => version;

        /// <summary>The next chunk to write; built off the loop.</summary>
        public SnapshotChunk Next()
        {
            var offset = _seq * DocumentStore.SnapshotChunkLength;
            var length = Math.Min(DocumentStore.SnapshotChunkLength, text.Length - offset);
            return new SnapshotChunk(version, _seq, text.Substring(offset, length), offset + length >= text.Length, text.Length);
        }

        public void Written(SnapshotChunk chunk) => _seq = chunk.Seq + 1;
    }

    /// <summary>One group commit: the batch, the text and version it leads to, and maybe a snapshot chunk.</summary>
    internal sealed class Commit(Pending[] batch, Rope text, int version, SnapshotProgress? snapshot)
    {
        public Pending[] Batch { get; } = batch;
        public Rope Text { get; } = text;
        public int Version { get; } = version;
        public SnapshotChunk? Chunk { get; private set; }
        public Task? Task { get; set; }
        public Exception? Error { get; private set; }

        public void Fail(Exception error) => Error = error;

        /// <summary>Writes the batch in one transaction. Runs off the loop; never throws.</summary>
        public void Run(DocumentStore store, Diagnostics.CollabMetrics metrics)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                var ops = new StoredOp[Batch.Length];
                for (var i = 0; i < ops.Length; i++)
                {
                    ops[i] = Batch[i].Op;
                }
                // Cutting the snapshot chunk happens here, not on the loop.
                Chunk = snapshot?.Next();
                store.Commit(ops, Text.Length, Chunk is null ? [] : [Chunk]);
                metrics.Committed(ops.Length, Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            catch (Exception ex)
            {
                Error = ex;
            }
        }
    }
}
