using Collab.Messages;
using Collab.Ot;
using CollabServer.Diagnostics;
using CollabServer.Documents;
using CollabServer.Identity;
using CollabServer.Storage;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.DependencyInjection;

namespace CollabServer.Tests.Documents;

/// <summary>A document's members on their own: who is sent what, and presence mapped to the current version.</summary>
public sealed class MembershipTests : IDisposable
{
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly Membership _members;

    public MembershipTests() => _members = new Membership("doc", new CollabMetrics(_meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));

    private Member Join(string clientId, int presenceVersion = 0, params (int Anchor, int Head)[] selection)
    {
        var member = new Member(new RecordingConnection(clientId), clientId, new UserInfo { Name = clientId }, readOnly: false)
        {
            PresenceVersion = presenceVersion,
            Selection = [.. selection.Select(s => new SelectionRange { Anchor = s.Anchor, Head = s.Head })],
        };
        _members.Add(member);
        return member;
    }

    private static List<string> Targets(Member member) => ((RecordingConnection)member.Connection).Targets;

    [Fact]
    public void ABroadcastReachesEveryMemberButTheOneExcepted()
    {
        var ada = Join("ada");
        var bob = Join("bob");
        var cy = Join("cy");

        _members.Broadcast(HubNames.Op, new OpMessage { DocId = "doc", Version = 1 }, except: ada.Connection.ConnectionId);
        _members.Broadcast(HubNames.Reset, new ResetMessage { DocId = "doc", Reason = "deleted" }, except: null);

        Assert.Equal([HubNames.Reset], Targets(ada));
        Assert.Equal([HubNames.Op, HubNames.Reset], Targets(bob));
        Assert.Equal([HubNames.Op, HubNames.Reset], Targets(cy));
    }

    [Fact]
    public void MembersAreCountedAsTheyComeAndGo()
    {
        var ada = Join("ada");
        Join("bob");
        Assert.Equal((2, 2), (_members.Count, _members.CountForMetrics));

        Assert.True(_members.Remove(ada.Connection.ConnectionId, out var removed));
        Assert.Same(ada, removed);
        Assert.False(_members.Remove(ada.Connection.ConnectionId, out _));
        Assert.False(_members.TryGet(ada.Connection.ConnectionId, out _));
        Assert.Equal((1, 1), (_members.Count, _members.CountForMetrics));

        _members.Clear();
        Assert.Equal((0, 0), (_members.Count, _members.CountForMetrics));
        _members.Broadcast(HubNames.Op, new OpMessage { DocId = "doc" }, except: null); // nobody to send to: nothing happens
    }

    /// <summary>A document of ten code units at version 2, then five inserted at its start (versions 3 and 4); or loaded at version 4 with no ops in memory.</summary>
    private static Sequencer Document(bool opsInMemory = true)
    {
        var s = new Sequencer(new LoadedDocument(Rope.FromString("0123456789"), opsInMemory ? 2 : 4, 0, []), 1000, 1 << 20, 1000, 1000, () => null);
        if (opsInMemory)
        {
            s.Sequence("x", 1, new TextOperation.Builder().Insert("abc").Retain(10).Build(), 2, 0);
            s.Sequence("x", 2, new TextOperation.Builder().Insert("de").Retain(13).Build(), 3, 0);
            s.Committed(s.WorkVersion, s.WorkContent);
        }
        return s;
    }

    [Fact]
    public void APresenceIsMappedToTheCurrentVersionWhenTheOpsSinceItAreKnown()
    {
        var ada = Join("ada", presenceVersion: 2, (1, 3));

        var presence = _members.PresenceOf(ada, Document(), budget: 1000);

        Assert.Equal(4, presence.Version);
        Assert.Equal((6, 8), (presence.Selection![0].Anchor, presence.Selection[0].Head));
        Assert.Equal(4, ada.PresenceVersion); // mapped once, kept
    }

