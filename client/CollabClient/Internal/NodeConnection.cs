using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Collab.Messages;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Collab.Client.Internal;

/// <summary>
/// One SignalR connection to one server node, shared by every document open on that node. It
/// routes the node's messages to the documents by id, and when the connection drops it
/// reconnects on its own (exponential backoff, full jitter) and tells each document to resume.
/// It stops retrying when the server refuses for good (<c>unauthorized</c>, <c>forbidden</c>, a
/// refused origin: <see cref="Handshake"/> tells why): the connection is then Disconnected, its
/// documents are told (<c>OnConnectionFailed</c>), and <see cref="ReconnectNow"/> or a new open tries again.
/// </summary>
/// <remarks>
/// SignalR's WithAutomaticReconnect is not used: it gives up after its schedule, and its
/// reconnect keeps no documents. State changes happen under <c>_gate</c>; documents are told
/// after it is released, and only after <see cref="State"/> already says what they are told.
/// </remarks>
internal sealed class NodeConnection : IDocumentTransport, IAsyncDisposable
{
    private readonly CollabClient _owner;
    private readonly HubConnection _hub;
    private readonly ILogger _logger;
    private readonly TimeSpan _minDelay;
    private readonly TimeSpan _maxDelay;
    private readonly ConcurrentDictionary<string, CollabDocument> _documents = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly object _gate = new();

    private volatile ConnectionState _state = ConnectionState.Disconnected;
    private Task? _firstStart;
    private bool _reconnecting;
    private int _failingOver;
    private bool _disposed;
    private TaskCompletionSource _connected = NewSignal();
    // Completed to cut a reconnect wait short (ReconnectNow).
    private TaskCompletionSource _wake = NewSignal();
    // Why reconnecting stopped, while it is stopped (State is Disconnected).
    private CollabException? _failure;
    // The connection's HTTP options as SignalR configured them (token provider, headers, handler):
    // the diagnosis of a failed start asks with the same.
    private HttpConnectionOptions? _httpOptions;

