using Collab.Client.Internal;
using Collab.Ot;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Collab.Client;

/// <summary>
/// A client of a CollabServer (or a cluster of them): opens documents and keeps one connection
/// per server node, shared by the documents that live there. Connections that drop are
/// re-established on their own, and their documents resume where they were.
/// </summary>
/// <example>
/// <code>
/// await using var client = new CollabClient(new CollabClientOptions { ServerUrl = new("http://127.0.0.1:5000") });
/// await using var doc = await client.OpenAsync("notes");
/// doc.Insert(0, "hello ");
/// await doc.WhenSynchronizedAsync();
/// </code>
/// </example>
public sealed class CollabClient : IAsyncDisposable
{
    private readonly CollabClientOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Dictionary<string, NodeConnection> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CollabDocument> _documents = new(StringComparer.Ordinal);
    // Every node base URL this client has heard of (ServerUrl, redirects, GET /api/cluster), in
    // the order learned: where documents go when their node stops answering.
    private readonly List<Uri> _knownNodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly CancellationTokenSource _disposeCts = new();
    private long _lastOpId;
    private bool _disposed;
    private ConnectionState _state = ConnectionState.Disconnected;

    /// <summary>
    /// Every node this client knows of (its <see cref="CollabClientOptions.ServerUrl"/>, the
    /// cluster's nodes it learned, redirects), in the order learned: where its documents go when
    /// their node stops answering.
    /// </summary>
    public IReadOnlyList<Uri> KnownNodes
    {
        get
        {
            lock (_gate)
            {
                return [.. _knownNodes];
            }
        }
    }

