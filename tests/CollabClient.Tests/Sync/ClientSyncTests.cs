using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// The client state machine, step by step, against the <see cref="DummyServer"/> with
/// deliveries chosen by hand.
/// </summary>
public sealed class ClientSyncTests
{
    private const string DocId = "doc";

    private static (DummyServer Server, Peer A, Peer B) TwoPeers()
    {
        var server = new DummyServer(seed: 1);
        var a = server.AddPeer("client-a");
        var b = server.AddPeer("client-b");
        a.CreateDocument(DocId);
        b.CreateDocument(DocId);
        var joinA = a.Document.JoinInitialAsync(CancellationToken.None);
        var joinB = b.Document.JoinInitialAsync(CancellationToken.None);
        server.DeliverAll();
        Assert.True(joinA.IsCompletedSuccessfully && joinB.IsCompletedSuccessfully, $"{joinA.Status} {joinA.Exception} {joinB.Status}");
        return (server, a, b);
    }

    private static void AssertConverged(DummyServer server, params Peer[] peers)
    {
        foreach (var peer in peers)
        {
            Assert.Equal(server.Text, peer.Document.Text);
            Assert.Equal(server.Text, peer.Mirror);
            Assert.Equal(server.Version, peer.Document.Version);
            Assert.Equal(ClientSyncState.Synchronized, peer.Document.SyncState);
            Assert.False(peer.Document.HasUnconfirmedChanges);
        }
    }

    [Fact]
    public void LocalEditsGoThroughSynchronizedAwaitingConfirmAndAwaitingWithBuffer()
    {
        var (server, a, _) = TwoPeers();
        var doc = a.Document;
        Assert.Equal(ClientSyncState.Synchronized, doc.SyncState);

        doc.Insert(0, "hello");
        Assert.Equal(ClientSyncState.AwaitingConfirm, doc.SyncState);
        Assert.Equal(1, doc.PendingOps);

        doc.Insert(5, " world");
        doc.Delete(0, 1);
        Assert.Equal(ClientSyncState.AwaitingWithBuffer, doc.SyncState);
        Assert.Equal(2, doc.PendingOps);
        Assert.Equal("ello world", doc.Text);
        Assert.Equal(0, doc.Version);

        server.Deliver("submit");
        server.Deliver("submit-result");
        // The ack moves the buffer in flight, as one op.
        Assert.Equal(ClientSyncState.AwaitingConfirm, doc.SyncState);
        Assert.Equal(1, doc.Version);

        server.DeliverAll();
        AssertConverged(server, server.Peers.ToArray());
        Assert.Equal("ello world", server.Text);
        Assert.Equal(2, server.Version);
    }

