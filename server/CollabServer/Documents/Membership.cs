using Collab;
using Collab.Messages;
using CollabServer.Diagnostics;
using CollabServer.Errors;
using CollabServer.Identity;
using CollabServer.Storage;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;

namespace CollabServer.Documents;

/// <summary>A member of a document: one connection that joined it, as who, and where its selection is.</summary>
internal sealed class Member(IMemberConnection connection, string clientId, UserInfo? user, bool readOnly)
{
    public IMemberConnection Connection { get; } = connection;

    /// <summary>Who the connection is, resolved once when it connected.</summary>
    public ConnectionIdentity Identity => Connection.Identity;

    public string ClientId { get; } = clientId;

    /// <summary>Who its ops are stored as (<see cref="OpAuthor"/>), made once.</summary>
    public string AuthorKey { get; } = OpAuthor.Key(connection.Identity, clientId);

    public UserInfo? User { get; set; } = user;

    public bool ReadOnly { get; } = readOnly;

    public int PresenceVersion { get; set; }

    public List<SelectionRange> Selection { get; set; } = [];

    /// <summary>The client id a join names (the connection's id when it names none); <c>invalid_op</c> for one that cannot be stored.</summary>
    public static string ClientIdOf(IMemberConnection connection, JoinRequest request)
    {
        var clientId = string.IsNullOrEmpty(request.ClientId) ? connection.ConnectionId : request.ClientId;
        if (clientId.Length > 128 || clientId.Contains(OpAuthor.Separator) || !Collab.Ot.TextOperation.IsWellFormed(clientId))
        {
            throw CollabError.InvalidOp("clientId must be 1 to 128 characters of well-formed text, without control character U+001F");
        }
        return clientId;
    }
}

/// <summary>
/// The members of one document and what they are sent: presence, and broadcasts that never wait
/// on a socket (each connection has its own bounded outbox); and which members' names history
/// has stored. Used only on the actor's loop.
/// </summary>
internal sealed class Membership(string docId, CollabMetrics metrics)
{
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private int _count;

    /// <summary>Author keys whose name is stored (or about to be, with an uncommitted op) in this actor's life.</summary>
    private readonly HashSet<string> _namedAuthors = new(StringComparer.Ordinal);

    public int Count => _members.Count;

    /// <summary>Number of members, safe to read from any thread (for metrics).</summary>
    public int CountForMetrics => Volatile.Read(ref _count);

    public IEnumerable<Member> All => _members.Values;

    public bool TryGet(string connectionId, out Member member) => _members.TryGetValue(connectionId, out member!);

    public void Add(Member member)
    {
        _members[member.Connection.ConnectionId] = member;
        Volatile.Write(ref _count, _members.Count);
    }

    public bool Remove(string connectionId, out Member member)
    {
        var removed = _members.Remove(connectionId, out member!);
        Volatile.Write(ref _count, _members.Count);
        return removed;
    }

    public void Clear()
    {
        _members.Clear();
        Volatile.Write(ref _count, 0);
    }

    /// <summary>Tells every member to join again (<c>Reset</c>, PROTOCOL §3) and forgets them all.</summary>
    public void ResetAll(string reason, string? movedTo = null)
    {
        Broadcast(HubNames.Reset, new ResetMessage { DocId = docId, Reason = reason, MovedTo = movedTo }, except: null);
        Clear();
    }

    /// <summary>The member that may write through this connection; the protocol's error for a stranger or a reader.</summary>
    public Member Writer(string connectionId)
    {
        if (!TryGet(connectionId, out var member))
        {
            throw new CollabError(ErrorCodes.NotJoined, $"join document '{docId}' before submitting to it");
        }
        return member.ReadOnly ? throw new CollabError(ErrorCodes.Forbidden, $"you may read document '{docId}' but not edit it") : member;
    }

    /// <summary>
    /// Adds <paramref name="member"/> (at the committed version), tells the others, and returns
    /// their presence for its join result.
    /// </summary>
    public List<PresenceMessage> Join(Member member, Sequencer sequencer, long budget)
    {
        var others = new List<PresenceMessage>(_members.Count);
        foreach (var other in _members.Values)
        {
            others.Add(PresenceOf(other, sequencer, budget));
        }
        Add(member);
        Broadcast(HubNames.Presence, PresenceOf(member, sequencer, budget), except: member.Connection.ConnectionId);
        return others;
    }

    /// <summary>Removes a member and tells the others it left (an empty presence); false if it was not one.</summary>
    public bool Leave(string connectionId, int version)
    {
        if (!Remove(connectionId, out var member))
        {
            return false;
        }
        Broadcast(HubNames.Presence, new PresenceMessage { DocId = docId, ClientId = member.ClientId, User = member.User, Version = version, Selection = null }, except: null);
        return true;
    }

