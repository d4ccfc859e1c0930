using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Collab.Client.Tests.Integration;

/// <summary>
/// The real server in this process on a temporary data directory, and <see cref="CollabClient"/>s
/// wired to it: through the in-memory transport (<see cref="CollabClientOptions.ConfigureHttp"/>),
/// or, with <c>realSockets</c>, on a Kestrel port of 127.0.0.1 that the clients reach with their
/// own HttpClient and ClientWebSocket. Disposing stops the server and deletes the directory.
/// </summary>
internal sealed class ServerHost : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly WebApplicationFactory<Program> _factory;
    private readonly List<CollabClient> _clients = [];

    private readonly Uri? _kestrelUrl;

    /// <summary>Starts the server; <paramref name="settings"/> are more configuration (a signing key, say).</summary>
    public ServerHost(IReadOnlyDictionary<string, string>? settings = null, bool realSockets = false)
    {
        DataDir = Directory.CreateTempSubdirectory("collab-client-test-").FullName;
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b =>
        {
            b.UseSetting("Collab:DataDir", DataDir);
            b.UseSetting("Collab:Sync", "Off");
            foreach (var (key, value) in settings ?? new Dictionary<string, string>())
            {
                b.UseSetting(key, value);
            }
        });
        if (realSockets)
        {
            _factory.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
            _factory.StartServer();
            var addresses = _factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
            _kestrelUrl = new Uri(addresses.First());
            Http = new HttpClient { BaseAddress = _kestrelUrl };
        }
        else
        {
            Http = _factory.CreateClient();
        }
    }

    public string DataDir { get; }

    public HttpClient Http { get; }

    public TestServer Server => _factory.Server;

    /// <summary>Error-level log entries written by any client's library code.</summary>
    public ErrorLog Errors { get; } = new();

    /// <summary>
    /// A client of this server. The in-memory WebSocket gets what the default one would send: the
    /// token of <paramref name="tokens"/> as a bearer token, and the connection's headers
    /// (<paramref name="configure"/> may add some).
    /// </summary>
    public CollabClient CreateClient(CollabProtocol protocol, SocketKiller? killer = null, Func<Task<string?>>? tokens = null, Action<Microsoft.AspNetCore.Http.Connections.Client.HttpConnectionOptions>? configure = null)
    {
        if (_kestrelUrl is { } url)
        {
            return Track(new CollabClient(new CollabClientOptions
            {
                ServerUrl = url,
                Protocol = protocol,
                AccessTokenProvider = tokens,
                MinReconnectDelay = TimeSpan.FromMilliseconds(20),
                MaxReconnectDelay = TimeSpan.FromMilliseconds(300),
                LoggerFactory = LoggerFactory.Create(b => b.AddProvider(Errors)),
                ConfigureHttp = configure,
            }));
        }
        var server = Server;
        var client = new CollabClient(new CollabClientOptions
        {
            ServerUrl = server.BaseAddress,
            Protocol = protocol,
            AccessTokenProvider = tokens,
            MinReconnectDelay = TimeSpan.FromMilliseconds(20),
            MaxReconnectDelay = TimeSpan.FromMilliseconds(300),
            LoggerFactory = LoggerFactory.Create(b => b.AddProvider(Errors)),
            ConfigureHttp = http =>
            {
                http.HttpMessageHandlerFactory = _ => server.CreateHandler();
                http.WebSocketFactory = async (context, ct) =>
                {
                    var token = context.Options.AccessTokenProvider is { } provider ? await provider() : null;
                    var webSockets = server.CreateWebSocketClient();
                    webSockets.ConfigureRequest = request =>
                    {
                        foreach (var (name, value) in context.Options.Headers)
                        {
                            request.Headers[name] = value;
                        }
                        if (!string.IsNullOrEmpty(token))
                        {
                            request.Headers.Authorization = $"Bearer {token}";
                        }
                    };
                    var socket = await webSockets.ConnectAsync(context.Uri, ct);
                    return killer is null ? socket : killer.Track(socket);
                };
                configure?.Invoke(http);
            },
        });
        return Track(client);
    }

    private CollabClient Track(CollabClient client)
    {
        lock (_clients)
        {
            _clients.Add(client);
        }
        return client;
    }

    public async Task<(int Version, string Text)> GetDocAsync(string id)
    {
        var doc = await Http.GetFromJsonAsync<JsonElement>($"/api/docs/{id}").WaitAsync(Timeout);
        return (doc.GetProperty("version").GetInt32(), doc.GetProperty("text").GetString()!);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            await client.DisposeAsync().AsTask().WaitAsync(Timeout);
        }
        Http.Dispose();
        await _factory.DisposeAsync().AsTask().WaitAsync(Timeout);
        Directory.Delete(DataDir, recursive: true);
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails with <paramref name="what"/> after the timeout.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Timeout);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting until {what}.");
            }
            await Task.Delay(20);
        }
    }
}

