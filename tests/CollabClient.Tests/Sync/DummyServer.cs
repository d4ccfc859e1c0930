using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging.Abstractions;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// An in-memory server and network for driving real <see cref="CollabDocument"/>s, one thread,
/// no clock. The server sequences like the real one (an incoming op is transformed over the ops
/// since its base, winning ties; (clientId, opId) is deduplicated; ops go to every member but
/// the sender). The network is a bag of pending deliveries that <see cref="Step"/> picks from at
/// random with a fixed seed, so any message can overtake any other, except that the server takes
/// the requests of one connection in the order they were sent, as SignalR runs a connection's
/// invocations one at a time; a disconnect drops what a connection still had in transit, in both
/// directions.
/// </summary>
/// <remarks>
/// Deterministic because the document awaits with ConfigureAwait(false) and the tasks here
/// complete inline (no RunContinuationsAsynchronously, and no SynchronizationContext while a
/// delivery runs: xunit's would make the runtime post continuations to the thread pool), so a
/// delivery runs the document's continuation before <see cref="Step"/> returns.
/// <see cref="CheckThread"/> catches any code path that escapes to another thread.
/// </remarks>
internal sealed class DummyServer
{
    private readonly Random _rng;
    private readonly List<Delivery> _bag = [];
    private readonly int _threadId = Environment.CurrentManagedThreadId;
    private readonly List<OpMessage> _history = [];
    private readonly Dictionary<(string ClientId, long OpId), int> _committed = [];
    // Connections that joined: (peer, epoch). A closed connection stays a member until the
    // server notices (a "server-notices-close" delivery), as a real server learns late.
    private readonly HashSet<(Peer Peer, int Epoch)> _members = [];
    private readonly Dictionary<string, string> _rejectNext = [];
    private readonly List<string> _texts = [""];
    private Rope _text = Rope.Empty;

    public DummyServer(int seed) => _rng = new Random(seed);

    /// <summary>The text at <paramref name="version"/>.</summary>
    public string TextAt(int version) => _texts[version];

    /// <summary>
    /// Checks that every peer's idea of the server's text matches the server's at that peer's
    /// version; a peer that settled an op holds that op too, until its whole-text join (EngineState.Settled).
    /// </summary>
    public void CheckPeers(string when)
    {
        foreach (var peer in Peers)
        {
            var doc = peer.Document;
            if (doc.Settled)
            {
                continue;
            }
            var version = doc.Version;
            if (version > Version || doc.ServerText.ToString() != _texts[version])
            {
                throw new InvalidOperationException($"{when}: {peer.ClientId} holds a wrong server text for version {version} (server at {Version}): '{doc.ServerText}' vs '{(version <= Version ? _texts[version] : "?")}'");
            }
        }
    }

    public string Text => _text.ToString();

    public int Version => _history.Count;

    public IReadOnlyList<OpMessage> History => _history;

    public List<Peer> Peers { get; } = [];

    public Random Random => _rng;

    /// <summary>When false, a resume gets the whole text instead of the ops it missed.</summary>
    public bool KeepsHistory { get; set; } = true;

    /// <summary>When set, a join that resumes (with sinceVersion) is answered with this <c>movedTo</c>, as for a document renamed meanwhile.</summary>
    public string? MovedTo { get; set; }

    /// <summary>Clients that join read-only.</summary>
    public HashSet<string> ReadOnlyClients { get; } = [];

    /// <summary>Deliveries in transit.</summary>
    public int InTransit => _bag.Count;

    /// <summary>Every submit request the server received (before dedupe), for checking op ids.</summary>
    public List<(string ClientId, SubmitRequest Request)> Received { get; } = [];

    public Peer AddPeer(string clientId)
    {
        var peer = new Peer(this, clientId);
        Peers.Add(peer);
        return peer;
    }

    /// <summary>The next submit from <paramref name="clientId"/> fails with <paramref name="code"/>, changing nothing.</summary>
    public void RejectNextSubmit(string clientId, string code) => _rejectNext[clientId] = code;

    /// <summary>Delivers one message in transit, chosen at random; false when nothing is in transit.</summary>
    public bool Step()
    {
        CheckThread();
        if (_bag.Count == 0)
        {
            return false;
        }
        var index = _rng.Next(_bag.Count);
        if (_bag[index] is { ToServer: true } request)
        {
            // The oldest request of that connection goes first (the bag keeps the order of posting).
            index = _bag.FindIndex(d => d.ToServer && d.Peer == request.Peer && d.Epoch == request.Epoch);
        }
        var delivery = _bag[index];
        _bag.RemoveAt(index);
        Inline(delivery.Run);
        return true;
    }