    [Fact]
    public void ConcurrentInsertsAtOnePlacePutTheLaterArrivalFirst()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "A");
        b.Document.Insert(0, "B");
        server.Deliver("submit", a);
        server.Deliver("submit", b);
        server.RunUntilQuiet();
        // B reached the server later, so its text goes to the left (PROTOCOL §1).
        Assert.Equal("BA", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void AckThatOvertakesEarlierOpsWaitsForThem()
    {
        var (server, a, b) = TwoPeers();
        b.Document.Insert(0, "bbb");
        server.Deliver("submit", b);          // version 1: b's
        a.Document.Insert(0, "aaa");
        server.Deliver("submit", a);          // version 2: a's, transformed over b's
        server.Deliver("submit-result", a);   // a hears "you are version 2" before op 1

        Assert.Equal(0, a.Document.Version);
        Assert.Equal(ClientSyncState.AwaitingConfirm, a.Document.SyncState);
        Assert.Equal("aaa", a.Document.Text);

        server.Deliver("op", a);              // op 1 arrives: both apply, in order
        Assert.Equal(2, a.Document.Version);
        Assert.Equal(ClientSyncState.Synchronized, a.Document.SyncState);

        server.RunUntilQuiet();
        AssertConverged(server, a, b);
    }

    [Fact]
    public void OpsThatArriveOutOfOrderAreAppliedInVersionOrderAndDuplicatesIgnored()
    {
        var (server, a, b) = TwoPeers();
        b.Document.Insert(0, "1");
        server.DeliverAll();
        b.Document.Insert(1, "2");
        server.Deliver("submit", b);
        b.Document.Insert(2, "3");
        server.Deliver("submit-result", b);
        server.Deliver("submit", b);
        server.Deliver("submit-result", b);
        var ops = server.History;

        // Version 3 before version 2, then both again.
        a.Document.OnOp(ops[2]);
        Assert.Equal(1, a.Document.Version);
        a.Document.OnOp(ops[1]);
        a.Document.OnOp(ops[1]);
        a.Document.OnOp(ops[2]);
        Assert.Equal(3, a.Document.Version);
        Assert.Equal("123", a.Document.Text);

        server.RunUntilQuiet();
        AssertConverged(server, a, b);
    }

    [Fact]
    public void RemoteOpIsTransformedOverInFlightAndBufferedEdits()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "hello world");
        server.DeliverAll();

        a.Document.Insert(5, ",");            // in flight
        a.Document.Insert(12, "!");           // buffered
        b.Document.Replace(0, 5, "HELLO");
        server.Deliver("submit", b);
        server.Deliver("op", a);
        Assert.Equal("HELLO, world!", a.Document.Text);
        Assert.Equal(ClientSyncState.AwaitingWithBuffer, a.Document.SyncState);

        server.RunUntilQuiet();
        Assert.Equal("HELLO, world!", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void ResumeCountsOurOwnOpInTheMissedOpsAsTheAck()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "once");
        server.Deliver("submit", a);          // committed...
        a.Disconnect();                       // ...but the result is lost
        Assert.Equal(ConnectionState.Reconnecting, a.Document.ConnectionState);
        Assert.Equal(ClientSyncState.AwaitingConfirm, a.Document.SyncState);

        a.Reconnect();
        server.DeliverAll();
        Assert.Equal(ConnectionState.Connected, a.Document.ConnectionState);
        Assert.Equal("once", server.Text);
        Assert.Single(server.Received, r => r.ClientId == a.ClientId);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void ResumeResubmitsTheInFlightOpWithTheSameOpId()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "x");
        a.Disconnect(requestsLost: true);     // the submit never reached the server
        a.Document.Insert(1, "y");            // offline edits are buffered
        b.Document.Insert(0, "b");
        server.DeliverAll();

        a.Reconnect();
        server.DeliverAll();
        var ids = server.Received.Where(r => r.ClientId == a.ClientId).Select(r => r.Request.OpId).ToList();
        Assert.Equal(2, ids.Count);
        Assert.True(ids[1] > ids[0]);
        // a's op reached the server after b's, so it goes first (PROTOCOL §1).
        Assert.Equal("xyb", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void ResubmittingAnOpTheServerAlreadyHasIsDeduplicated()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "x");
        server.Deliver("submit", a);          // committed at version 1
        b.Document.Insert(0, "b");
        server.Deliver("submit", b);          // version 2
        a.Disconnect();
        server.KeepsHistory = true;
        a.Reconnect();
        // The resume's ops hold a's op with its op id, so nothing is resubmitted.
        server.DeliverAll();
        Assert.Equal(1, server.Received.Count(r => r.ClientId == a.ClientId));
        Assert.Equal("bx", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void ResumeWithTheWholeTextRebasesPendingEditsOntoIt()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "0123456789");
        server.DeliverAll();

        a.Disconnect();
        a.Document.Insert(10, "-tail");
        a.Document.Delete(0, 1);
        b.Document.Replace(4, 2, "XY");
        server.DeliverAll();

        server.KeepsHistory = false;
        a.Reconnect();
        server.DeliverAll();
        // The server's change is one replacement (TextOperation.Diff) of "45": a's edits are
        // outside it and keep their meaning. (Edits inside a replaced stretch would be moved to
        // its edge: the documented cost of rebasing onto a text instead of ops.)
        Assert.Equal("123XY6789-tail", server.Text);
        AssertConverged(server, a, b);
        // The rebased edits went out as one new op with a new id.
        var ids = server.Received.Where(r => r.ClientId == a.ClientId).Select(r => r.Request.OpId).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void ResetRejoinsWithoutVersionAndKeepsPendingEdits()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "abc");
        server.DeliverAll();
        a.Document.Insert(3, "d");
        server.Deliver("submit", a);          // in flight on the server; the result is still on its way
        a.Document.Insert(4, "e");            // buffered
        server.SendReset(a);
        server.Deliver("reset", a);
        Assert.Equal(1, a.Resets);
        Assert.Equal(ConnectionState.Reconnecting, a.Document.ConnectionState);
        server.RunUntilQuiet();
        Assert.Equal("abcde", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void RejectedOpRaisesErrorDropsLocalEditsAndResynchronizes()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "keep");
        server.DeliverAll();
        server.RejectNextSubmit(a.ClientId, ErrorCodes.InvalidOp);
        a.Document.Insert(4, " drop");
        a.Document.Insert(0, "also ");
        server.DeliverAll();

        var error = Assert.Single(a.Errors);
        Assert.Equal(ErrorCodes.InvalidOp, error.Error.Code);
        Assert.True(error.LocalChangesDiscarded);
        Assert.Equal("keep", server.Text);
        AssertConverged(server, a, b);

        a.Document.Insert(4, "!");
        server.DeliverAll();
        Assert.Equal("keep!", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void TransientRejectionIsRetriedWithTheSameOpId()
    {
        var (server, a, b) = TwoPeers();
        server.RejectNextSubmit(a.ClientId, ErrorCodes.Unavailable);
        a.Document.Insert(0, "retry");
        server.DeliverAll();
        var ids = server.Received.Where(r => r.ClientId == a.ClientId).Select(r => r.Request.OpId).ToList();
        Assert.Equal(2, ids.Count);
        Assert.Equal(ids[0], ids[1]);
        Assert.Empty(a.Errors);
        Assert.Equal("retry", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void NotJoinedRejectionResumesAndResubmits()
    {
        var (server, a, b) = TwoPeers();
        server.Forget(a);
        a.Document.Insert(0, "late");
        server.DeliverAll();
        Assert.Equal("late", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void WhenSynchronizedCompletesOnceEveryEditIsConfirmed()
    {
        var (server, a, _) = TwoPeers();
        Assert.True(a.Document.WhenSynchronizedAsync().IsCompletedSuccessfully);
        a.Document.Insert(0, "x");
        var waiting = a.Document.WhenSynchronizedAsync();
        a.Document.Insert(1, "y");
        server.Deliver("submit", a);
        server.Deliver("submit-result", a);
        Assert.False(waiting.IsCompleted);
        server.DeliverAll();
        Assert.True(waiting.IsCompletedSuccessfully);
    }

    [Fact]
    public void InvalidLocalEditsThrowAndChangeNothing()
    {
        var (server, a, _) = TwoPeers();
        a.Document.Insert(0, "ab\U0001F600c");
        server.DeliverAll();

        Assert.Throws<ArgumentOutOfRangeException>(() => a.Document.Insert(-1, "x"));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Insert(6, "x"));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Delete(4, 3));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Insert(3, "x"));          // inside the surrogate pair
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Insert(0, "\uD83D"));     // lone surrogate
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Apply(TextOperation.Create([OpComponent.Retain(7)])));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Replace(7, 0, ""));
        Assert.Equal("ab\U0001F600c", a.Document.Text);
        Assert.Equal(ClientSyncState.Synchronized, a.Document.SyncState);
    }

    // A lone surrogate can never be sent (a lenient UTF-8 encoder would write it as ED A0 BD,
    // which the server refuses as invalid_op), whichever way the edit is made.
    // (Attribute arguments are stored as UTF-8, where a lone surrogate becomes U+FFFD: the texts
    // are chosen inside the test.)
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void LocalEditsWithALoneSurrogateThrowAndSendNothing(int which)
    {
        var text = new[] { "\uD83D", "x\uDE00", "\uD83D\uD83D\uDE00" }[which];
        Assert.False(TextOperation.IsWellFormed(text));
        var (server, a, _) = TwoPeers();
        a.Document.Insert(0, "ab");
        server.DeliverAll();
        var received = server.Received.Count;

        Assert.ThrowsAny<ArgumentException>(() => a.Document.Insert(1, text));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Replace(0, 1, text));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.Apply(TextOperation.Insert(2, text)));
        Assert.ThrowsAny<ArgumentException>(() => a.Document.TryApply(TextOperation.Insert(0, text), a.Document.TextRope));
        server.DeliverAll();

        Assert.Equal(received, server.Received.Count);
        Assert.Equal("ab", a.Document.Text);
        Assert.Equal(ClientSyncState.Synchronized, a.Document.SyncState);
        a.Document.Insert(2, "\U0001F600");
        server.DeliverAll();
        Assert.Equal("ab\U0001F600", server.Text);
    }

    [Fact]
    public void TryApplyRefusesAnEditComputedOnATextThatChangedSince()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "abc");
        server.DeliverAll();
        var read = b.Document.TextRope;
        a.Document.Insert(0, "x");
        server.DeliverAll();                  // b's text changes under the edit it is computing
        Assert.False(b.Document.TryApply(TextOperation.Insert(3, "!"), read));
        Assert.Equal("xabc", b.Document.Text);
        Assert.True(b.Document.TryApply(TextOperation.Insert(4, "!"), b.Document.TextRope));
        server.DeliverAll();
        Assert.Equal("xabc!", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void ChangedEventsDescribeEachChangeOfTheLocalText()
    {
        var (server, a, b) = TwoPeers();
        var events = new List<DocumentChangedEventArgs>();
        a.Document.Changed += (_, e) => events.Add(e);
        a.Document.Insert(0, "mine");
        b.Document.Insert(0, "theirs");
        server.RunUntilQuiet();

        Assert.Equal(2, events.Count);
        Assert.True(events[0].IsLocal);
        Assert.Null(events[0].ClientId);
        Assert.False(events[1].IsLocal);
        Assert.Equal(b.ClientId, events[1].ClientId);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void AHandlerMayEditTheDocumentAndItsEventFollowsInOrder()
    {
        var (server, a, b) = TwoPeers();
        var once = false;
        a.Document.Changed += (_, e) =>
        {
            if (!e.IsLocal && !once)
            {
                once = true;
                a.Document.Insert(0, ">");
            }
        };
        b.Document.Insert(0, "x");
        server.RunUntilQuiet();
        Assert.Equal(">x", server.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void ReadOnlyDocumentRefusesLocalEdits()
    {
        var server = new DummyServer(seed: 2);
        server.ReadOnlyClients.Add("reader");
        var doc = server.AddPeer("reader").Open(DocId);
        Assert.True(doc.ReadOnly);
        Assert.Throws<InvalidOperationException>(() => doc.Insert(0, "x"));
        Assert.Equal("", doc.Text);
    }

    [Fact]
    public void SelectionIsSentInTheServersCoordinates()
    {
        var (server, a, _) = TwoPeers();
        a.Document.Insert(0, "hello");
        server.DeliverAll();
        a.Document.Insert(0, "XX");           // unconfirmed: the server's text is still "hello"
        var sent = a.Document.SetSelectionAsync([new SelectionRange { Anchor = 7, Head = 3 }]);
        Assert.True(sent.IsCompletedSuccessfully);
        var request = Assert.Single(a.PresenceSent);
        Assert.Equal(1, request.Version);
        var range = Assert.Single(request.Selection!);
        Assert.Equal(5, range.Anchor);
        Assert.Equal(1, range.Head);
    }

    [Fact]
    public void PresenceOfOthersIsTrackedAndALeaverIsRemoved()
    {
        var (_, a, _) = TwoPeers();
        var seen = new List<PresenceMessage>();
        a.Document.PresenceChanged += (_, p) => seen.Add(p);
        a.Document.OnPresence(new PresenceMessage { DocId = DocId, ClientId = "other", Version = 0, Selection = [new SelectionRange { Anchor = 0, Head = 0 }] });
        a.Document.OnPresence(new PresenceMessage { DocId = DocId, ClientId = a.ClientId, Version = 0, Selection = [] });
        Assert.True(a.Document.Presence.ContainsKey("other"));
        Assert.False(a.Document.Presence.ContainsKey(a.ClientId));
        a.Document.OnPresence(new PresenceMessage { DocId = DocId, ClientId = "other", Version = 0, Selection = null });
        Assert.Empty(a.Document.Presence);
        Assert.Equal(2, seen.Count);
    }

    [Fact]
    public void AResumeAnsweredWithMovedToRaisesResetRenamed()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "kept");
        server.DeliverAll();
        a.Disconnect();
        server.MovedTo = "new-name";
        a.Reconnect();
        server.DeliverAll();

        var reset = Assert.Single(a.ResetMessages);
        Assert.Equal("renamed", reset.Reason);
        Assert.Equal("new-name", reset.MovedTo);
        Assert.Equal(DocId, reset.DocId);
        Assert.Equal(ConnectionState.Connected, a.Document.ConnectionState);
        Assert.Empty(b.ResetMessages);
    }

    [Fact]
    public void AResetHandlerThatDisposesTheRenamedDocumentLeavesTheNewEmptyOne()
    {
        var (server, a, _) = TwoPeers();
        a.Document.Insert(0, "kept");
        server.DeliverAll();
        a.Disconnect();
        a.Document.Insert(4, "!");
        server.MovedTo = "new-name";
        ValueTask disposing = default;
        a.Document.Reset += (_, e) => disposing = a.Document.DisposeAsync();
        a.Reconnect();
        server.DeliverAll();

        Assert.True(disposing.IsCompletedSuccessfully);
        Assert.Equal([DocId], a.Left);
        Assert.Equal(ConnectionState.Disconnected, a.Document.ConnectionState);
        // The unconfirmed edit was not sent to the document made anew under the old id.
        Assert.Equal("kept", server.Text);
    }

    [Fact]
    public void AFirstJoinAnsweredWithMovedToRaisesNoReset()
    {
        var server = new DummyServer(seed: 3) { MovedTo = "new-name" };
        var a = server.AddPeer("client-a");
        a.Open(DocId);
        a.Disconnect();
        server.MovedTo = null;
        a.Reconnect();
        server.DeliverAll();
        Assert.Empty(a.ResetMessages);
    }

    [Fact]
    public void AVersionMissingForTheGapTimeoutIsFetchedByAResume()
    {
        var (server, a, b) = TwoPeers();
        b.Document.Insert(0, "1");
        server.Deliver("submit", b);
        server.Deliver("submit-result", b);
        b.Document.Insert(1, "2");
        server.Deliver("submit", b);
        server.Lose("op", a);                 // version 1 never reaches a
        server.Deliver("op", a);              // version 2 waits for it
        Assert.Equal(0, a.Document.Version);
        Assert.Equal(ConnectionState.Connected, a.Document.ConnectionState);
        var joins = a.Joins.Count;

        server.Deliver("timer");              // the gap timer: resume from version 0
        Assert.Equal(joins + 1, a.Joins.Count);
        Assert.Equal(0, a.Joins[^1].SinceVersion);
        server.DeliverAll();
        Assert.Equal("12", a.Document.Text);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void AGapFilledInTimeCancelsTheResume()
    {
        var (server, a, b) = TwoPeers();
        b.Document.Insert(0, "1");
        server.Deliver("submit", b);
        server.Deliver("submit-result", b);
        b.Document.Insert(1, "2");
        server.Deliver("submit", b);
        server.Deliver("op", a);
        server.Deliver("op", a);
        Assert.Equal(2, a.Document.Version);
        var joins = a.Joins.Count;
        server.DeliverAll();
        Assert.Equal(joins, a.Joins.Count);
        AssertConverged(server, a, b);
    }

    [Fact]
    public void SelectionsSentInQuickSuccessionAreThrottled()
    {
        var (server, a, _) = TwoPeers();
        a.Document.Insert(0, "hello");
        server.DeliverAll();
        a.Document.SetSelectionAsync([new SelectionRange { Anchor = 1, Head = 1 }]);
        a.Document.SetSelectionAsync([new SelectionRange { Anchor = 2, Head = 2 }]);
        a.Document.SetSelectionAsync([new SelectionRange { Anchor = 3, Head = 3 }]);
        var first = Assert.Single(a.PresenceSent);
        Assert.Equal(1, first.Selection![0].Anchor);

        server.Deliver("timer");              // the presence interval is over: the latest selection goes
        Assert.Equal(2, a.PresenceSent.Count);
        Assert.Equal(3, a.PresenceSent[1].Selection![0].Anchor);
    }

    [Fact]
    public void AnotherMembersSelectionMovesWithLaterChangesOfTheText()
    {
        var (server, a, b) = TwoPeers();
        a.Document.Insert(0, "hello");
        server.DeliverAll();
        var seen = new List<PresenceMessage>();
        a.Document.PresenceChanged += (_, p) => seen.Add(p);
        a.Document.OnPresence(new PresenceMessage { DocId = DocId, ClientId = "other", Version = 1, Selection = [new SelectionRange { Anchor = 2, Head = 4 }] });
        Assert.Equal(2, a.Document.Presence["other"].Selection![0].Anchor);

        b.Document.Insert(0, "XY");
        server.DeliverAll();
        var moved = a.Document.Presence["other"].Selection![0];
        Assert.Equal((4, 6), (moved.Anchor, moved.Head));
        a.Document.Insert(0, "!");
        moved = a.Document.Presence["other"].Selection![0];
        Assert.Equal((5, 7), (moved.Anchor, moved.Head));
        Assert.Equal(3, seen.Count);
        server.DeliverAll();
        AssertConverged(server, a, b);
    }

    [Fact]
    public void PresenceMadeAtAVersionNotYetReachedWaitsForIt()
    {
        var (server, a, b) = TwoPeers();
        b.Document.Insert(0, "abc");
        server.Deliver("submit", b);
        a.Document.OnPresence(new PresenceMessage { DocId = DocId, ClientId = b.ClientId, Version = 1, Selection = [new SelectionRange { Anchor = 3, Head = 3 }] });
        Assert.False(a.Document.Presence.ContainsKey(b.ClientId));
        server.DeliverAll();
        Assert.Equal(3, a.Document.Presence[b.ClientId].Selection![0].Head);
    }
}
