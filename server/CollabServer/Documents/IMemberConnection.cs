using CollabServer.Identity;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Documents;

/// <summary>
/// A member's connection as a document sees it: who it is, its document-creation budget, and a
/// queue that never makes the document wait (<see cref="Send"/>). The hub's connections implement
/// it; tests can give a document members without a web host.
/// </summary>
public interface IMemberConnection
{
    string ConnectionId { get; }

    /// <summary>Who the connection is, resolved once when it connected.</summary>
    ConnectionIdentity Identity { get; }

    /// <summary>Whether the connection has closed (or is closing).</summary>
    bool IsClosed { get; }

    /// <summary>Takes one document creation from the connection's budget; false when it is used up.</summary>
    bool TryTakeCreation();

    /// <summary>Queues a message without waiting; a connection that falls too far behind closes itself.</summary>
    void Send(SerializedHubMessage message);
}
