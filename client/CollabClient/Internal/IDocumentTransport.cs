using Collab.Messages;

namespace Collab.Client.Internal;

/// <summary>
/// What a <see cref="CollabDocument"/> needs from the connection it is joined on: the hub
/// methods of PROTOCOL §3 and the connection's state. <see cref="NodeConnection"/> is the real
/// one; tests plug in an in-memory server. The connection calls the document back with
/// <c>OnOp</c>, <c>OnPresence</c>, <c>OnReset</c>, <c>OnConnectionLost</c> and <c>OnConnectionRestored</c>.
/// </summary>
internal interface IDocumentTransport
{
    /// <summary>Whether hub calls can be made now.</summary>
    ConnectionState State { get; }

    Task<JoinResult> JoinAsync(JoinRequest request, CancellationToken cancellationToken);

    Task<SubmitResult> SubmitAsync(SubmitRequest request, CancellationToken cancellationToken);

    Task SetPresenceAsync(PresenceRequest request, CancellationToken cancellationToken);

    Task LeaveAsync(string docId, CancellationToken cancellationToken);

    /// <summary>
    /// Connects to the node at <paramref name="baseUrl"/> (a JoinResult's <c>redirect</c>), moves
    /// the document's registration there and returns that node's transport.
    /// </summary>
    Task<IDocumentTransport> RedirectAsync(CollabDocument document, string baseUrl, CancellationToken cancellationToken);

    /// <summary>
    /// Moves the document's registration back to the node it was opened on (after a redirect it
    /// could not follow, or too many in a row) and returns that node's transport.
    /// </summary>
    Task<IDocumentTransport> ReturnHomeAsync(CollabDocument document, CancellationToken cancellationToken);

    /// <summary>Stops routing messages to the document (it was disposed or failed to open).</summary>
    void Detach(CollabDocument document);

    /// <summary>
    /// Tries to connect again now, when not connected: after the server refused for good (the
    /// document was told with <c>OnConnectionFailed</c>), or cutting a wait between attempts short.
    /// </summary>
    void ReconnectNow();
}
