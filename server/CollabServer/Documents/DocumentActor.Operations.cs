using System.Diagnostics;
using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Errors;
using CollabServer.Identity;
using CollabServer.Storage;

namespace CollabServer.Documents;

// The requests other than Submit. Each runs on the loop.
public sealed partial class DocumentActor
{
    private JoinResult Join(IMemberConnection connection, JoinRequest request, bool readOnly)
    {
        var clientId = string.IsNullOrEmpty(request.ClientId) ? connection.ConnectionId : request.ClientId;
        if (clientId.Length > 128 || clientId.Contains(OpAuthor.Separator) || !TextOperation.IsWellFormed(clientId))
        {
            throw CollabError.InvalidOp("clientId must be 1 to 128 characters of well-formed text, without control character U+001F");
        }
        // A join of a missing document creates nothing on disk: its first write does.
        if (connection.IsClosed)
        {
            // It disconnected while this join waited; registering it now would leave a ghost member.
            throw CollabError.Unavailable("the connection closed");
        }
        List<OpMessage>? ops = null;
        var workVersion = _sequencer.WorkVersion;
        if (request.SinceVersion is int since && since >= 0 && since <= workVersion && workVersion - since <= _options.MaxResumeOps)
        {
            try
            {
                // Reading old ops may first complete the commit in flight (see OpenLog), which
                // moves the version; so the version and the member are taken only after this.
                ops = _sequencer.OpsSince(since).Select(ToMessage).ToList();
            }
            catch (CollabError)
            {
                // Those ops are no longer kept: the whole text it is.
            }
        }
        if (_state is DocumentState.Idle)
        {
            _state = DocumentState.Live;
        }
        var version = _sequencer.Version;
        // Resuming an id that was renamed away (and not written again) makes a new, empty document;
        // the result says where the text went, so a client that missed the Reset can follow. Only
        // a resume asks: a first join of a new document pays nothing for it.
        var movedTo = request.SinceVersion is null || _database.Exists ? null : _services.Redirects.Get(DocId);
        var member = new Member(connection, clientId, connection.Identity.Presenting(request.User), readOnly) { PresenceVersion = version };
        _members.Add(member);

        var result = new JoinResult { DocId = DocId, Version = version, ReadOnly = readOnly, MovedTo = movedTo };
        if (ops is not null && request.SinceVersion <= version)
        {
            // Only committed ops: the ones still in flight reach this member as broadcasts.
            ops.RemoveAll(o => o.Version > version);
            result.Ops = ops;
        }
        else
        {
            result.Text = TextString();
        }
        foreach (var other in _members.All)
        {
            if (other != member)
            {
                result.Presence.Add(PresenceOf(other));
            }
        }
        _members.Broadcast(HubNames.Presence, PresenceOf(member), except: connection.ConnectionId);
        // A join only reads; the database is opened again by the first write.
        _database.CloseIfUnused(busy: !_pipeline.IsIdle);
        return result;
    }

    private bool Leave(string connectionId)
    {
        if (!_members.Remove(connectionId, out var member))
        {
            return false;
        }
        _members.Broadcast(HubNames.Presence, new PresenceMessage
        {
            DocId = DocId,
            ClientId = member.ClientId,
            User = member.User,
            Version = _sequencer.Version,
            Selection = null,
        }, except: null);
        return true;
    }

    private bool SetPresence(string connectionId, PresenceRequest request)
    {
        if (!_members.TryGet(connectionId, out var member))
        {
            throw new CollabError(ErrorCodes.NotJoined, $"join document '{DocId}' before setting presence in it");
        }
        if (request.Version < 0 || request.Version > _sequencer.Version)
        {
            throw CollabError.UnknownVersion($"version {request.Version} is not between 0 and the current version {_sequencer.Version}");
        }
        if (request.Version < _sequencer.Version && request.Selection is { Count: > 0 } ranges
            && Membership.CostToMap(ranges.Count, _sequencer.ComponentsSince(request.Version)) > _options.PresenceMapBudget)
        {
            // Mapping it would cost the loop more than a presence is worth (ranges × ops × components).
            _services.Metrics.LimitRefused("presence_map");
            throw CollabError.UnknownVersion($"a selection at version {request.Version} is too far behind the current version {_sequencer.Version} to map; send it at a newer version");
        }
        if (request.User is not null)
        {
            var user = member.Identity.Presenting(request.User);
            if (user.Name != member.User?.Name)
            {
                _namedAuthors.Remove(member.AuthorKey); // its next op records the new name
            }
            member.User = user;
        }
        // Positions past the text are clamped to it; the others see what the text allows.
        var length = _sequencer.LengthAt(request.Version);
        member.Selection = (request.Selection ?? []).Select(r => new SelectionRange { Anchor = Math.Clamp(r.Anchor, 0, length), Head = Math.Clamp(r.Head, 0, length) }).ToList();
        member.PresenceVersion = request.Version;
        _members.Broadcast(HubNames.Presence, PresenceOf(member), except: connectionId);
        return true;
    }

    private PresenceMessage PresenceOf(Member member) => _members.PresenceOf(member, _sequencer, _options.PresenceMapBudget);

    private OpMessage ToMessage(StoredOp op) => new()
    {
        DocId = DocId,
        Version = op.Version,
        Op = op.Op,
        ClientId = OpAuthor.ClientIdOf(op.ClientId),
        OpId = op.OpId,
    };

    /// <summary>
    /// Whether the document exists: it has a database, or members joined it (PROTOCOL §3: a join
    /// creates the document), though nothing is on disk until its first write.
    /// </summary>
    private bool Exists => _database.Exists || _members.Count > 0;