    [Fact]
    public void APresenceWhoseOpsAreNoLongerKeptOrCostTooMuchToMapIsClampedToTheText()
    {
        var ada = Join("ada", presenceVersion: 2, (1, 30));
        var presence = _members.PresenceOf(ada, Document(opsInMemory: false), budget: 1000);
        Assert.Equal(4, presence.Version);
        Assert.Equal((1, 10), (presence.Selection![0].Anchor, presence.Selection[0].Head));
        Assert.Equal(("doc", "ada", "ada"), (presence.DocId, presence.ClientId, presence.User!.Name));

        // Mapping over the two ops would walk 2 positions × 2 components (an insert each; canonical
        // ops drop a trailing retain): a budget of 3 clamps instead.
        var bob = Join("bob", presenceVersion: 2, (1, 30));
        presence = _members.PresenceOf(bob, Document(), budget: 3);
        Assert.Equal(4, presence.Version);
        Assert.Equal((1, 15), (presence.Selection![0].Anchor, presence.Selection[0].Head));
    }

    [Fact]
    public void AJoinerGetsTheOthersPresenceAndTheOthersAreToldOfIt()
    {
        var ada = Join("ada", presenceVersion: 4, (1, 2));
        var bob = new Member(new RecordingConnection("bob"), "bob", new UserInfo { Name = "bob" }, readOnly: false) { PresenceVersion = 4 };

        var others = _members.Join(bob, Document(), budget: 1000);

        Assert.Equal("ada", Assert.Single(others).ClientId);
        Assert.Equal([HubNames.Presence], Targets(ada));
        Assert.Empty(Targets(bob));
        Assert.True(_members.Leave(bob.Connection.ConnectionId, version: 4));
        Assert.False(_members.Leave(bob.Connection.ConnectionId, version: 4));
        Assert.Equal([HubNames.Presence, HubNames.Presence], Targets(ada));
    }

    [Fact]
    public void OnlyAJoinedMemberThatMayEditIsAWriter()
    {
        var reader = new Member(new RecordingConnection("reader"), "reader", null, readOnly: true);
        _members.Add(reader);
        var writer = Join("writer");

        Assert.Same(writer, _members.Writer(writer.Connection.ConnectionId));
        Assert.Equal(Collab.ErrorCodes.Forbidden, Assert.Throws<CollabServer.Errors.CollabError>(() => _members.Writer(reader.Connection.ConnectionId)).Code);
        Assert.Equal(Collab.ErrorCodes.NotJoined, Assert.Throws<CollabServer.Errors.CollabError>(() => _members.Writer("conn-stranger")).Code);
    }

    [Fact]
    public void AnAuthorsNameIsToBeStoredOnceUntilItIsNotRecordedOrChanges()
    {
        var ada = Join("ada");
        var document = Document();

        var first = _members.NameToRecord(ada);
        Assert.Equal((OpAuthorship.Member, "ada"), (first!.Kind, first.Name));
        Assert.Null(_members.NameToRecord(ada));

        _members.NameNotRecorded(ada.AuthorKey); // its op was refused
        Assert.NotNull(_members.NameToRecord(ada));

        _members.SetPresence(ada.Connection.ConnectionId, new PresenceRequest { DocId = "doc", Version = 4, User = new UserInfo { Name = "Ada L." } }, document, budget: 1000);
        Assert.Equal("Ada L.", _members.NameToRecord(ada)!.Name);

        _members.NamesNotRecorded(); // a commit rolled back
        Assert.NotNull(_members.NameToRecord(ada));
    }

    public void Dispose() => _meters.Dispose();

    private sealed class RecordingConnection(string clientId) : IMemberConnection
    {
        public List<string> Targets { get; } = [];

        public string ConnectionId { get; } = $"conn-{clientId}";

        public ConnectionIdentity Identity => ConnectionIdentity.Anonymous;

        public bool IsClosed => false;

        public bool TryTakeCreation() => true;

        public void Send(SerializedHubMessage message) => Targets.Add(((InvocationMessage)message.Message!).Target);
    }
}
