using Collab.Client.Internal;
using Collab.Messages;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging.Abstractions;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// What <see cref="CollabDocument"/>'s shell does around the engine's commands: following
/// redirects, going back to its first node, and starting a new session when a call is lost on a
/// connection that stays up. Nodes answer from a script; waits end at once.
/// </summary>
public sealed class ShellTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RedirectsInACircleGoBackToTheFirstNodeAfterFive()
    {
        var log = new List<string>();
        var nodes = new Dictionary<string, ScriptedNode>();
        var home = nodes["a"] = new ScriptedNode("a", log, nodes, joins => joins == 1 ? Redirect("b") : Joined());
        nodes["b"] = new ScriptedNode("b", log, nodes, _ => Redirect("c"));
        nodes["c"] = new ScriptedNode("c", log, nodes, _ => Redirect("b"));
        await using var doc = Create(home);

        await doc.JoinInitialAsync(CancellationToken.None).WaitAsync(s_timeout);

        Assert.Equal(
            ["join a", "to b", "join b", "to c", "join c", "to b", "join b", "to c", "join c", "to b", "join b", "home", "join a"],
            log);
        Assert.Equal(ConnectionState.Connected, doc.ConnectionState);
    }

    [Fact]
    public async Task ARedirectThatCannotBeFollowedJoinsAgainWhereItIs()
    {
        var log = new List<string>();
        var nodes = new Dictionary<string, ScriptedNode>();
        var a = nodes["a"] = new ScriptedNode("a", log, nodes, joins => joins == 1 ? Redirect("nowhere") : Joined());
        await using var doc = Create(a);

        await doc.JoinInitialAsync(CancellationToken.None).WaitAsync(s_timeout);

        Assert.Equal(["join a", "to nowhere (refused)", "join a"], log);
        Assert.Equal(ConnectionState.Connected, doc.ConnectionState);
    }

    [Fact]
    public async Task AJoinLostWithoutACodeOnAConnectionThatStaysUpIsSentAgain()
    {
        var log = new List<string>();
        var a = new ScriptedNode("a", log, [], joins => joins == 1 ? Task.FromException<JoinResult>(new IOException("lost")) : Joined());
        await using var doc = Create(a);

        await doc.JoinInitialAsync(CancellationToken.None).WaitAsync(s_timeout);

        Assert.Equal(["join a", "join a"], log);
        Assert.Equal(ConnectionState.Connected, doc.ConnectionState);
    }

    [Fact]
    public async Task AJoinRefusedForNowIsSentAgainByTheRetryTimer()
    {
        var log = new List<string>();
        var a = new ScriptedNode("a", log, [], joins => joins == 1 ? Task.FromException<JoinResult>(new HubException($"{ErrorCodes.Unavailable}: busy")) : Joined());
        await using var doc = Create(a);

        await doc.JoinInitialAsync(CancellationToken.None).WaitAsync(s_timeout);

        Assert.Equal(["join a", "retry timer", "join a"], log);
    }

    [Fact]
    public async Task AJoinRefusedForGoodFailsTheOpenAndDisconnects()
    {
        var log = new List<string>();
        var a = new ScriptedNode("a", log, [], _ => Task.FromException<JoinResult>(new HubException($"{ErrorCodes.Forbidden}: not yours")));
        await using var doc = Create(a);
        var errors = new List<string>();
        doc.Error += (_, e) => errors.Add(e.Error.Code);

        var refused = await Assert.ThrowsAsync<CollabException>(() => doc.JoinInitialAsync(CancellationToken.None).WaitAsync(s_timeout));

        Assert.Equal(ErrorCodes.Forbidden, refused.Code);
        Assert.Equal([ErrorCodes.Forbidden], errors);
        Assert.Equal(ConnectionState.Disconnected, doc.ConnectionState);
        Assert.Equal(["join a"], log);
    }

    private static CollabDocument Create(ScriptedNode node)
    {
        long opIds = 0;
        return new CollabDocument("doc", "me", null, node, () => ++opIds, NullLogger.Instance, delay: (delay, _) =>
        {
            if (delay != TimeSpan.FromSeconds(1))
            {
                // Which timer the engine set, told by the delay it asks for (no time passes here): its
                // first retry asks for the minimum retry delay, jittered into that delay's upper half.
                var retry = TimeSpan.FromMilliseconds(SyncEngine.MinRetryDelayMs);
                node.Log.Add(delay >= retry / 2 && delay <= retry ? "retry timer" : $"timer of {delay}");
            }
            return Task.CompletedTask;
        });
    }

    private static Task<JoinResult> Redirect(string node) => Task.FromResult(new JoinResult { DocId = "doc", Redirect = node });

    private static Task<JoinResult> Joined() => Task.FromResult(new JoinResult { DocId = "doc", Version = 0, Text = "" });

    /// <summary>A connected node whose Join answers from <c>join</c> (given how many joins it has had), and which knows its fellow nodes by name.</summary>
    private sealed class ScriptedNode(string name, List<string> log, Dictionary<string, ScriptedNode> nodes, Func<int, Task<JoinResult>> join) : IDocumentTransport
    {
        private int _joins;

        public List<string> Log => log;

        public ConnectionState State => ConnectionState.Connected;

        public Task<JoinResult> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
        {
            log.Add($"join {name}");
            return join(++_joins);
        }

        public Task<SubmitResult> SubmitAsync(SubmitRequest request, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task SetPresenceAsync(PresenceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task LeaveAsync(string docId, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IDocumentTransport> RedirectAsync(CollabDocument document, string baseUrl, CancellationToken cancellationToken)
        {
            if (!nodes.TryGetValue(baseUrl, out var node))
            {
                log.Add($"to {baseUrl} (refused)");
                return Task.FromException<IDocumentTransport>(new CollabException(ErrorCodes.Unavailable, $"'{baseUrl}' is not a node."));
            }
            log.Add($"to {baseUrl}");
            return Task.FromResult<IDocumentTransport>(node);
        }

        public Task<IDocumentTransport> ReturnHomeAsync(CollabDocument document, CancellationToken cancellationToken)
        {
            log.Add("home");
            return Task.FromResult<IDocumentTransport>(nodes["a"]);
        }

        public void Detach(CollabDocument document)
        {
        }

        public void ReconnectNow()
        {
        }
    }
}