    public NodeConnection(CollabClient owner, Uri baseUrl, CollabClientOptions options, ILogger logger)
    {
        _owner = owner;
        _logger = logger;
        _minDelay = options.MinReconnectDelay;
        _maxDelay = options.MaxReconnectDelay;
        BaseUrl = baseUrl;

        var builder = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl.AbsoluteUri.TrimEnd('/') + HubNames.Path), http =>
            {
                http.Transports = HttpTransportType.WebSockets;
                http.SkipNegotiation = true;
                if (options.AccessTokenProvider is { } tokens)
                {
                    http.AccessTokenProvider = tokens;
                }
                options.ConfigureHttp?.Invoke(http);
                _httpOptions = http;
            });
        if (options.Protocol == CollabProtocol.Json)
        {
            builder.AddJsonProtocol(json =>
            {
                json.PayloadSerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
                json.PayloadSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
            });
        }
        else
        {
            builder.AddMessagePackProtocol();
        }
        if (options.LoggerFactory is { } loggerFactory)
        {
            builder.Services.AddSingleton(loggerFactory);
        }
        _hub = builder.Build();
        _hub.Closed += OnClosedAsync;
        _hub.On<OpMessage>(HubNames.Op, message => Find(message.DocId)?.OnOp(message));
        _hub.On<PresenceMessage>(HubNames.Presence, message => Find(message.DocId)?.OnPresence(message));
        _hub.On<ResetMessage>(HubNames.Reset, message => Find(message.DocId)?.OnReset(message));
    }

    /// <summary>The node's base URL (no trailing slash).</summary>
    public Uri BaseUrl { get; }

    private Uri HubUrl => new(BaseUrl.AbsoluteUri.TrimEnd('/') + HubNames.Path);

    public ConnectionState State => _state;

    /// <summary>Raised after <see cref="State"/> changed.</summary>
    public event Action<NodeConnection>? StateChanged;

    /// <summary>
    /// Completes when the connection is up. The first start's failure is thrown, typed
    /// (<see cref="Handshake"/>); once it has been up, a lost connection is retried and this waits,
    /// unless the server refuses for good: then that refusal is thrown. A connection that stopped
    /// retrying tries again.
    /// </summary>
    public Task EnsureStartedAsync(CancellationToken cancellationToken)
    {
        Task wait;
        var restarted = false;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state == ConnectionState.Connected)
            {
                return Task.CompletedTask;
            }
            if (_failure is not null)
            {
                RestartLocked();
                restarted = true;
            }
            // Task.Run: the start must not run inline under _gate (its failure path takes _gate to clear _firstStart).
            wait = _state == ConnectionState.Reconnecting ? _connected.Task : _firstStart ??= Task.Run(FirstStartAsync);
        }
        if (restarted)
        {
            OnRestarted();
        }
        return wait.WaitAsync(cancellationToken);
    }

    private async Task FirstStartAsync()
    {
        try
        {
            await _hub.StartAsync(_disposeCts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            var error = await DiagnoseAsync(ex).ConfigureAwait(false);
            lock (_gate)
            {
                _firstStart = null;
            }
            throw error;
        }
        Task wait;
        lock (_gate)
        {
            if (_disposed)
            {
                throw new ObjectDisposedException(nameof(CollabClient));
            }
            if (_hub.State == HubConnectionState.Connected)
            {
                _state = ConnectionState.Connected;
                _connected.TrySetResult();
                wait = Task.CompletedTask;
            }
            else
            {
                // Closed again before we got here (OnClosedAsync saw us not yet connected): reconnect.
                _state = ConnectionState.Reconnecting;
                StartReconnectLoopLocked();
                wait = _connected.Task;
            }
        }
        StateChanged?.Invoke(this);
        _ = _owner.LearnNodesAsync(BaseUrl);
        await wait.ConfigureAwait(false);
    }

    private Task OnClosedAsync(Exception? exception)
    {
        lock (_gate)
        {
            if (_disposed || _state != ConnectionState.Connected)
            {
                // Not ours to handle: disposal, or a start that has not reported success yet (it checks the hub's state).
                return Task.CompletedTask;
            }
            _state = ConnectionState.Reconnecting;
            _connected = NewSignal();
            StartReconnectLoopLocked();
        }
        Log.ConnectionLost(_logger, BaseUrl, exception);
        foreach (var document in _documents.Values)
        {
            document.OnConnectionLost();
        }
        StateChanged?.Invoke(this);
        return Task.CompletedTask;
    }

    private void StartReconnectLoopLocked(bool immediately = false)
    {
        if (!_reconnecting)
        {
            _reconnecting = true;
            _ = Task.Run(() => ReconnectLoopAsync(immediately));
        }
    }

    /// <summary>What went wrong with a start, asked of the server (<see cref="Handshake"/>).</summary>
    private async Task<CollabException> DiagnoseAsync(Exception failure)
    {
        if (failure is CollabException known)
        {
            return known;
        }
        try
        {
            return await Handshake.DiagnoseAsync(HubUrl, _httpOptions, failure, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Disposed meanwhile: nobody acts on the answer.
            return new CollabException(ErrorCodes.Unavailable, CollabErrorReason.Unavailable, $"Could not connect to {BaseUrl}: {failure.Message}", null, failure);
        }
    }

    /// <summary>
    /// Tries again now: a connection that stopped retrying (the server refused it for good, or a
    /// failover to here was refused) starts reconnecting, one waiting between attempts stops waiting.
    /// </summary>
    public void ReconnectNow()
    {
        lock (_gate)
        {
            if (_disposed || _state == ConnectionState.Connected || _firstStart is { IsCompleted: false })
            {
                return;
            }
            if (_reconnecting)
            {
                _wake.TrySetResult();
                return;
            }
            if (_failure is null && _documents.IsEmpty)
            {
                return; // never connected, and nothing here to connect for: the next open connects
            }
            RestartLocked();
        }
        OnRestarted();
    }

    /// <summary>Reconnects a connection that is down and not retrying, attempting at once.</summary>
    private void RestartLocked()
    {
        _failure = null;
        _state = ConnectionState.Reconnecting;
        _connected = NewSignal();
        StartReconnectLoopLocked(immediately: true);
    }

    private void OnRestarted()
    {
        foreach (var document in _documents.Values)
        {
            document.OnRetrying();
        }
        StateChanged?.Invoke(this);
    }

    /// <summary>Waits before a reconnect attempt; false if <see cref="ReconnectNow"/> cut the wait short.</summary>
    private async Task<bool> WaitAsync(TimeSpan delay)
    {
        Task wake;
        lock (_gate)
        {
            wake = _wake.Task;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_disposeCts.Token);
        var waited = await Task.WhenAny(Task.Delay(delay, stop.Token), wake).ConfigureAwait(false);
        await stop.CancelAsync().ConfigureAwait(false);
        _disposeCts.Token.ThrowIfCancellationRequested();
        if (waited != wake)
        {
            return true;
        }
        lock (_gate)
        {
            if (_wake.Task == wake)
            {
                _wake = NewSignal();
            }
        }
        return false;
    }

    private async Task ReconnectLoopAsync(bool immediately)
    {
        var attempt = 0;
        while (true)
        {
            try
            {
                if (!immediately && !await WaitAsync(Backoff.Delay(attempt, _minDelay, _maxDelay)).ConfigureAwait(false))
                {
                    attempt = 0;
                }
                immediately = false;
                attempt++;
                await _hub.StartAsync(_disposeCts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Loop boundary: a failure means "not yet", unless the server refuses for good.
                Log.ReconnectAttemptFailed(_logger, attempt, BaseUrl, ex);
                var error = await DiagnoseAsync(ex).ConfigureAwait(false);
                if (!error.IsRetryable)
                {
                    StopRetrying(error);
                    return;
                }
                // Meanwhile the documents may move on to another node of the cluster, if the
                // client knows one (see FailOverAsync).
                if (!_documents.IsEmpty && Interlocked.Exchange(ref _failingOver, 1) == 0)
                {
                    _ = _owner.FailOverAsync(this).ContinueWith(_ => Volatile.Write(ref _failingOver, 0), TaskScheduler.Default);
                }
                continue;
            }
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }
                if (_hub.State != HubConnectionState.Connected)
                {
                    continue;
                }
                _state = ConnectionState.Connected;
                _reconnecting = false;
                _connected.TrySetResult();
            }
            Log.Reconnected(_logger, BaseUrl, attempt);
            _ = _owner.LearnNodesAsync(BaseUrl);
            foreach (var document in _documents.Values)
            {
                document.OnConnectionRestored();
            }
            StateChanged?.Invoke(this);
            return;
        }
    }

    /// <summary>
    /// The server refused reconnecting for good: stops retrying, fails those waiting for the
    /// connection and tells the documents.
    /// </summary>
    private void StopRetrying(CollabException error)
    {
        TaskCompletionSource connected;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _state = ConnectionState.Disconnected;
            _reconnecting = false;
            _failure = error;
            connected = _connected;
            _connected = NewSignal();
            _wake = NewSignal();
        }
        Log.ReconnectStopped(_logger, BaseUrl, error.Code, error.Reason, error);
        // Observed here: with nobody waiting, the failed task would be an unobserved exception.
        _ = connected.Task.ContinueWith(t => t.Exception, TaskScheduler.Default);
        connected.TrySetException(error);
        foreach (var document in _documents.Values)
        {
            document.OnConnectionFailed(error);
        }
        StateChanged?.Invoke(this);
    }

    private CollabDocument? Find(string docId) => _documents.TryGetValue(docId, out var document) ? document : null;

    /// <summary>Routes the document's messages to it from now on.</summary>
    public void Attach(CollabDocument document) => _documents[document.DocId] = document;

    /// <summary>Whether no document is routed here any more.</summary>
    public bool IsEmpty => _documents.IsEmpty;

    /// <summary>Stops routing every document here and returns them (they move to another node).</summary>
    public CollabDocument[] TakeDocuments()
    {
        var taken = new List<CollabDocument>();
        foreach (var (docId, document) in _documents)
        {
            if (_documents.TryRemove(new KeyValuePair<string, CollabDocument>(docId, document)))
            {
                taken.Add(document);
            }
        }
        return [.. taken];
    }

    public void Detach(CollabDocument document) =>
        _documents.TryRemove(new KeyValuePair<string, CollabDocument>(document.DocId, document));

    public Task<JoinResult> JoinAsync(JoinRequest request, CancellationToken cancellationToken) =>
        _hub.InvokeAsync<JoinResult>(HubNames.Join, request, cancellationToken);

    public Task<SubmitResult> SubmitAsync(SubmitRequest request, CancellationToken cancellationToken) =>
        _hub.InvokeAsync<SubmitResult>(HubNames.Submit, request, cancellationToken);

    public Task SetPresenceAsync(PresenceRequest request, CancellationToken cancellationToken) =>
        _hub.InvokeAsync(HubNames.SetPresence, request, cancellationToken);

    public Task LeaveAsync(string docId, CancellationToken cancellationToken) =>
        _hub.InvokeAsync(HubNames.Leave, docId, cancellationToken);

    public Task<IDocumentTransport> RedirectAsync(CollabDocument document, string baseUrl, CancellationToken cancellationToken) =>
        _owner.RedirectAsync(document, this, baseUrl, cancellationToken);

    public Task<IDocumentTransport> ReturnHomeAsync(CollabDocument document, CancellationToken cancellationToken) =>
        _owner.RedirectAsync(document, this, _owner.ServerUrl.AbsoluteUri, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _state = ConnectionState.Disconnected;
            _connected.TrySetCanceled();
        }
        _disposeCts.Cancel();
        try
        {
            await _hub.StopAsync().ConfigureAwait(false);
        }
        finally
        {
            await _hub.DisposeAsync().ConfigureAwait(false);
            StateChanged?.Invoke(this);
        }
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
