using Collab.Messages;
using CollabServer.Diagnostics;
using CollabServer.Identity;
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
}

/// <summary>
/// The members of one document and what they are sent: presence, and broadcasts that never wait
/// on a socket (each connection has its own bounded outbox). Used only on the actor's loop.
/// </summary>
internal sealed class Membership(string docId, CollabMetrics metrics)
{
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private int _count;

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
                var length = sequencer.Text.Length;
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
