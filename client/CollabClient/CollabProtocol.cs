namespace Collab.Client;

/// <summary>The SignalR hub protocol the client speaks. The server accepts both (PROTOCOL §2).</summary>
public enum CollabProtocol
{
    /// <summary>The binary MessagePack hub protocol: smaller and faster. The default.</summary>
    MessagePack,

    /// <summary>The JSON hub protocol, camelCase, nulls omitted.</summary>
    Json,
}