    /// <summary>
    /// A member's new selection (and name), made at <see cref="PresenceRequest.Version"/>, told to
    /// the others. Throws the protocol's error, changing nothing, for a stranger, an unknown
    /// version, or a selection too far behind to map within <paramref name="budget"/>.
    /// </summary>
    public void SetPresence(string connectionId, PresenceRequest request, Sequencer sequencer, long budget)
    {
        if (!TryGet(connectionId, out var member))
        {
            throw new CollabError(ErrorCodes.NotJoined, $"join document '{docId}' before setting presence in it");
        }
        var current = sequencer.Version;
        if (request.Version < 0 || request.Version > current)
        {
            throw CollabError.UnknownVersion($"version {request.Version} is not between 0 and the current version {current}");
        }
        if (request.Version < current && request.Selection is { Count: > 0 } ranges
            && CostToMap(ranges.Count, sequencer.ComponentsSince(request.Version)) > budget)
        {
            // Mapping it would cost the loop more than a presence is worth (ranges × ops × components).
            metrics.LimitRefused("presence_map");
            throw CollabError.UnknownVersion($"a selection at version {request.Version} is too far behind the current version {current} to map; send it at a newer version");
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
        var length = sequencer.LengthAt(request.Version);
        member.Selection = (request.Selection ?? []).Select(r => new SelectionRange { Anchor = Math.Clamp(r.Anchor, 0, length), Head = Math.Clamp(r.Head, 0, length) }).ToList();
        member.PresenceVersion = request.Version;
        Broadcast(HubNames.Presence, PresenceOf(member, sequencer, budget), except: connectionId);
    }

    /// <summary>
    /// The name history should store with this member's op: only the first time its author key
    /// writes in this actor's life (or after it changed its name), so the database holds one row
    /// per author, not one per op. Null otherwise.
    /// </summary>
    public OpAuthorship? NameToRecord(Member member) =>
        _namedAuthors.Add(member.AuthorKey)
            ? new OpAuthorship(OpAuthorship.Member, member.Identity.Subject, member.Identity.Name ?? member.User?.Name)
            : null;

    /// <summary>The op that was to store this author's name was refused or is a duplicate: its next op stores it.</summary>
    public void NameNotRecorded(string authorKey) => _namedAuthors.Remove(authorKey);

    /// <summary>Uncommitted ops were rolled back, with whatever names they carried: every author's next op stores its name.</summary>
    public void NamesNotRecorded() => _namedAuthors.Clear();

    /// <summary>
    /// A member's presence, its selection first mapped to the committed version when that costs
    /// at most <paramref name="budget"/> position steps (the ops since are in memory and small
    /// enough); otherwise its positions are clamped to the text, which is all a stale caret needs.
    /// </summary>
    public PresenceMessage PresenceOf(Member member, Sequencer sequencer, long budget)
    {
        var version = sequencer.Version;
        if (member.PresenceVersion < version && member.Selection.Count > 0)
        {
            var from = member.PresenceVersion;
            var mapped = new List<SelectionRange>(member.Selection.Count);
            if (CostToMap(member.Selection.Count, sequencer.ComponentsSince(from)) <= budget)
            {
                foreach (var range in member.Selection)
                {
                    mapped.Add(new SelectionRange { Anchor = sequencer.MapPosition(range.Anchor, from)!.Value, Head = sequencer.MapPosition(range.Head, from)!.Value });
                }
            }
            else
            {
                var length = sequencer.Content.Length;
                foreach (var range in member.Selection)
                {
                    mapped.Add(new SelectionRange { Anchor = Math.Clamp(range.Anchor, 0, length), Head = Math.Clamp(range.Head, 0, length) });
                }
            }
            member.Selection = mapped;
            member.PresenceVersion = version;
        }
        else if (member.PresenceVersion < version)
        {
            member.PresenceVersion = version;
        }
        return new PresenceMessage
        {
            DocId = docId,
            ClientId = member.ClientId,
            User = member.User,
            Version = member.PresenceVersion,
            Selection = member.Selection,
        };
    }

    /// <summary>Position steps mapping <paramref name="ranges"/> ranges (two positions each) over that many components costs.</summary>
    public static long CostToMap(int ranges, long components) =>
        components == long.MaxValue ? long.MaxValue : 2L * ranges * Math.Max(1, components);

    /// <summary>Sends a message to every member but one, without waiting on any socket.</summary>
    public void Broadcast(string method, object payload, string? except)
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
            metrics.Delivered(sent);
        }
    }
}