    /// <summary>Delivers the oldest message in transit whose name matches, in order of sending.</summary>
    public void Deliver(string name, Peer? peer = null)
    {
        CheckThread();
        var index = _bag.FindIndex(d => d.Name == name && (peer is null || d.Peer == peer));
        if (index < 0)
        {
            throw new InvalidOperationException($"Nothing named '{name}' is in transit; in transit: {string.Join(", ", _bag.Select(d => d.Name))}.");
        }
        var delivery = _bag[index];
        _bag.RemoveAt(index);
        Inline(delivery.Run);
    }

    /// <summary>Delivers everything in transit, oldest first, until nothing is left.</summary>
    public void DeliverAll(int maxSteps = 100_000)
    {
        for (var i = 0; i < maxSteps; i++)
        {
            CheckThread();
            if (_bag.Count == 0)
            {
                return;
            }
            var delivery = _bag[0];
            _bag.RemoveAt(0);
            Inline(delivery.Run);
        }
        throw new InvalidOperationException("The network did not go quiet.");
    }

    /// <summary>Delivers at random until nothing is left.</summary>
    public void RunUntilQuiet(int maxSteps = 1_000_000)
    {
        for (var i = 0; i < maxSteps; i++)
        {
            if (!Step())
            {
                return;
            }
        }
        throw new InvalidOperationException("The network did not go quiet.");
    }

    /// <summary>The name of the last delivery noted with <see cref="NoteDelivered"/>.</summary>
    public string? LastDelivered { get; private set; }

