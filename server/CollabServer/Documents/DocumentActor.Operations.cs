using System.Diagnostics;
using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Hubs;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Documents;

/// <summary>A document's state as REST shows it.</summary>
public sealed record DocumentSummary(string Id, int Version, int Length, DateTimeOffset UpdatedAt);

// The requests other than Submit. Each runs on the loop with the batch already committed.
public sealed partial class DocumentActor
{
    private bool Exists => _exists;

    internal JoinResult Join(ClientConnection connection, JoinRequest request, bool readOnly)
    {
        var clientId = string.IsNullOrEmpty(request.ClientId) ? connection.ConnectionId : request.ClientId;
        if (clientId.Length > 128)
        {
            throw CollabErrors.Create(ErrorCodes.InvalidOp, "clientId must be 1 to 128 characters");
        }
        try
        {
            if (!_exists)
            {
                EnsureCreated();
            }
        }
        catch (Exception ex)
        {
            Log.DocumentLoadFailed(_logger, DocId, ex);
            throw CollabErrors.Create(ErrorCodes.Unavailable, "the document could not be created; try again later");
        }
        if (connection.IsClosed)
        {
            // It disconnected while this join waited; registering it now would leave a ghost member.
            throw CollabErrors.Create(ErrorCodes.Unavailable, "the connection closed");
        }
        List<OpMessage>? ops = null;
        if (request.SinceVersion is int since && since >= 0 && since <= _workVersion && _workVersion - since <= _options.MaxResumeOps)
        {
            try
            {
                // Reading old ops may first complete the commit in flight (see Store), which moves
                // _version; so the version and the member are taken only after this.
                ops = OpsSince(since).Select(ToMessage).ToList();
            }
            catch (HubException)
            {
                // Those ops are no longer kept: the whole text it is.
            }
        }
        _idle = false;
        var member = new Member(connection, clientId, request.User, readOnly) { PresenceVersion = _version };
        _members[connection.ConnectionId] = member;
        Volatile.Write(ref _memberCount, _members.Count);

        var result = new JoinResult { DocId = DocId, Version = _version, ReadOnly = readOnly };
        if (ops is not null && request.SinceVersion <= _version)
        {
            // Only committed ops: the ones still in flight reach this member as broadcasts.
            ops.RemoveAll(o => o.Version > _version);
            result.Ops = ops;
        }
        else
        {
            result.Text = TextString();
        }
        foreach (var other in _members.Values)
        {
            if (other != member)
            {
                result.Presence.Add(PresenceOf(other));
            }
        }
        Broadcast(HubNames.Presence, PresenceOf(member), except: connection.ConnectionId);
        // A join only reads; the database is opened again by the first write.
        CloseDatabaseIfUnused();
        return result;
    }

    internal bool Leave(string connectionId)
    {
        if (!_members.Remove(connectionId, out var member))
        {
            return false;
        }
        Volatile.Write(ref _memberCount, _members.Count);
        Broadcast(HubNames.Presence, new PresenceMessage
        {
            DocId = DocId,
            ClientId = member.ClientId,
            User = member.User,
            Version = _version,
            Selection = null,
        }, except: null);
        return true;
    }

    internal bool SetPresence(string connectionId, PresenceRequest request)
    {
        if (!_members.TryGetValue(connectionId, out var member))
        {
            throw CollabErrors.Create(ErrorCodes.NotJoined, $"join document '{DocId}' before setting presence in it");
        }
        if (request.Version < 0 || request.Version > _version)
        {
            throw CollabErrors.Create(ErrorCodes.UnknownVersion, $"version {request.Version} is not between 0 and the current version {_version}");
        }
        if (request.User is not null)
        {
            member.User = request.User;
        }
        member.Selection = request.Selection ?? [];
        member.PresenceVersion = request.Version;
        Broadcast(HubNames.Presence, PresenceOf(member), except: connectionId);
        return true;
    }

