namespace Collab.Client;

/// <summary>The state of a connection to a server node, or of a document's membership on it.</summary>
public enum ConnectionState
{
    /// <summary>Not connected, and not trying to be: before the first connect or after disposal.</summary>
    Disconnected,

    /// <summary>The connection was lost (or the document is joining again); the client is retrying on its own.</summary>
    Reconnecting,

    /// <summary>Connected, and for a document: joined and receiving its operations.</summary>
    Connected,
}
