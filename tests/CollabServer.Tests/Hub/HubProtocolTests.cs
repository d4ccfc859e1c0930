using Collab;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;

namespace CollabServer.Tests.Hub;

/// <summary>The hub's behaviour for well-formed requests, over both wire protocols.</summary>
public sealed class HubProtocolTests() : HostedTest
{
    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task JoinCreatesAnEmptyDocumentAndSubmitAppliesAndBroadcasts(WireProtocol protocol)
    {
        var alice = await Host.ConnectAsync(protocol);
        var bob = await Host.ConnectAsync(protocol);
        var bobOps = bob.Collect<OpMessage>("Op");

        var joined = await alice.JoinAsync("doc-1", "alice");
        Assert.Equal(0, joined.Version);
        Assert.Equal("", joined.Text);
        Assert.False(joined.ReadOnly);
        Assert.Null(joined.Redirect);
        await bob.JoinAsync("doc-1", "bob");

        var result = await alice.SubmitAsync("doc-1", 0, ["hello world"], 1);
        Assert.Equal(1, result.Version);
        var op = await bobOps.NextAsync();
        Assert.Equal(("doc-1", 1, "alice", 1L), (op.DocId, op.Version, op.ClientId, op.OpId));
        Assert.Equal("[\"hello world\"]", op.Op.ToString());

        // Bob edits against version 1 while Alice edits against version 1 too: both transform.
        var aliceOps = alice.Collect<OpMessage>("Op");
        var r2 = await alice.SubmitAsync("doc-1", 1, [5, " brave"], 2);
        var r3 = await bob.SubmitAsync("doc-1", 1, [6, "W", -1], 1);
        Assert.Equal((2, 3), (r2.Version, r3.Version));
        var transformed = await aliceOps.NextAsync();
        Assert.Equal(3, transformed.Version);
        Assert.Equal("[12,\"W\",-1]", transformed.Op.ToString());
        Assert.Equal((3, "hello brave World"), await Host.GetDocAsync("doc-1"));
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task ResubmittingTheSameOpIdReturnsTheOriginalVersionAndChangesNothing(WireProtocol protocol)
    {
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync("dedupe", "client-a");
        Assert.Equal(1, (await c.SubmitAsync("dedupe", 0, ["abc"], 7)).Version);
        Assert.Equal(2, (await c.SubmitAsync("dedupe", 1, ["x"], 8)).Version);
        Assert.Equal(1, (await c.SubmitAsync("dedupe", 0, ["abc"], 7)).Version);
        Assert.Equal((2, "xabc"), await Host.GetDocAsync("dedupe"));
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task JoinWithSinceVersionReturnsTheMissedOps(WireProtocol protocol)
    {
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync("resume", "w");
        for (var i = 0; i < 5; i++)
        {
            await c.SubmitAsync("resume", i, [i.ToString()], i + 1);
        }
        var other = await Host.ConnectAsync(protocol);
        var resumed = await other.JoinAsync("resume", "r", sinceVersion: 2);
        Assert.Equal(5, resumed.Version);
        Assert.Null(resumed.Text);
        Assert.Equal([3, 4, 5], resumed.Ops!.Select(o => o.Version));
        Assert.All(resumed.Ops!, o => Assert.Equal("w", o.ClientId));

        var fresh = await other.JoinAsync("resume", "r2");
        Assert.Equal("43210", fresh.Text);
        Assert.Null(fresh.Ops);

        // A version the server never had: the whole text.
        var ahead = await other.JoinAsync("resume", "r3", sinceVersion: 99);
        Assert.Equal("43210", ahead.Text);
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task PresenceIsBroadcastMappedAndClearedOnDisconnect(WireProtocol protocol)
    {
        var alice = await Host.ConnectAsync(protocol);
        var bob = await Host.ConnectAsync(protocol);
        var bobPresence = bob.Collect<PresenceMessage>("Presence");
        await bob.InvokeAsync<JoinResult>("Join", new Dictionary<string, object?>
        {
            ["docId"] = "presence",
            ["clientId"] = "bob",
            ["user"] = new Dictionary<string, object?> { ["name"] = "Bob", ["color"] = "#00f" },
        }).WaitAsync(Wire.Timeout);
        var aliceJoin = await alice.InvokeAsync<JoinResult>("Join", new Dictionary<string, object?>
        {
            ["docId"] = "presence",
            ["clientId"] = "alice",
            ["user"] = new Dictionary<string, object?> { ["name"] = "Alice", ["color"] = "#f00" },
        }).WaitAsync(Wire.Timeout);
        Assert.Equal("Bob", Assert.Single(aliceJoin.Presence).User!.Name);
        var joined = await bobPresence.NextAsync();
        Assert.Equal(("alice", "Alice"), (joined.ClientId, joined.User!.Name));
        Assert.NotNull(joined.Selection);
        Assert.Empty(joined.Selection);

        await alice.SubmitAsync("presence", 0, ["hello"], 1);
        // A selection made at version 0 is mapped through "hello" to version 1.
        await alice.InvokeAsync("SetPresence", new Dictionary<string, object?>
        {
            ["docId"] = "presence",
            ["version"] = 1,
            ["selection"] = new[] { new Dictionary<string, object?> { ["anchor"] = 1, ["head"] = 3 } },
        }).WaitAsync(Wire.Timeout);
        var moved = await bobPresence.NextAsync();
        Assert.Equal((1, 1, 3), (moved.Version, moved.Selection![0].Anchor, moved.Selection[0].Head));

        await alice.StopAsync();
        var left = await bobPresence.NextAsync();
        Assert.Equal("alice", left.ClientId);
        Assert.Null(left.Selection);
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task AReaderGetsEveryOpOnceInOrderWhenManyAreQueuedAtOnce(WireProtocol protocol)
    {
        // Several writers at once make group commits of several ops, which reach a member's
        // outbox together and go out in one frame.
        var docId = "burst-" + protocol;
        var reader = await Host.ConnectAsync(protocol);
        var received = reader.Collect<OpMessage>("Op");
        await reader.JoinAsync(docId, "reader");
        var writers = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Host.ConnectAsync(protocol)));
        await Task.WhenAll(writers.Select(async (w, i) =>
        {
            var version = (await w.JoinAsync(docId, $"w{i}")).Version;
            for (var n = 1; n <= 60; n++)
            {
                version = (await w.SubmitAsync(docId, version, [$"{i}"], n)).Version;
            }
        }));
        var text = "";
        for (var expected = 1; expected <= 300; expected++)
        {
            var op = await received.NextAsync();
            Assert.Equal(expected, op.Version);
            text = op.Op.Apply(text);
        }
        Assert.False(received.Reader.TryRead(out _));
        Assert.Equal((300, text), await Host.GetDocAsync(docId));
    }

    [Fact]
    public async Task ResumingFromBeforeTheMemoryWindowWhileWritersCommitGivesEveryOpOnce()
    {
        // With a window of 4 ops, a resume from further back reads the log, which first completes
        // the commit in flight: the result's ops and the broadcasts after it must still meet exactly.
        await using var host = new TestHost(settings: new Dictionary<string, string?> { ["Collab:OpWindow"] = "4" });
        try
        {
            var writers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => host.ConnectAsync()));
            using var stop = new CancellationTokenSource();
            var writing = Task.WhenAll(writers.Select(async (w, i) =>
            {
                var version = (await w.JoinAsync("window", $"w{i}")).Version;
                for (var n = 1; n <= 400 && !stop.IsCancellationRequested; n++)
                {
                    version = (await w.SubmitAsync("window", version, ["x"], n)).Version;
                }
            }));
            for (var round = 0; round < 20; round++)
            {
                await Task.Delay(10);
                var reader = await host.ConnectAsync();
                var live = reader.Collect<OpMessage>("Op");
                var joined = await reader.JoinAsync("window", "reader", sinceVersion: 0);
                Assert.NotNull(joined.Ops);
                Assert.Equal(Enumerable.Range(1, joined.Version), joined.Ops!.Select(o => o.Version));
                // The next broadcast, if any, continues right after the result's version.
                if (await live.Reader.WaitToReadAsync().AsTask().WaitAsync(TimeSpan.FromMilliseconds(500)).ContinueWith(t => t.IsCompletedSuccessfully && t.Result))
                {
                    live.Reader.TryRead(out var next);
                    Assert.Equal(joined.Version + 1, next!.Version);
                }
                await reader.DisposeAsync();
            }
            stop.Cancel();
            await writing.WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await host.DisposeAsync();
            host.DeleteData();
        }
    }

    [Fact]
    public async Task OneConnectionCanJoinManyDocuments()
    {
        var c = await Host.ConnectAsync();
        await c.JoinAsync("many-a", "c");
        await c.JoinAsync("many-b", "c");
        await c.SubmitAsync("many-a", 0, ["A"], 1);
        await c.SubmitAsync("many-b", 0, ["B"], 2);
        Assert.Equal((1, "A"), await Host.GetDocAsync("many-a"));
        Assert.Equal((1, "B"), await Host.GetDocAsync("many-b"));
        await c.InvokeAsync("Leave", "many-a").WaitAsync(Wire.Timeout);
        await Wire.AssertErrorAsync(ErrorCodes.NotJoined, () => c.SubmitAsync("many-a", 1, ["x"], 3));
        await c.SubmitAsync("many-b", 1, ["x"], 4);
    }
}
