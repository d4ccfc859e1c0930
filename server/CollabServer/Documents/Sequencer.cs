using CollabServer.Documents.Types;
using CollabServer.Errors;
using CollabServer.Storage;
using Collab.Messages;

namespace CollabServer.Documents;

/// <summary>What sequencing a submit came to.</summary>
internal enum SequenceOutcome
{
    /// <summary>New: transformed, validated and applied to the working text at <see cref="Sequenced.Op"/>'s version.</summary>
    Sequenced,

    /// <summary>The same (clientId, opId) is sequenced but not yet committed: it will answer with that op's version.</summary>
    AlreadyPending,

    /// <summary>The same (clientId, opId) was committed before, at <see cref="Sequenced.Version"/>.</summary>
    AlreadyCommitted,
}

/// <summary>The result of <see cref="Sequencer.Sequence"/>.</summary>
internal readonly record struct Sequenced(SequenceOutcome Outcome, int Version, StoredOp? Op);

/// <summary>
/// The ordering of one document's ops, with no I/O of its own: it deduplicates submits by
/// (clientId, opId), transforms each from its base version to the working version (PROTOCOL §1,
/// the incoming op wins ties), validates it and applies it to the working text. It tracks two
/// versions: the committed one (<see cref="Version"/>, <see cref="Content"/>) and the working one,
/// which includes every op sequenced but not yet committed. Commits move the first forward
/// (<see cref="Committed"/>); a failed commit drops everything uncommitted (<see cref="Rollback"/>).
/// Older ops than the in-memory window come from an <see cref="IOpLog"/>, which the actor opens
/// on demand (opening it may first settle the commit in flight, which calls
/// <see cref="Committed"/>: callers read the window only after it).
/// </summary>
internal sealed class Sequencer
{
    private readonly Func<IOpLog?> _openLog;
    private readonly int _opWindow;
    private readonly long _opWindowBytes;
    private readonly int _maxDocumentLength;
    private readonly int _maxTransformOps;

    /// <summary>Committed ops (WindowStart, Version], oldest first.</summary>
    private readonly List<StoredOp> _window = [];
    private readonly Dictionary<(string ClientId, long OpId), int> _recentIds = [];
    private long _windowBytes;

    /// <summary>Ops up to this version left memory for their size: they are not read back from disk for a transform or a resume (a client that far behind joins again for the whole text).</summary>
    private int _cutForSize;

    /// <summary>Sequenced, not yet committed ops (Version, WorkVersion], oldest first.</summary>
    private readonly List<StoredOp> _uncommitted = [];
    private readonly Dictionary<(string ClientId, long OpId), int> _uncommittedIds = [];

    /// <summary>The highest op id each client has committed (read from the log once per client).</summary>
    private readonly Dictionary<string, long> _maxOpId = new(StringComparer.Ordinal);

    public Sequencer(LoadedDocument loaded, int opWindow, long opWindowBytes, int maxDocumentLength, int maxTransformOps, Func<IOpLog?> openLog)
    {
        _openLog = openLog;
        _opWindow = opWindow;
        _opWindowBytes = opWindowBytes;
        _maxDocumentLength = maxDocumentLength;
        _maxTransformOps = maxTransformOps;
        Content = WorkContent = loaded.Content;
        Version = WorkVersion = loaded.Version;
        foreach (var op in loaded.RecentOps)
        {
            AddToWindow(op);
        }
        TrimWindow();
    }

    /// <summary>The estimated bytes the in-memory window holds.</summary>
    public long WindowBytes => Volatile.Read(ref _windowBytes);

    /// <summary>The committed content.</summary>
    public DocContent Content { get; private set; }

    /// <summary>The document's type: its content's, fixed when it was created.</summary>
    public DocumentType Type => Content.Type;

    /// <summary>The committed version.</summary>
    public int Version { get; private set; }

    /// <summary>The content with every sequenced op applied, committed or not.</summary>
    public DocContent WorkContent { get; private set; }

    public int WorkVersion { get; private set; }

    /// <summary>The oldest version the in-memory window transforms from.</summary>
    public int WindowStart => Version - _window.Count;

    /// <summary>The committed ops in memory: versions WindowStart + 1 to Version.</summary>
    public IReadOnlyList<StoredOp> Window => _window;

