using System.Diagnostics;
using Collab.Messages;
using CollabServer.Errors;
using CollabServer.Storage;
using CollabServer.Documents.Types;

namespace CollabServer.Documents;

// The requests other than Submit. Each runs on the loop.
public sealed partial class DocumentActor
{
    private JoinResult Join(IMemberConnection connection, JoinRequest request, bool readOnly)
    {
        var clientId = Member.ClientIdOf(connection, request);
        // A join of a missing document creates nothing on disk: its first write does.
        if (connection.IsClosed)
        {
            // It disconnected while this join waited; registering it now would leave a ghost member.
            throw CollabError.Unavailable("the connection closed");
        }
        TakeType(DocumentType.Named(request.Type) ?? throw CollabError.InvalidOp($"there is no document type '{request.Type}': text or rich-text"), named: request.Type is not null);
        if (_state is DocumentState.Idle)
        {
            _state = DocumentState.Live;
        }
        // Reading old ops may first complete the commit in flight, moving the version: read first.
        var result = _sequencer.CatchUp(DocId, request.SinceVersion, _options.MaxResumeOps);
        result.ReadOnly = readOnly;
        // Resuming an id renamed away (and not written again) makes a new, empty document: the
        // result says where the text went. Only a resume asks, so a first join pays nothing for it.
        result.MovedTo = request.SinceVersion is null || _database.Exists ? null : _services.Redirects.Get(DocId);
        var member = new Member(connection, clientId, connection.Identity.Presenting(request.User), readOnly) { PresenceVersion = result.Version };
        result.Presence.AddRange(_members.Join(member, _sequencer, _options.PresenceMapBudget));
        // A join only reads; the database is opened again by the first write.
        _database.CloseIfUnused(busy: !_pipeline.IsIdle);
        return result;
    }

    /// <summary>
    /// The type a join or a write asks for: a document that does not exist yet (no file, no
    /// member, nothing sequenced) becomes it. One that exists keeps its own; a request that
    /// <paramref name="named"/> another is refused with <c>invalid_op</c>, changing nothing.
    /// </summary>
    private void TakeType(DocumentType type, bool named)
    {
        if (type == _sequencer.Type || !named)
        {
            return;
        }
        if (Exists || _sequencer.WorkVersion > 0 || !_pipeline.IsIdle)
        {
            throw CollabError.InvalidOp($"document '{DocId}' is {_sequencer.Type.Name}, not {type.Name}");
        }
        _sequencer.Retype(type);
        _database.Type = type;
    }

    /// <summary>
    /// Whether the document exists: it has a database, or members joined it (PROTOCOL §3: a join
    /// creates the document), though nothing is on disk until its first write.
    /// </summary>
    private bool Exists => _database.Exists || _members.Count > 0;

    /// <summary>
    /// Makes the document's text the one <paramref name="replace"/> gives, with one op (creating the document if needed),
    /// sequenced and committed exactly as a member's submit is, and answers the version after it
    /// once that op is committed. Runs with nothing uncommitted (parked until then), so the op is
    /// the difference from the committed text.
    /// </summary>
    private void Replace(ReplaceText replace)
    {
        var target = replace.Content();
        TakeType(target.Type, named: true);
        var op = _sequencer.DiffTo(target);
        _database.Open();
        if (op.IsNoop)
        {
            replace.Answer(_sequencer.Version);
            return;
        }
        // The server's ops are numbered by the version they were made at, so each is new.
        var work = new SubmitWork(null, new SubmitRequest { DocId = DocId, BaseVersion = _sequencer.Version, OpId = _sequencer.Version + 1 }) { ServerWrite = replace.By, ServerOp = op };
        Sequence(work);
        replace.AnswerWhen(work.Task, result => result.Version);
    }

    /// <summary>
    /// Deletes the document's files and tells every member to join again; false if it does not
    /// exist. The actor then closes. Runs with nothing uncommitted (parked until then). With <paramref name="version"/>, only if everything sequenced
    /// is committed at exactly that version (else <c>conflict</c>, and nothing changes): on the
    /// loop, so no op can come between the check and the delete. With <paramref name="movedTo"/>,
    /// records the rename before the files go (so a failed record deletes nothing) and the members'
    /// <c>Reset</c> is <c>renamed</c> with it.
    /// </summary>
    private bool Delete(int? version, string? movedTo)
    {
        if (!Exists)
        {
            return false;
        }
        if (version is int expected && expected != _sequencer.Version)
        {
            throw CollabError.VersionConflict(DocId, expected, _sequencer.Version);
        }
        var existed = _database.Exists;
        try
        {
            _database.Delete(_lease.Fence, movedTo);
        }
        catch (FencedException fenced)
        {
            throw CollabError.Unavailable($"this node cannot delete document '{DocId}' now ({fenced.Message}); try again");
        }
        if (existed)
        {
            _services.Deleted(DocId);
        }
        _members.ResetAll(movedTo is null ? "deleted" : "renamed", movedTo);
        _state = DocumentState.Deleted;
        Log.DocumentDeleted(_logger, DocId);
        return true;
    }

    /// <summary>
    /// A live move: commits what is sequenced, writes a snapshot so the target loads quickly,
    /// hands the lease to node <paramref name="nodeId"/> and sends the members there (they get
    /// <c>Reset</c>, join here again and are redirected). Runs with nothing uncommitted (parked until then).
    /// False if this node no longer owned the document (its members rejoin all the same).
    /// </summary>
    private bool MoveTo(string nodeId)
    {
        if (!_lease.IsValid)
        {
            throw CollabError.Unavailable($"this node cannot hand document '{DocId}' over now: its lease is not current");
        }
        WriteSnapshot();
        var moved = _services.Ownership.HandOver(_lease, nodeId);
        if (moved)
        {
            _services.Metrics.Moved();
            Log.DocumentMoved(_logger, DocId, nodeId);
        }
        Relinquish("moved");
        return moved;
    }

    private void StopIfIdle(TimeSpan idleTimeout)
    {
        _database.CloseIfUnused(busy: !_pipeline.IsIdle);
        if (_state is DocumentState.Live && _members.Count == 0 && Stopwatch.GetElapsedTime(_lastActivity) >= idleTimeout)
        {
            Log.DocumentIdle(_logger, DocId);
            _state = DocumentState.Idle;
        }
    }
}
