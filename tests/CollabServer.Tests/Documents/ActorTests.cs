using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Cluster;
using CollabServer.Diagnostics;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Identity;
using CollabServer.Storage;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Protocol;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CollabServer.Tests.Documents;

/// <summary>
/// The document actor on its own: a registry over <see cref="InMemoryStorage"/> and members that
/// record what they are sent. No web host, no disk, no sockets.
/// </summary>
public sealed class ActorTests : IAsyncDisposable
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private readonly InMemoryStorage _storage = new();
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private DocumentRegistry _registry;

    public ActorTests() => _registry = NewRegistry();

    private DocumentRegistry NewRegistry(ICommitLog? log = null)
    {
        var options = Options.Create(new CollabOptions { DataDir = "unused", IdleTimeout = TimeSpan.FromMinutes(10) });
        return new DocumentRegistry(options, NullLogger<DocumentActor>.Instance, new CollabMetrics(_meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()), _storage, log ?? new DocumentFileLog(), [], new SingleNodeOwnership(options));
    }

    private async Task<T> Ask<T>(string docId, Func<Request<T>> request) => await _registry.AskAsync(docId, request).WaitAsync(s_timeout);

    private async Task<(FakeMember Member, JoinResult Joined)> JoinAsync(string docId, string clientId)
    {
        var member = new FakeMember(clientId);
        var joined = await Ask(docId, () => new JoinDocument(member, new JoinRequest { DocId = docId, ClientId = clientId }, readOnly: false));
        return (member, joined);
    }

    private static (int, string)? Plain((int Version, CollabServer.Documents.Types.DocContent Content)? read) =>
        read is { } r ? (r.Version, r.Content.PlainText()) : null;

    private Task<SubmitResult> SubmitAsync(FakeMember member, string docId, int baseVersion, TextOperation op, long opId) =>
        _registry.SubmitAsync(member, new SubmitRequest { DocId = docId, BaseVersion = baseVersion, Op = op, OpId = opId }).WaitAsync(s_timeout);

    [Fact]
    public async Task AnOpIsCommittedThenAcknowledgedAndBroadcastToTheOtherMembersOnly()
    {
        var (ada, _) = await JoinAsync("doc", "ada");
        var (bob, _) = await JoinAsync("doc", "bob");

        Assert.Equal(1, (await SubmitAsync(ada, "doc", 0, TextOperation.Insert(0, "hello"), 1)).Version);

        var op = Assert.Single(bob.Ops);
        Assert.Equal((1, "ada", 1L), (op.Version, op.ClientId, op.OpId));
        Assert.Empty(ada.Ops);
        Assert.Equal((1, "hello"), Plain(await Ask("doc", () => new ReadText())));
        Assert.Single(_storage.OpenExisting("doc")!.ReadOps(0, int.MaxValue));
    }

    [Fact]
    public async Task AnOpBasedOnAnOlderVersionIsTransformedAndTheSameOpSentTwiceIsCommittedOnce()
    {
        var (ada, _) = await JoinAsync("doc", "ada");
        var (bob, _) = await JoinAsync("doc", "bob");
        await SubmitAsync(ada, "doc", 0, TextOperation.Insert(0, "world"), 1);

        // Bob typed at the start before he saw Ada's op: it goes before hers, at version 2.
        Assert.Equal(2, (await SubmitAsync(bob, "doc", 0, TextOperation.Insert(0, "hello "), 7)).Version);
        Assert.Equal(2, (await SubmitAsync(bob, "doc", 0, TextOperation.Insert(0, "hello "), 7)).Version);

        Assert.Equal((2, "hello world"), Plain(await Ask("doc", () => new ReadText())));
        Assert.Equal(2, _storage.OpenExisting("doc")!.ReadOps(0, int.MaxValue).Count);
    }

    [Fact]
    public async Task AFailedCommitIsUnavailableChangesNothingAndTheSameOpLandsOnceStorageRecovers()
    {
        var (ada, _) = await JoinAsync("doc", "ada");
        var (bob, _) = await JoinAsync("doc", "bob");
        await SubmitAsync(ada, "doc", 0, TextOperation.Insert(0, "kept"), 1);

        _storage.Fail("doc", new IOException("the disk is full"));
        var refused = await Assert.ThrowsAsync<CollabError>(() => SubmitAsync(ada, "doc", 1, TextOperation.Insert(4, "!"), 2));
        Assert.Equal(ErrorCodes.Unavailable, refused.Code);
        Assert.Equal((1, "kept"), Plain(await Ask("doc", () => new ReadText())));
        Assert.Single(bob.Ops); // nothing uncommitted was broadcast

        _storage.Fail("doc", null);
        Assert.Equal(2, (await SubmitAsync(ada, "doc", 1, TextOperation.Insert(4, "!"), 2)).Version);
        Assert.Equal((2, "kept!"), Plain(await Ask("doc", () => new ReadText())));
    }

    [Fact]
    public async Task ADocumentOutlivesItsActorAndItsRegistry()
    {
        Assert.Equal(1, await Ask("doc", () => new ReplaceText("first")));
        Assert.Equal(2, await Ask("doc", () => new ReplaceText("second")));
        await _registry.DisposeAsync(); // every actor stops, writing a snapshot

        _registry = NewRegistry();
        Assert.Equal((2, "second"), Plain(await Ask("doc", () => new ReadText())));
        var (ada, joined) = await JoinAsync("doc", "ada");
        Assert.Equal((2, "second"), (joined.Version, joined.Text));
        Assert.Equal(3, (await SubmitAsync(ada, "doc", 2, TextOperation.Insert(6, "!"), 1)).Version);
    }

    [Fact]
    public async Task DeletingADocumentResetsItsMembersAndRemovesItsStorage()
    {
        var (ada, _) = await JoinAsync("doc", "ada");
        await SubmitAsync(ada, "doc", 0, TextOperation.Insert(0, "gone soon"), 1);

        Assert.True(await Ask("doc", () => new DeleteDocument()));

        Assert.Equal("deleted", Assert.Single(ada.Resets).Reason);
        Assert.False(_storage.Exists("doc"));
        Assert.Null(Plain(await Ask("doc", () => new ReadText())));
        await Assert.ThrowsAsync<CollabError>(() => SubmitAsync(ada, "doc", 1, TextOperation.Insert(0, "x"), 2)); // not a member any more
    }

    /// <summary>A registry whose commits wait for the test's word (a <see cref="HeldCommitLog"/>), Ada joined, and her first op's commit waiting for it.</summary>
    private async Task<(HeldCommitLog Log, FakeMember Ada, Task<SubmitResult> First)> CommitHeldByTheLogAsync()
    {
        var log = new HeldCommitLog();
        await _registry.DisposeAsync();
        _registry = NewRegistry(log);
        var (ada, _) = await JoinAsync("doc", "ada");
        var first = SubmitAsync(ada, "doc", 0, TextOperation.Insert(0, "hello"), 1);
        await Collab.Testing.Eventually.TrueAsync(() => Task.FromResult(log.Waiting == 1), "the first op's commit waits for the log");
        return (log, ada, first);
    }

    [Fact]
    public async Task AReplaceThatArrivesWhileACommitIsInFlightWaitsForItAndKeepsItsPlaceInLine()
    {
        var (log, ada, first) = await CommitHeldByTheLogAsync();

        // A REST write needs the committed text, so it waits for that commit; what comes after it waits behind it.
        var replace = _registry.AskAsync("doc", () => new ReplaceText("hello world"));
        var after = SubmitAsync(ada, "doc", 1, TextOperation.Insert(0, ">"), 2);
        var read = _registry.AskAsync("doc", () => new ReadText());
        Assert.False(replace.IsCompleted || after.IsCompleted || read.IsCompleted);

        // Each commit in turn: the loop took every one of them while the replace waited.
        while (!(replace.IsCompleted && after.IsCompleted))
        {
            log.Release();
            await Task.WhenAny(Task.WhenAll(replace, after), Task.Delay(10));
        }
        Assert.Equal(1, (await first).Version);
        Assert.Equal(2, await replace.WaitAsync(s_timeout));
        Assert.Equal(3, (await after).Version);
        Assert.Equal((1, "hello"), Plain(await read.WaitAsync(s_timeout))); // read in line, after the first op and before the replace committed
        Assert.Equal((3, ">hello world"), Plain(await Ask("doc", () => new ReadText())));
        Assert.Equal([1, 2, 3], log.Appended.SelectMany(b => b.Ops).Select(o => o.Version));
    }

    [Fact]
    public async Task ADeleteThatArrivesWhileACommitIsInFlightWaitsForItThenDeletes()
    {
        var (log, ada, first) = await CommitHeldByTheLogAsync();

        var delete = _registry.AskAsync("doc", () => new DeleteDocument());
        Assert.False(delete.IsCompleted);

        log.Release();
        Assert.Equal(1, (await first).Version); // acknowledged: it was committed before the delete
        Assert.True(await delete.WaitAsync(s_timeout));
        Assert.Equal("deleted", Assert.Single(ada.Resets).Reason);
        Assert.False(_storage.Exists("doc"));
    }

    public async ValueTask DisposeAsync()
    {
        await _registry.DisposeAsync();
        await _meters.DisposeAsync();
    }

    /// <summary>A member that records the ops and resets it is sent.</summary>
    private sealed class FakeMember(string clientId) : IMemberConnection
    {
        private readonly List<HubMessage> _sent = [];

        public string ConnectionId { get; } = $"conn-{clientId}-{Guid.NewGuid():N}";

        public ConnectionIdentity Identity => ConnectionIdentity.Anonymous;

        public bool IsClosed => false;

        public bool TryTakeCreation() => true;

        public void Send(SerializedHubMessage message)
        {
            lock (_sent)
            {
                _sent.Add(message.Message!);
            }
        }

        public List<OpMessage> Ops => Arguments<OpMessage>(HubNames.Op);

        public List<ResetMessage> Resets => Arguments<ResetMessage>(HubNames.Reset);

        private List<T> Arguments<T>(string target)
        {
            lock (_sent)
            {
                return [.. _sent.OfType<InvocationMessage>().Where(m => m.Target == target).Select(m => (T)m.Arguments[0]!)];
            }
        }
    }
}