    /// <summary>
    /// Sequences one op from <paramref name="clientId"/> made at <paramref name="baseVersion"/>.
    /// Throws <see cref="CollabError"/> (changing nothing) if the op cannot be taken.
    /// </summary>
    public Sequenced Sequence(string clientId, long opId, DocOp op, int baseVersion, long createdAtMs, OpAuthorship? authorship = null)
    {
        var key = (clientId, opId);
        if (_uncommittedIds.TryGetValue(key, out var pending))
        {
            return new(SequenceOutcome.AlreadyPending, pending, null);
        }
        if (FindCommitted(key) is int committed)
        {
            return new(SequenceOutcome.AlreadyCommitted, committed, null);
        }
        op = Transform(op, baseVersion);
        var stored = new StoredOp(WorkVersion + 1, op, clientId, opId, createdAtMs) { Authorship = authorship };
        WorkContent = op.Apply(WorkContent);
        WorkVersion = stored.Version;
        _uncommitted.Add(stored);
        _uncommittedIds[key] = stored.Version;
        return new(SequenceOutcome.Sequenced, stored.Version, stored);
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
            max = _openLog()?.MaxOpId(key.ClientId) ?? long.MinValue;
            _maxOpId[key.ClientId] = max;
        }
        return key.OpId > max ? null : _openLog()?.FindOp(key.ClientId, key.OpId);
    }

    /// <summary>Rewrites an op made at <paramref name="baseVersion"/> to apply on the working text; throws the protocol's error if it can't.</summary>
    private DocOp Transform(DocOp op, int baseVersion)
    {
        if (op.Error is not null)
        {
            throw CollabError.InvalidOp(op.Error);
        }
        if (op.Type != Type)
        {
            throw CollabError.InvalidOp($"the document is {Type.Name}; the op is {op.Type.Name}");
        }
        if (baseVersion < 0 || baseVersion > WorkVersion)
        {
            throw CollabError.UnknownVersion($"base version {baseVersion} is not between 0 and the current version {WorkVersion}");
        }
        if (WorkVersion - baseVersion > _maxTransformOps)
        {
            // Bounds what one op costs the document's loop; the client resumes and rebases.
            throw CollabError.UnknownVersion($"base version {baseVersion} is more than {_maxTransformOps} ops behind the current version {WorkVersion}; join again and rebase");
        }
        var since = OpsSince(baseVersion);
        var baseLength = WorkContent.Length;
        foreach (var applied in since)
        {
            baseLength -= applied.Op.LengthDelta;
        }
        if (op.BaseLength > baseLength)
        {
            throw CollabError.InvalidOp($"the op retains or deletes {op.BaseLength} code units, past the end of the document (length {baseLength} at version {baseVersion})");
        }
        foreach (var applied in since)
        {
            op = op.Transform(applied.Op, winsTies: true);
        }
        if (op.Validate(WorkContent) is string problem)
        {
            throw CollabError.InvalidOp(problem);
        }
        if ((long)WorkContent.Length + op.LengthDelta > _maxDocumentLength)
        {
            throw new CollabError(Collab.ErrorCodes.TooLarge, $"the document would be longer than {_maxDocumentLength} code units");
        }
        return op;
    }

    /// <summary>
    /// What a member resuming from <paramref name="since"/> lacks: the committed ops after it, or
    /// null when it needs the whole text (not a resume, a version it cannot have, more than
    /// <paramref name="maxOps"/> behind, or ops no longer kept). Reading old ops may first settle
    /// the commit in flight, which moves <see cref="Version"/>: callers read it after this.
    /// </summary>
    public List<StoredOp>? CommittedSince(int? since, int maxOps)
    {
        if (since is not int from || from < 0 || from > WorkVersion || WorkVersion - from > maxOps)
        {
            return null;
        }
        List<StoredOp> ops;
        try
        {
            ops = OpsSince(from);
        }
        catch (CollabError)
        {
            return null;
        }
        if (from > Version)
        {
            return null;
        }
        // Only committed ops: the ones still in flight reach the member as broadcasts.
        ops.RemoveAll(o => o.Version > Version);
        return ops;
    }

    /// <summary>
    /// A join's result: at the committed version, the ops a member resuming from
    /// <paramref name="since"/> lacks (<see cref="CommittedSince"/>), else the whole content.
    /// </summary>
    public JoinResult CatchUp(string docId, int? since, int maxOps)
    {
        var ops = CommittedSince(since, maxOps);
        var result = new JoinResult { DocId = docId, Version = Version, Type = Type.Name, Ops = ops?.ConvertAll(op => op.ToMessage(docId)) };
        if (ops is null)
        {
            Content.WriteTo(result);
        }
        return result;
    }

    /// <summary>
    /// Makes a document with nothing sequenced yet one of <paramref name="type"/> (a join or a first
    /// write names the type a new document is made as).
    /// </summary>
    public void Retype(DocumentType type)
    {
        if (WorkVersion > 0)
        {
            throw new InvalidOperationException($"a document of version {WorkVersion} keeps its type");
        }
        Content = WorkContent = type.Empty;
    }

    /// <summary>
    /// The op that makes the committed content <paramref name="target"/> (a no-op when it is
    /// already); throws the protocol's error for content of another type or too long.
    /// </summary>
    public DocOp DiffTo(DocContent target)
    {
        if (target.Type != Type)
        {
            throw CollabError.InvalidOp($"the document is {Type.Name}, not {target.Type.Name}");
        }
        if (target.Length > _maxDocumentLength)
        {
            throw new CollabError(Collab.ErrorCodes.TooLarge, $"the document would be longer than {_maxDocumentLength} code units");
        }
        return Type.Diff(Content, target);
    }

    /// <summary>Every op after <paramref name="baseVersion"/> up to the working version, oldest first.</summary>
    public List<StoredOp> OpsSince(int baseVersion)
    {
        var result = new List<StoredOp>(Math.Max(0, WorkVersion - baseVersion));
        if (baseVersion < _cutForSize)
        {
            throw CollabError.UnknownVersion($"the ops after version {baseVersion} are too large to replay; join again for the whole text");
        }
        if (baseVersion < WindowStart)
        {
            // Opening the log may settle the commit in flight, which moves the window: read it after.
            var log = _openLog();
            var older = log?.ReadOps(baseVersion, WindowStart) ?? [];
            if (older.Count != WindowStart - baseVersion)
            {
                throw CollabError.UnknownVersion($"the ops after version {baseVersion} are no longer kept");
            }
            result.AddRange(older);
        }
        for (var i = Math.Max(0, baseVersion - WindowStart); i < _window.Count; i++)
        {
            result.Add(_window[i]);
        }
        foreach (var op in _uncommitted)
        {
            if (op.Version > baseVersion)
            {
                result.Add(op);
            }
        }
        return result;
    }

    /// <summary>The uncommitted ops up to <paramref name="version"/> are durable; <paramref name="content"/> is the content after them.</summary>
    public void Committed(int version, DocContent content)
    {
        var count = 0;
        while (count < _uncommitted.Count && _uncommitted[count].Version <= version)
        {
            var op = _uncommitted[count++];
            AddToWindow(op);
            _uncommittedIds.Remove((op.ClientId, op.OpId));
            if (_maxOpId.TryGetValue(op.ClientId, out var max) && op.OpId > max)
            {
                _maxOpId[op.ClientId] = op.OpId;
            }
        }
        _uncommitted.RemoveRange(0, count);
        Content = content;
        Version = version;
        TrimWindow();
    }

    /// <summary>A commit failed: every uncommitted op is dropped (ops after the failed batch were transformed over it).</summary>
    public void Rollback()
    {
        _uncommitted.Clear();
        _uncommittedIds.Clear();
        WorkContent = Content;
        WorkVersion = Version;
    }

    /// <summary>Maps a position in the text at <paramref name="version"/> to the committed text, when the ops between are in memory.</summary>
    public int? MapPosition(int position, int version)
    {
        if (version < WindowStart || version > Version)
        {
            return null;
        }
        for (var i = version - WindowStart; i < _window.Count; i++)
        {
            position = _window[i].Op.TransformPosition(position);
        }
        return Math.Clamp(position, 0, Content.Length);
    }

    /// <summary>How many op components mapping a position from <paramref name="version"/> walks (<see cref="long.MaxValue"/> when the ops since are not in memory).</summary>
    public long ComponentsSince(int version)
    {
        if (version < WindowStart || version > Version)
        {
            return long.MaxValue;
        }
        long components = 0;
        for (var i = version - WindowStart; i < _window.Count; i++)
        {
            components += _window[i].Op.Count;
        }
        return components;
    }

    /// <summary>The committed text's length at <paramref name="version"/> (the current length when the ops since are not in memory).</summary>
    public int LengthAt(int version)
    {
        var length = Content.Length;
        if (version >= WindowStart)
        {
            for (var i = Math.Max(0, version - WindowStart); i < _window.Count; i++)
            {
                length -= _window[i].Op.LengthDelta;
            }
        }
        return Math.Max(0, length);
    }

    private void AddToWindow(StoredOp op)
    {
        _window.Add(op);
        _windowBytes += op.Op.Size;
        _recentIds[(op.ClientId, op.OpId)] = op.Version;
    }

    private void TrimWindow()
    {
        // Trim in chunks so the cost is amortized over many ops.
        var excess = _window.Count - _opWindow;
        if (excess < Math.Max(64, _opWindow / 4))
        {
            excess = 0;
        }
        // However few they are, their bytes are bounded: a writer of large ops must not hold a
        // thousand of them in memory (oldest first until under the budget).
        var bytes = _windowBytes;
        for (var i = 0; i < excess; i++)
        {
            bytes -= _window[i].Op.Size;
        }
        var forSize = false;
        while (bytes > _opWindowBytes && excess < _window.Count)
        {
            bytes -= _window[excess++].Op.Size;
            forSize = true;
        }
        if (excess == 0)
        {
            return;
        }
        for (var i = 0; i < excess; i++)
        {
            _recentIds.Remove((_window[i].ClientId, _window[i].OpId));
        }
        if (forSize)
        {
            _cutForSize = _window[excess - 1].Version;
        }
        _window.RemoveRange(0, excess);
        _windowBytes = bytes;
    }
}