    /// <summary>A member's presence, its selection mapped to the current version when the ops since are in memory.</summary>
    private PresenceMessage PresenceOf(Member member)
    {
        if (member.PresenceVersion < _version && member.PresenceVersion >= WindowStart && member.Selection.Count > 0)
        {
            var mapped = new List<SelectionRange>(member.Selection.Count);
            foreach (var range in member.Selection)
            {
                int anchor = range.Anchor, head = range.Head;
                for (var i = member.PresenceVersion - WindowStart; i < _window.Count; i++)
                {
                    anchor = _window[i].Op.TransformPosition(anchor);
                    head = _window[i].Op.TransformPosition(head);
                }
                mapped.Add(new SelectionRange { Anchor = Math.Clamp(anchor, 0, _text.Length), Head = Math.Clamp(head, 0, _text.Length) });
            }
            member.Selection = mapped;
            member.PresenceVersion = _version;
        }
        return new PresenceMessage
        {
            DocId = DocId,
            ClientId = member.ClientId,
            User = member.User,
            Version = member.PresenceVersion,
            Selection = member.Selection,
        };
    }

    private OpMessage ToMessage(StoredOp op) => new()
    {
        DocId = DocId,
        Version = op.Version,
        Op = op.Op,
        ClientId = op.ClientId,
        OpId = op.OpId,
    };

    /// <summary>The text and version, or null if the document does not exist.</summary>
    internal (int Version, string Text)? Read() => Exists ? (_version, TextString()) : null;

    /// <summary>The committed text as a string, built once per version: many joins at one version share it.</summary>
    private string TextString()
    {
        if (_textString is null || _textStringVersion != _version)
        {
            _textString = _text.ToString();
            _textStringVersion = _version;
        }
        return _textString;
    }

    private string? _textString;
    private int _textStringVersion;

    internal DocumentSummary? Summary() =>
        Exists ? new DocumentSummary(DocId, _version, _text.Length, DateTimeOffset.FromUnixTimeMilliseconds(_updatedAtMs)) : null;

    /// <summary>Committed ops after version <paramref name="from"/>, with their times; null if the document does not exist.</summary>
    internal List<OpMessage>? ReadOps(int from, int limit)
    {
        Flush();
        if (Store is not { } store)
        {
            return null;
        }
        return store.ReadOps(Math.Max(0, from), _version, limit)
            .Select(op =>
            {
                var message = ToMessage(op);
                message.CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(op.CreatedAtMs);
                return message;
            })
            .ToList();
    }

    /// <summary>Makes the text <paramref name="text"/> with one op (creating the document if needed); returns the version after it.</summary>
    internal int Replace(string text)
    {
        if (text.Length > _options.MaxDocumentLength)
        {
            throw CollabErrors.Create(ErrorCodes.TooLarge, $"the document would be longer than {_options.MaxDocumentLength} code units");
        }
        if (!TextOperation.IsWellFormed(text))
        {
            throw CollabErrors.Create(ErrorCodes.InvalidOp, "the text contains a lone surrogate");
        }
        Flush();
        EnsureCreated();
        var op = TextOperation.Diff(_text.ToString(), text);
        if (op.IsNoop)
        {
            return _version;
        }
        var work = new SubmitWork(null, new SubmitRequest { DocId = DocId, BaseVersion = _version, Op = op, OpId = _version + 1 });
        Append(new Pending(new StoredOp(_version + 1, op, ServerClientId, _version + 1, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), work));
        Flush();
        // Flush completed or failed the work synchronously.
        return work.Task.IsCompletedSuccessfully ? work.Task.Result.Version : throw work.Task.Exception!.InnerException!;
    }

    /// <summary>Deletes the document's files and tells every member to join again; false if it does not exist.</summary>
    internal bool Delete()
    {
        Flush();
        if (!_exists)
        {
            return false;
        }
        Broadcast(HubNames.Reset, new ResetMessage { DocId = DocId, Reason = "deleted" }, except: null);
        _members.Clear();
        Volatile.Write(ref _memberCount, 0);
        _store?.Dispose();
        _store = null;
        _exists = false;
        DocumentStore.DeleteFiles(_path);
        _text = _workText = Rope.Empty;
        _textString = null;
        _version = _workVersion = _snapshotVersion = 0;
        _window.Clear();
        _recentIds.Clear();
        _maxOpId.Clear();
        _snapshotting = null;
        _updatedAtMs = 0;
        Log.DocumentDeleted(_logger, DocId);
        return true;
    }

    internal void StopIfIdle(TimeSpan idleTimeout)
    {
        CloseDatabaseIfUnused();
        if (_members.Count == 0 && Stopwatch.GetElapsedTime(_lastActivity) >= idleTimeout)
        {
            Log.DocumentIdle(_logger, DocId);
            _idle = true;
        }
    }
}
