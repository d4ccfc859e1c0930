using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using Collab.Messages;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Collab.Client.Internal;

/// <summary>
/// One SignalR connection to one server node, shared by every document open on that node. It
/// routes the node's messages to the documents by id, and when the connection drops it
/// reconnects on its own (exponential backoff, full jitter, forever until disposed) and tells
/// each document to resume.
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

    public ConnectionState State => _state;

    /// <summary>Raised after <see cref="State"/> changed.</summary>
    public event Action<NodeConnection>? StateChanged;

    /// <summary>
    /// Completes when the connection is up. The first start's failure is thrown (as
    /// <c>unavailable</c>); once it has been up, a lost connection is retried forever and this waits.
    /// </summary>
    public Task EnsureStartedAsync(CancellationToken cancellationToken)
    {
        Task wait;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_state == ConnectionState.Connected)
            {
                return Task.CompletedTask;
            }
            // Task.Run: the start must not run inline under _gate (its failure path takes _gate to clear _firstStart).
            wait = _state == ConnectionState.Reconnecting ? _connected.Task : _firstStart ??= Task.Run(FirstStartAsync);
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
            lock (_gate)
            {
                _firstStart = null;
            }
            throw new CollabException(ErrorCodes.Unavailable, $"Could not connect to {BaseUrl}: {ex.Message}", ex);
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

    private void StartReconnectLoopLocked()
    {
        if (!_reconnecting)
        {
            _reconnecting = true;
            _ = Task.Run(ReconnectLoopAsync);
        }
    }

    private async Task ReconnectLoopAsync()
    {
        var attempt = 0;
        while (true)
        {
            try
            {
                await Task.Delay(Backoff.Delay(attempt, _minDelay, _maxDelay), _disposeCts.Token).ConfigureAwait(false);
                attempt++;
                await _hub.StartAsync(_disposeCts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Loop boundary: any failure means "not yet". Meanwhile the documents may move on
                // to another node of the cluster, if the client knows one (see FailOverAsync).
                Log.ReconnectAttemptFailed(_logger, attempt, BaseUrl, ex);
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
