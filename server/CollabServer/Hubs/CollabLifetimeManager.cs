using CollabServer.Diagnostics;
using CollabServer.Identity;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace CollabServer.Hubs;

/// <summary>
/// SignalR's default lifetime manager, plus a <see cref="ClientConnection"/> for every connection,
/// created when it opens and closed when it closes. The hub reaches it through the connection's
/// items; documents send to it directly, never through SignalR groups, so no send waits on a
/// socket.
/// </summary>
public sealed class CollabLifetimeManager(
    ILogger<DefaultHubLifetimeManager<CollabHub>> baseLogger,
    ILogger<ClientConnection> logger,
    IOptions<CollabOptions> options,
    CollabMetrics metrics) : DefaultHubLifetimeManager<CollabHub>(baseLogger)
{
    public override Task OnConnectedAsync(HubConnectionContext connection)
    {
        var client = new ClientConnection(connection, options.Value, logger, ConnectionIdentity.From(connection.User));
        connection.Items[ClientConnection.ItemKey] = client;
        metrics.Connections[connection.ConnectionId] = client;
        return base.OnConnectedAsync(connection);
    }

    public override Task OnDisconnectedAsync(HubConnectionContext connection)
    {
        if (connection.Items.TryGetValue(ClientConnection.ItemKey, out var item) && item is ClientConnection client)
        {
            client.Close();
        }
        metrics.Connections.TryRemove(connection.ConnectionId, out _);
        return base.OnDisconnectedAsync(connection);
    }
}