    /// <summary>The text and version, or null if the document does not exist.</summary>
    private (int Version, string Text)? Read() => Exists ? (_sequencer.Version, TextString()) : null;

    /// <summary>The committed text as a string, built once per version: many joins at one version share it.</summary>
    private string TextString()
    {
        if (_textString is null || _textStringVersion != _sequencer.Version)
        {
            _textString = _sequencer.Text.ToString();
            _textStringVersion = _sequencer.Version;
        }
        return _textString;
    }

    private string? _textString;
    private int _textStringVersion;

    private DocumentSummary? Summary() =>
        Exists ? new DocumentSummary(DocId, _sequencer.Version, _sequencer.Text.Length, DateTimeOffset.FromUnixTimeMilliseconds(_updatedAtMs)) : null;

    /// <summary>Committed ops after version <paramref name="from"/>, with their times; null if the document does not exist. Runs with nothing uncommitted (parked until then).</summary>
    private List<OpMessage>? ReadOps(int from, int limit)
    {
        if (_database.OpenIfExists() is not { } store)
        {
            return Exists ? [] : null;
        }
        var after = Math.Max(0, from);
        var ops = store.ReadOps(after, _sequencer.Version, limit);
        if (ops.Count > 0 && ops[0].Version > after + 1)
        {
            // Folded by retention: "every op after N" cannot be answered, so it is not half-answered.
            throw CollabError.UnknownVersion($"the ops after version {after} are past the retention period; the oldest version kept is {ops[0].Version - 1}");
        }
        return ops
            .Select(op =>
            {
                var message = ToMessage(op);
                message.CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(op.CreatedAtMs);
                return message;
            })
            .ToList();
    }

    /// <summary>
    /// Makes the document's text the one <paramref name="replace"/> gives, with one op (creating the document if needed),
    /// sequenced and committed exactly as a member's submit is, and answers the version after it
    /// once that op is committed. Runs with nothing uncommitted (parked until then), so the op is
    /// the difference from the committed text.
    /// </summary>
    private void Replace(ReplaceText replace)
    {
        var text = replace.Text;
        if (text.Length > _options.MaxDocumentLength)
        {
            throw new CollabError(ErrorCodes.TooLarge, $"the document would be longer than {_options.MaxDocumentLength} code units");
        }
        if (!TextOperation.IsWellFormed(text))
        {
            throw CollabError.InvalidOp("the text contains a lone surrogate");
        }
        _database.Open();
        var op = TextOperation.Diff(_sequencer.Text.ToString(), text);
        if (op.IsNoop)
        {
            replace.Answer(_sequencer.Version);
            return;
        }
        // The server's ops are numbered by the version they were made at, so each is new.
        var work = new SubmitWork(null, new SubmitRequest { DocId = DocId, BaseVersion = _sequencer.Version, Op = op, OpId = _sequencer.Version + 1 }) { ServerWrite = replace.By };
        Sequence(work);
        work.Task.ContinueWith(
            done =>
            {
                if (done.IsCompletedSuccessfully)
                {
                    replace.Answer(done.Result.Version);
                }
                else
                {
                    replace.Fail(done.Exception!.InnerException!);
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
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
        if (_database.Exists && _lease.Epoch != 0)
        {
            // In a cluster the files are shared: only a current owner deletes them, checked
            // the way a commit is (a newer owner's epoch, or a lease run out, refuses it).
            try
            {
                _database.Open().Fence(_lease.Fence);
            }
            catch (FencedException fenced)
            {
                throw CollabError.Unavailable($"this node cannot delete document '{DocId}' now ({fenced.Message}); try again");
            }
        }
        if (movedTo is not null)
        {
            _services.Redirects.Set(DocId, movedTo);
        }
        if (_database.Exists)
        {
            try
            {
                _database.Delete();
            }
            catch when (movedTo is not null)
            {
                TryForgetRedirect(); // still there: it must not redirect
                throw;
            }
            _services.Deleted(DocId);
        }
        var reset = movedTo is null
            ? new ResetMessage { DocId = DocId, Reason = "deleted" }
            : new ResetMessage { DocId = DocId, Reason = "renamed", MovedTo = movedTo };
        _members.Broadcast(HubNames.Reset, reset, except: null);
        _members.Clear();
        _state = DocumentState.Deleted;
        Log.DocumentDeleted(_logger, DocId);
        return true;
    }

    private void TryForgetRedirect()
    {
        try
        {
            _services.Redirects.Remove(DocId);
        }
        catch (Exception ex)
        {
            Log.ActorFault(_logger, DocId, ex);
        }
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

    /// <summary>Retention's write, through this owner's store and under its lease; false if it does not apply or the lease is gone.</summary>
    private bool WriteFold(FoldPlan plan) => RetentionWrite(store => store.WriteFold(plan, _lease.Fence), false);

    /// <summary>Deletes up to a thousand folded ops, so edits wait at most for one short transaction.</summary>
    private int DeleteFoldedOps(int boundary) => RetentionWrite(store => store.DeleteFolded(boundary, 1000, _lease.Fence), 0);

    /// <summary>A retention write on the loop's store, with nothing committing (parked until then); <paramref name="otherwise"/> when there is no database or the lease is not ours any more (the new owner's retention does it).</summary>
    private T RetentionWrite<T>(Func<IDocumentStore, T> write, T otherwise)
    {
        if (_database.OpenIfExists() is not { } store) // nothing is committing: parked until then
        {
            return otherwise;
        }
        try
        {
            return write(store);
        }
        catch (FencedException)
        {
            return otherwise;
        }
        finally
        {
            _database.Written();
        }
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
