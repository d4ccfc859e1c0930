using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CollabServer.Tests.Infrastructure;

public enum WireProtocol
{
    Json,
    MessagePack,
}

/// <summary>
/// The real server in this process (in-memory transport) on a data directory of real SQLite
/// files, with real SignalR connections to it. Disposing stops the server; the data directory is
/// deleted with <see cref="DeleteData"/>, or kept for a restart.
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private readonly WebApplicationFactory<Program> _factory;
    private readonly List<HubConnection> _connections = [];

    public TestHost(string? dataDir = null, IDictionary<string, string?>? settings = null)
    {
        DataDir = dataDir ?? NewDataDir();
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b =>
        {
            b.UseSetting("Collab:DataDir", DataDir);
            b.UseSetting("Collab:Sync", "Normal");
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                b.UseSetting(key, value);
            }
        });
        Http = _factory.CreateClient();
    }

    public string DataDir { get; }

    public HttpClient Http { get; }

    public IServiceProvider Services => _factory.Services;

    /// <summary>A client of the server that does not follow redirects (to see them).</summary>
    public HttpClient CreateClientWithoutRedirects() => _factory.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });

    public static string NewDataDir() => Directory.CreateTempSubdirectory("collab-test-").FullName;

    public async Task<HubConnection> ConnectAsync(WireProtocol protocol = WireProtocol.MessagePack, string? token = null)
    {
        var server = _factory.Server;
        var builder = new HubConnectionBuilder().WithUrl(new Uri(server.BaseAddress, "hubs/collab"), o =>
        {
            o.HttpMessageHandlerFactory = _ => server.CreateHandler();
            o.Transports = HttpTransportType.WebSockets;
            o.SkipNegotiation = true;
            o.WebSocketFactory = async (context, ct) =>
            {
                var client = server.CreateWebSocketClient();
                if (token is not null)
                {
                    // As browsers do: the token in the query string of the WebSocket request.
                    var uri = new UriBuilder(context.Uri) { Query = $"access_token={Uri.EscapeDataString(token)}" }.Uri;
                    return await client.ConnectAsync(uri, ct);
                }
                return await client.ConnectAsync(context.Uri, ct);
            };
        });
        if (protocol == WireProtocol.MessagePack)
        {
            builder.AddMessagePackProtocol();
        }
        else
        {
            builder.AddJsonProtocol(o => o.PayloadSerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull);
        }
        var connection = builder.Build();
        await connection.StartAsync().WaitAsync(Wire.Timeout);
        lock (_connections)
        {
            _connections.Add(connection);
        }
        return connection;
    }

    /// <summary>A bare WebSocket to the hub, for hand-written frames.</summary>
    public Task<System.Net.WebSockets.WebSocket> ConnectWebSocketAsync() =>
        _factory.Server.CreateWebSocketClient().ConnectAsync(new Uri(_factory.Server.BaseAddress, "hubs/collab"), CancellationToken.None).WaitAsync(Wire.Timeout);

    public async Task<(int Version, string Text)> GetDocAsync(string id)
    {
        var doc = await Http.GetFromJsonAsync<JsonElement>($"/api/docs/{id}").WaitAsync(Wire.Timeout);
        return (doc.GetProperty("version").GetInt32(), doc.GetProperty("text").GetString()!);
    }

    public T GetService<T>() where T : notnull => _factory.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _connections)
        {
            await connection.DisposeAsync();
        }
        Http.Dispose();
        await _factory.DisposeAsync();
    }

    public void DeleteData()
    {
        if (Directory.Exists(DataDir))
        {
            Directory.Delete(DataDir, recursive: true);
        }
    }
}