    /// <summary>Runs <paramref name="action"/> with no SynchronizationContext, so that completed tasks run their continuations inline.</summary>
    public static void Inline(Action action)
    {
        var saved = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            action();
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(saved);
        }
    }

    public IEnumerable<string> InTransitNames => _bag.Select(d => d.Name);

    public void CheckThread()
    {
        if (Environment.CurrentManagedThreadId != _threadId)
        {
            throw new InvalidOperationException("The document continued on another thread: the simulation is no longer deterministic.");
        }
    }

    /// <summary>The document's retry clock: a wait ends when its "timer" delivery is picked.</summary>
    public Task Delay(TimeSpan delay, CancellationToken cancellationToken)
    {
        CheckThread();
        var done = new TaskCompletionSource();
        cancellationToken.Register(() => done.TrySetCanceled(cancellationToken));
        Post(new Delivery("timer", null, 0, () => done.TrySetResult()));
        return done.Task;
    }

    /// <summary>Tells the peer's document to join again (as after a restore); it stays a member.</summary>
    public void SendReset(Peer peer)
    {
        var epoch = peer.Epoch;
        Post(new Delivery("reset", peer, epoch, () => peer.Document.OnReset(new ResetMessage { DocId = peer.Document.DocId, Reason = "test" })));
    }

    private void Post(Delivery delivery) => _bag.Add(delivery);

    internal void PostForPeer(string name, Peer peer, int epoch, Action run) => Post(new Delivery(name, peer, epoch, run));

    /// <summary>A request on its way to the server: processed even if the client has dropped the connection since.</summary>
    internal void PostToServer(string name, Peer peer, int epoch, Action run) => Post(new Delivery(name, peer, epoch, run, ToServer: true));

    internal void NoteDelivered(string name) => LastDelivered = name;

    /// <summary>The oldest delivery of that name to <paramref name="peer"/> is lost on the way.</summary>
    public void Lose(string name, Peer peer) => _bag.RemoveAt(_bag.FindIndex(d => d.Name == name && d.Peer == peer && !d.ToServer));

    internal void DropRequestsFrom(Peer peer) => _bag.RemoveAll(d => d.ToServer && d.Peer == peer);

    /// <summary>The server drops every membership of the peer (as after a restart), silently.</summary>
    internal void Forget(Peer peer) => _members.RemoveWhere(m => m.Peer == peer);

    /// <summary>The server notices, some time later, that a connection closed.</summary>
    internal void NoticeClose(Peer peer, int epoch) => Post(new Delivery("server-notices-close", null, 0, () => _members.Remove((peer, epoch))));

    internal JoinResult HandleJoin(Peer peer, int epoch, JoinRequest request)
    {
        _members.Add((peer, epoch));
        var result = new JoinResult { DocId = request.DocId, Version = Version, ReadOnly = ReadOnlyClients.Contains(peer.ClientId) };
        if (request.SinceVersion is not null)
        {
            result.MovedTo = MovedTo;
        }
        if (request.SinceVersion is int since && KeepsHistory && since >= 0 && since <= Version)
        {
            result.Ops = _history.Skip(since).ToList();
        }
        else
        {
            result.Text = Text;
        }
        return result;
    }

    internal SubmitResult HandleSubmit(Peer peer, int epoch, SubmitRequest request)
    {
        Received.Add((peer.ClientId, request));
        if (!_members.Contains((peer, epoch)))
        {
            throw new HubException($"{ErrorCodes.NotJoined}: join document '{request.DocId}' before submitting to it");
        }
        // The checks in the real server's order (PROTOCOL §3): rate_limited, not_joined and
        // forbidden come before the duplicate check, the op's own checks after it.
        if (_rejectNext.TryGetValue(peer.ClientId, out var code) && code is ErrorCodes.RateLimited or ErrorCodes.Unavailable or ErrorCodes.NotJoined or ErrorCodes.Forbidden)
        {
            _rejectNext.Remove(peer.ClientId);
            throw new HubException($"{code}: rejected by the test");
        }
        if (_committed.TryGetValue((peer.ClientId, request.OpId), out var version))
        {
            return new SubmitResult { Version = version };
        }
        if (_rejectNext.Remove(peer.ClientId, out code))
        {
            throw new HubException($"{code}: rejected by the test");
        }
        if (request.BaseVersion < 0 || request.BaseVersion > Version)
        {
            throw new HubException($"{ErrorCodes.UnknownVersion}: base version {request.BaseVersion} is not between 0 and {Version}");
        }
        var op = request.Op!;
        for (var v = request.BaseVersion; v < Version; v++)
        {
            op = TextOperation.Transform(op, _history[v].Op, aWinsTies: true);
        }
        if (op.Validate(_text) is { } problem)
        {
            throw new HubException($"{ErrorCodes.InvalidOp}: {problem}");
        }
        _text = op.Apply(_text);
        _texts.Add(_text.ToString());
        var message = new OpMessage { DocId = request.DocId, Version = Version + 1, Op = op, ClientId = peer.ClientId, OpId = request.OpId };
        _history.Add(message);
        _committed[(peer.ClientId, request.OpId)] = message.Version;
        foreach (var (member, memberEpoch) in _members)
        {
            // Every member connection but the sender's, the same client's other connections included.
            if (member != peer || memberEpoch != epoch)
            {
                PostForPeer("op", member, memberEpoch, () => member.Document.OnOp(message));
            }
        }
        return new SubmitResult { Version = message.Version };
    }

    private sealed record Delivery(string Name, Peer? Peer, int Epoch, Action Action, bool ToServer = false)
    {
        // A delivery to a client over a connection that has closed since is dropped: it was in
        // transit. A request to the server is processed anyway: the server learns of the close late.
        public void Run()
        {
            Peer?.Server.NoteDelivered(Name + (ToServer ? " from " : " to ") + Peer.ClientId);
            if (ToServer || Peer is null || (Peer.Connected && Peer.Epoch == Epoch))
            {
                Action();
            }
        }
    }
}

/// <summary>One client's connection to the <see cref="DummyServer"/>, as the document's transport.</summary>
internal sealed class Peer(DummyServer server, string clientId) : IDocumentTransport
{
    private readonly List<Action<Exception>> _outstanding = [];
    private long _lastOpId;
    private CollabDocument? _document;

    public string ClientId { get; } = clientId;

    public DummyServer Server => server;

    public bool Connected { get; private set; } = true;

    /// <summary>Which connection this is: every disconnect and reconnect makes a new one.</summary>
    public int Epoch { get; private set; }

    public CollabDocument Document => _document ?? throw new InvalidOperationException("No document yet.");

    /// <summary>The local text as rebuilt from nothing but the Changed events' operations.</summary>
    public string Mirror { get; private set; } = "";

    public List<CollabErrorEventArgs> Errors { get; } = [];

    public int Resets => ResetMessages.Count;

    public List<ResetMessage> ResetMessages { get; } = [];

    /// <summary>Every Join this peer sent.</summary>
    public List<JoinRequest> Joins { get; } = [];