/// <summary>Hands out WebSockets that a test can kill at once, as a dropped network would.</summary>
internal sealed class SocketKiller
{
    private readonly ConcurrentBag<KillableWebSocket> _sockets = [];

    public int Kills { get; private set; }

    public WebSocket Track(WebSocket socket)
    {
        var killable = new KillableWebSocket(socket);
        _sockets.Add(killable);
        return killable;
    }

    /// <summary>Kills every live socket handed out so far; returns how many were live.</summary>
    public int KillAll()
    {
        var killed = 0;
        foreach (var socket in _sockets)
        {
            if (socket.Kill())
            {
                killed++;
            }
        }
        Kills += killed;
        return killed;
    }
}

/// <summary>
/// A WebSocket whose pending and future receives and sends fail the moment it is killed,
/// whatever the socket under it does.
/// </summary>
internal sealed class KillableWebSocket(WebSocket inner) : WebSocket
{
    private readonly CancellationTokenSource _killed = new();

    public bool Kill()
    {
        if (_killed.IsCancellationRequested || inner.State != WebSocketState.Open)
        {
            return false;
        }
        _killed.Cancel();
        inner.Abort();
        return true;
    }

    public override WebSocketCloseStatus? CloseStatus => inner.CloseStatus;

    public override string? CloseStatusDescription => inner.CloseStatusDescription;

    public override WebSocketState State => _killed.IsCancellationRequested ? WebSocketState.Aborted : inner.State;

    public override string? SubProtocol => inner.SubProtocol;

    public override void Abort()
    {
        _killed.Cancel();
        inner.Abort();
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        Guard(inner.CloseAsync(closeStatus, statusDescription, cancellationToken));

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        Guard(inner.CloseOutputAsync(closeStatus, statusDescription, cancellationToken));

    public override void Dispose()
    {
        inner.Dispose();
        _killed.Dispose();
    }

    public override Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken) =>
        Guard(inner.ReceiveAsync(buffer, cancellationToken));

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        Guard(inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken));

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        await Guard(inner.ReceiveAsync(buffer, cancellationToken).AsTask());

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        await Guard(inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken).AsTask());

    private async Task Guard(Task task)
    {
        try
        {
            await task.WaitAsync(_killed.Token);
        }
        catch (OperationCanceledException) when (_killed.IsCancellationRequested)
        {
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "Killed by the test.");
        }
    }

    private async Task<T> Guard<T>(Task<T> task)
    {
        try
        {
            return await task.WaitAsync(_killed.Token);
        }
        catch (OperationCanceledException) when (_killed.IsCancellationRequested)
        {
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "Killed by the test.");
        }
    }
}

/// <summary>Collects Error-level log entries of the client library, and its warnings for failure messages.</summary>
internal sealed class ErrorLog : ILoggerProvider
{
    public ConcurrentQueue<string> Entries { get; } = [];

    public ConcurrentQueue<string> Warnings { get; } = [];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ErrorLog log, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!category.StartsWith("Collab.Client", StringComparison.Ordinal))
            {
                return;
            }
            var entry = $"{DateTime.UtcNow:HH:mm:ss.fff} {category}: {formatter(state, exception)} {exception?.GetType().Name}: {exception?.Message}";
            (logLevel >= LogLevel.Error ? log.Entries : log.Warnings).Enqueue(entry);
        }
    }
}