    /// <summary>Creates a client. Nothing connects until the first <see cref="OpenAsync"/>.</summary>
    /// <exception cref="ArgumentException">The options are not usable (see the message).</exception>
    public CollabClient(CollabClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ServerUrl is not { IsAbsoluteUri: true } url || url.Scheme is not ("http" or "https"))
        {
            throw new ArgumentException("ServerUrl must be an absolute http or https URL.", nameof(options));
        }
        if (string.IsNullOrEmpty(options.ClientId))
        {
            throw new ArgumentException("ClientId must not be empty.", nameof(options));
        }
        if (options.MinReconnectDelay <= TimeSpan.Zero || options.MaxReconnectDelay < options.MinReconnectDelay)
        {
            throw new ArgumentException("MinReconnectDelay must be positive and at most MaxReconnectDelay.", nameof(options));
        }
        // Copied: later changes to the caller's object do not reach a running client.
        _options = new CollabClientOptions
        {
            ServerUrl = options.ServerUrl,
            Protocol = options.Protocol,
            ClientId = options.ClientId,
            User = options.User,
            AccessTokenProvider = options.AccessTokenProvider,
            MinReconnectDelay = options.MinReconnectDelay,
            MaxReconnectDelay = options.MaxReconnectDelay,
            ConfigureHttp = options.ConfigureHttp,
            LoggerFactory = options.LoggerFactory,
        };
        _loggerFactory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<CollabClient>();
        // Op ids need only be unique per client id. Starting from the clock (in microsecond-ish
        // steps, below 2^53 so JavaScript reads them exactly) keeps them unique even when an
        // application reuses a fixed ClientId across restarts.
        _lastOpId = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        _knownNodes.Add(NodeKey(_options.ServerUrl));
    }

    /// <summary>This client's id, sent with every join and kept across reconnects.</summary>
    public string ClientId => _options.ClientId;

    /// <summary>
    /// Over all nodes this client is connected to: Reconnecting if any connection is being
    /// re-established, else Connected if any is up, else Disconnected.
    /// </summary>
    public ConnectionState ConnectionState
    {
        get
        {
            lock (_gate)
            {
                return _state;
            }
        }
    }

    /// <summary>Raised when <see cref="ConnectionState"/> changed.</summary>
    public event EventHandler<ConnectionStateChangedEventArgs>? ConnectionStateChanged;

    /// <summary>The text documents open now (rich-text documents are the <see cref="RichTextDocument"/>s <see cref="OpenRichTextAsync"/> returned).</summary>
    public IReadOnlyCollection<CollabDocument> Documents
    {
        get
        {
            lock (_gate)
            {
                return [.. _documents.Values.Where(d => !d.IsRichText)];
            }
        }
    }

    /// <summary>
    /// Opens a document (creating it on the server if it does not exist and this client may):
    /// connects to the server if needed, joins, follows redirects to the node that owns the
    /// document, and returns it with the server's text.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="docId"/> is not a valid document id.</exception>
    /// <exception cref="InvalidOperationException">The document is already open in this client.</exception>
    /// <exception cref="CollabException">
    /// The server refused or could not be reached; its <see cref="CollabException.Code"/> says why:
    /// <c>unauthorized</c> (HTTP 401: no token, or the token provider gave none or threw, or an
    /// expired or refused token), <c>forbidden</c> (HTTP 403, or the join was refused: no access to
    /// the document; <see cref="CollabException.Reason"/> is <see cref="CollabErrorReason.Origin"/> when
    /// the server refused the Origin header the client sent), <c>unavailable</c> (5xx, or no answer:
    /// <see cref="CollabErrorReason.Network"/>), or the join's code (<c>invalid_doc_id</c>, ...).
    /// <see cref="CollabException.IsRetryable"/> says whether trying again later can help.
    /// </exception>
    public Task<CollabDocument> OpenAsync(string docId, CancellationToken cancellationToken = default) =>
        OpenCoreAsync(docId, EngineState.Initial, cancellationToken);

    /// <summary>
    /// Opens a rich-text document (type <c>rich-text</c>: its contents and changes are Quill
    /// deltas), creating it on the server if it does not exist and this client may; otherwise as
    /// <see cref="OpenAsync"/>, with the same refusals. A document's type is fixed when it is
    /// created: opening a text document here, or a rich-text one with <see cref="OpenAsync"/>, is
    /// refused with <c>invalid_op</c>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="docId"/> is not a valid document id.</exception>
    /// <exception cref="InvalidOperationException">The document is already open in this client.</exception>
    /// <exception cref="CollabException">The server refused or could not be reached, as for <see cref="OpenAsync"/>; <c>invalid_op</c> when the document is a text document.</exception>
    public async Task<RichTextDocument> OpenRichTextAsync(string docId, CancellationToken cancellationToken = default) =>
        new(await OpenCoreAsync(docId, new EngineState<Delta, Delta>(RichTextType.Instance), cancellationToken).ConfigureAwait(false));

    private async Task<CollabDocument> OpenCoreAsync(string docId, IEngineState initial, CancellationToken cancellationToken)
    {
        if (!DocumentId.IsValid(docId))
        {
            throw new ArgumentException($"'{docId}' is not a valid document id: 1 to {DocumentId.MaxLength} characters from A-Z a-z 0-9 . _ -, not starting with a dot.", nameof(docId));
        }
        NodeConnection node;
        CollabDocument document;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_documents.ContainsKey(docId))
            {
                throw new InvalidOperationException($"Document '{docId}' is already open in this client.");
            }
            node = GetNodeLocked(_options.ServerUrl);
            document = new CollabDocument(
                docId,
                ClientId,
                _options.User,
                node,
                NextOpId,
                _loggerFactory.CreateLogger<CollabDocument>(),
                OnDocumentDisposed,
                initial: initial);
            _documents.Add(docId, document);
        }
        try
        {
            await node.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
            // Attached before the join, so that ops sent right after it are held, not lost.
            node.Attach(document);
            await document.JoinInitialAsync(cancellationToken).ConfigureAwait(false);
            return document;
        }
        catch
        {
            await document.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Tries again now, for every open document (<see cref="CollabDocument.ReconnectNow"/>): after
    /// the server refused a connection or a join for good, once the cause is fixed (a new token,
    /// say); connections waiting between reconnect attempts attempt at once.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The client was disposed.</exception>
    public void ReconnectNow()
    {
        CollabDocument[] documents;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            documents = [.. _documents.Values];
        }
        foreach (var document in documents)
        {
            try
            {
                document.ReconnectNow();
            }
            catch (ObjectDisposedException)
            {
                // Closed meanwhile.
            }
        }
    }

    /// <summary>Leaves every open document and closes every connection.</summary>
    public async ValueTask DisposeAsync()
    {
        CollabDocument[] documents;
        NodeConnection[] nodes;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            documents = [.. _documents.Values];
            nodes = [.. _nodes.Values];
        }
        foreach (var document in documents)
        {
            await document.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var node in nodes)
        {
            await node.DisposeAsync().ConfigureAwait(false);
        }
        await _disposeCts.CancelAsync().ConfigureAwait(false);
        _http.Dispose();
        lock (_gate)
        {
            _nodes.Clear();
        }
        OnNodeStateChanged(null);
    }

    /// <summary>The node documents are opened on.</summary>
    internal Uri ServerUrl => _options.ServerUrl;

    internal long NextOpId() => Interlocked.Increment(ref _lastOpId);

    /// <summary>Moves a document to the node at <paramref name="redirect"/> (absolute, or relative to <paramref name="from"/>).</summary>
    internal async Task<IDocumentTransport> RedirectAsync(CollabDocument document, NodeConnection from, string redirect, CancellationToken cancellationToken)
    {
        if (!Uri.TryCreate(from.BaseUrl, redirect, out var target) || !MayMove(from.BaseUrl, target))
        {
            // Never from https to plain http: the access token would travel in the clear.
            throw new CollabException(ErrorCodes.Unavailable, $"The server redirected document '{document.DocId}' to '{redirect}', which is not an http(s) URL (or leaves https).");
        }
        NodeConnection node;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            node = GetNodeLocked(target);
        }
        if (node == from)
        {
            return from;
        }
        await node.EnsureStartedAsync(cancellationToken).ConfigureAwait(false);
        lock (_gate)
        {
            // One node routes the document: a failover may have moved it meanwhile.
            foreach (var other in _nodes.Values)
            {
                if (other != node)
                {
                    other.Detach(document);
                }
            }
            node.Attach(document);
        }
        return node;
    }

    private static Uri NodeKey(Uri baseUrl) => new(baseUrl.GetLeftPart(UriPartial.Path).TrimEnd('/'));

    private NodeConnection GetNodeLocked(Uri baseUrl)
    {
        var key = NodeKey(baseUrl);
        if (!_nodes.TryGetValue(key.AbsoluteUri, out var node))
        {
            node = new NodeConnection(this, key, _options, _loggerFactory.CreateLogger<NodeConnection>());
            node.StateChanged += OnNodeStateChanged;
            _nodes.Add(key.AbsoluteUri, node);
            RememberNodeLocked(key);
        }
        return node;
    }

    /// <summary>Whether documents may move from the node at <paramref name="from"/> to <paramref name="to"/>: an http(s) URL, never from https down to http (the access token would travel in the clear).</summary>
    private static bool MayMove(Uri from, Uri to) => to.Scheme is "http" or "https" && (from.Scheme != "https" || to.Scheme == "https");

    /// <summary>Adds a node to those documents may move to: only https ones when this client was given https.</summary>
    private void RememberNodeLocked(Uri url)
    {
        var key = NodeKey(url);
        if (MayMove(_options.ServerUrl, key) && !_knownNodes.Contains(key))
        {
            _knownNodes.Add(key);
        }
    }

    /// <summary>
    /// A node came up: learns the cluster's other nodes from it (<c>GET /api/cluster</c>), so that
    /// documents can move on when the node they are on stops answering. A failed ask (no answer, a
    /// 429, or a 5xx: the node busy, Redis slow to answer it) is asked again after 0.5, 1, 2, … s, at most
    /// <see cref="LearnNodesAttempts"/> times in all; redirects teach the nodes too.
    /// </summary>
    internal async Task LearnNodesAsync(Uri from)
    {
        var delay = TimeSpan.FromMilliseconds(500);
        for (var attempt = 1; attempt <= LearnNodesAttempts && !_disposeCts.IsCancellationRequested; attempt++, delay *= 2)
        {
            if (await TryLearnNodesAsync(from).ConfigureAwait(false))
            {
                return;
            }
            try
            {
                await Task.Delay(delay, _disposeCts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>How many times <see cref="LearnNodesAsync"/> asks a node before it leaves the node list to redirects.</summary>
    internal const int LearnNodesAttempts = 6;

    /// <summary>False when the node should be asked again.</summary>
    private async Task<bool> TryLearnNodesAsync(Uri from)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(from, "api/cluster"));
            // A one-off hint: the socket closes after the answer instead of idling in the pool,
            // where it held a server socket and its Kestrel connection per client (two sockets per
            // client at 10 000 idle connections).
            request.Headers.ConnectionClose = true;
            if (_options.AccessTokenProvider is { } tokens && await tokens().ConfigureAwait(false) is { Length: > 0 } token)
            {
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            }
            using var response = await _http.SendAsync(request, _disposeCts.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                // A refusal (4xx) is an answer too: only a node in trouble (5xx), or one that asks
                // for a pause (429, its REST rate limit), is asked again.
                return (int)response.StatusCode < 500 && response.StatusCode != System.Net.HttpStatusCode.TooManyRequests;
            }
            var nodes = await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<List<ClusterNode>>(response.Content, _disposeCts.Token).ConfigureAwait(false);
            lock (_gate)
            {
                foreach (var node in nodes ?? [])
                {
                    if (Uri.TryCreate(node.Url, UriKind.Absolute, out var url))
                    {
                        RememberNodeLocked(url);
                    }
                }
            }
            return true;
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            return false;
        }
    }

    private sealed record ClusterNode(string Node, string Url);

    /// <summary>
    /// The node <paramref name="from"/> stopped answering (its reconnect failed): its documents go
    /// to the next node this client knows, which redirects them to their owner, or takes them over
    /// once the dead owner's lease has run out. Tried node after node, with backoff, until one
    /// answers; with a single known node there is nowhere to go and <paramref name="from"/> keeps retrying.
    /// </summary>
    internal async Task FailOverAsync(NodeConnection from)
    {
        for (var attempt = 0; ; attempt++)
        {
            NodeConnection to;
            CollabDocument[] documents;
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }
                // The next known node after this one that it may move to.
                var index = _knownNodes.FindIndex(u => u.AbsoluteUri == from.BaseUrl.AbsoluteUri);
                var next = Enumerable.Range(1, _knownNodes.Count)
                    .Select(i => _knownNodes[(index + i) % _knownNodes.Count])
                    .FirstOrDefault(u => u.AbsoluteUri != from.BaseUrl.AbsoluteUri && MayMove(from.BaseUrl, u));
                if (next is null)
                {
                    return;
                }
                to = GetNodeLocked(next);
                documents = from.TakeDocuments();
                foreach (var document in documents)
                {
                    to.Attach(document);
                    document.MoveTo(to);
                }
                if (from.IsEmpty)
                {
                    _nodes.Remove(from.BaseUrl.AbsoluteUri);
                }
            }
            if (from.IsEmpty)
            {
                _ = from.DisposeAsync().AsTask();
            }
            Log.FailedOver(_logger, from.BaseUrl, to.BaseUrl, documents.Length);
            try
            {
                await to.EnsureStartedAsync(_disposeCts.Token).ConfigureAwait(false);
                foreach (var document in documents)
                {
                    document.OnConnectionRestored();
                }
                return;
            }
            catch (OperationCanceledException)
            {
                return; // this client, or that node connection, was disposed
            }
            catch (CollabException refused) when (!refused.IsRetryable)
            {
                // That node refuses this client for good (a token it does not take, say): so do
                // the documents, until ReconnectNow.
                foreach (var document in documents)
                {
                    document.OnConnectionFailed(refused);
                }
                return;
            }
            catch (Exception ex) when (ex is CollabException or ObjectDisposedException)
            {
                if (to.State == ConnectionState.Reconnecting)
                {
                    return; // it was up before: its own reconnect loop takes over from here
                }
                from = to;
                try
                {
                    await Task.Delay(Backoff.Delay(attempt, _options.MinReconnectDelay, _options.MaxReconnectDelay), _disposeCts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void OnDocumentDisposed(CollabDocument document)
    {
        lock (_gate)
        {
            if (_documents.TryGetValue(document.DocId, out var open) && open == document)
            {
                _documents.Remove(document.DocId);
            }
        }
    }

    private void OnNodeStateChanged(NodeConnection? node)
    {
        ConnectionStateChangedEventArgs args;
        lock (_gate)
        {
            var states = _nodes.Values.Select(n => n.State).ToList();
            var state = states.Contains(ConnectionState.Reconnecting) ? ConnectionState.Reconnecting
                : states.Contains(ConnectionState.Connected) ? ConnectionState.Connected
                : ConnectionState.Disconnected;
            if (state == _state)
            {
                return;
            }
            args = new ConnectionStateChangedEventArgs(_state, state);
            _state = state;
        }
        ConnectionStateChanged?.Invoke(this, args);
    }
}