    public CollabDocument CreateDocument(string docId)
    {
        _document = new CollabDocument(
            docId,
            ClientId,
            user: null,
            this,
            () => ++_lastOpId,
            NullLogger.Instance,
            delay: server.Delay);
        _document.Changed += (_, e) => Mirror = e.Operation.Apply(Mirror);
        _document.Error += (_, e) => Errors.Add(e);
        _document.Reset += (_, e) => ResetMessages.Add(e);
        return _document;
    }

    /// <summary>Creates the document and runs the network until its first join is done.</summary>
    public CollabDocument Open(string docId)
    {
        var document = CreateDocument(docId);
        var join = document.JoinInitialAsync(CancellationToken.None);
        while (!join.IsCompleted && server.Step())
        {
        }
        if (!join.IsCompletedSuccessfully)
        {
            throw new InvalidOperationException($"The first join did not complete: {join.Status}.", join.Exception);
        }
        return document;
    }

    /// <summary>Drops the connection: what was in transit is lost, calls in progress fail.</summary>
    /// <param name="requestsLost">Whether requests still on their way to the server are lost too; else the server gets them late.</param>
    public void Disconnect(bool requestsLost = false) => DummyServer.Inline(() => DisconnectInline(requestsLost));

    private void DisconnectInline(bool requestsLost)
    {
        if (!Connected)
        {
            return;
        }
        if (requestsLost)
        {
            server.DropRequestsFrom(this);
        }
        Connected = false;
        Epoch++;
        server.NoticeClose(this, Epoch - 1);
        var failures = _outstanding.ToList();
        _outstanding.Clear();
        // SignalR reports the close and fails pending invocations in no fixed order.
        var lostFirst = server.Random.Next(2) == 0;
        if (lostFirst)
        {
            Document.OnConnectionLost();
        }
        foreach (var fail in failures)
        {
            fail(new IOException("The connection was closed."));
        }
        if (!lostFirst)
        {
            Document.OnConnectionLost();
        }
    }

    public void Reconnect()
    {
        if (Connected)
        {
            return;
        }
        Connected = true;
        Epoch++;
        Document.OnConnectionRestored();
    }

    public ConnectionState State => Connected ? ConnectionState.Connected : ConnectionState.Reconnecting;

    public Task<JoinResult> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        Joins.Add(request);
        return Call("join", epoch => server.HandleJoin(this, epoch, request));
    }

    public Task<SubmitResult> SubmitAsync(SubmitRequest request, CancellationToken cancellationToken) =>
        Call("submit", epoch => server.HandleSubmit(this, epoch, request));

    public List<PresenceRequest> PresenceSent { get; } = [];

    public Task SetPresenceAsync(PresenceRequest request, CancellationToken cancellationToken)
    {
        PresenceSent.Add(request);
        return Task.CompletedTask;
    }

    /// <summary>The documents this peer left.</summary>
    public List<string> Left { get; } = [];

    public Task LeaveAsync(string docId, CancellationToken cancellationToken)
    {
        Left.Add(docId);
        return Task.CompletedTask;
    }

    public Task<IDocumentTransport> RedirectAsync(CollabDocument document, string baseUrl, CancellationToken cancellationToken) =>
        throw new NotSupportedException();

    public Task<IDocumentTransport> ReturnHomeAsync(CollabDocument document, CancellationToken cancellationToken) =>
        throw new NotSupportedException();

    public void Detach(CollabDocument document)
    {
    }

    // The connection's drops and returns are the scenario's to make: nothing to retry here.
    public void ReconnectNow()
    {
    }

    /// <summary>A hub call: the request and the response are each one delivery.</summary>
    private Task<T> Call<T>(string name, Func<int, T> handle)
    {
        server.CheckThread();
        if (!Connected)
        {
            return Task.FromException<T>(new InvalidOperationException("The connection is not active."));
        }
        // Inline continuations on purpose: see DummyServer's remarks.
        var result = new TaskCompletionSource<T>();
        Action<Exception> fail = e => result.TrySetException(e);
        _outstanding.Add(fail);
        var epoch = Epoch;
        server.PostToServer(name, this, epoch, () =>
        {
            T value = default!;
            HubException? error = null;
            try
            {
                value = handle(epoch);
            }
            catch (HubException ex)
            {
                error = ex;
            }
            server.PostForPeer(name + "-result", this, epoch, () =>
            {
                _outstanding.Remove(fail);
                if (error is null)
                {
                    result.TrySetResult(value);
                }
                else
                {
                    result.TrySetException(error);
                }
            });
        });
        return result.Task;
    }
}
