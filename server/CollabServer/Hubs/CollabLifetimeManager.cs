using CollabServer.Diagnostics;
using CollabServer.Identity;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;

namespace CollabServer.Hubs;

/// <summary>
/// SignalR's default lifetime manager, plus a <see cref="ClientConnection"/> for every connection,
/// created when it opens and closed when it closes. The hub reaches it through the connection's
/// items; documents send to it directly, never through SignalR groups, so no send waits on a
/// socket. A connection that opens once the server is stopping is closed at once.
/// </summary>
public sealed class CollabLifetimeManager(
    ILogger<DefaultHubLifetimeManager<CollabHub>> baseLogger,
    ILogger<ClientConnection> logger,
    IOptions<CollabOptions> options,
    CollabMetrics metrics,
    Api.CreationBudget creations,
    IHostApplicationLifetime lifetime) : DefaultHubLifetimeManager<CollabHub>(baseLogger)
{
    public override async Task OnConnectedAsync(HubConnectionContext connection)
    {
        var identity = ConnectionIdentity.From(connection.User);
        // A subject's documents made by its first write share one budget with those its PUTs make.
        Func<bool> subjectCreation = identity.IsAuthenticated && options.Value.Rest.DocumentsCreatedPerMinute > 0
            ? () => creations.TryTake("sub:" + identity.Subject)
            : static () => true;
        var client = new ClientConnection(connection, options.Value, logger, identity, subjectCreation,
            closed => metrics.Connections.TryRemove(closed.ConnectionId, out _));
        connection.Items[ClientConnection.ItemKey] = client;
        metrics.Connections[connection.ConnectionId] = client;
        await base.OnConnectedAsync(connection);
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // SignalR closed the open connections when stopping began; one that arrives later
            // (a client reconnecting while a cluster node drains) would keep the server waiting
            // for it until the shutdown timeout. The client goes to another node instead.
            connection.Abort();
        }
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
