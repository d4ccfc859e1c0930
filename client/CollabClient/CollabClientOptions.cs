using System.Security.Cryptography;
using Collab.Messages;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.Extensions.Logging;

namespace Collab.Client;

/// <summary>Settings of a <see cref="CollabClient"/>. Read once, when the client is created.</summary>
public sealed class CollabClientOptions
{
    /// <summary>
    /// Base URL of the server (or of any node of a cluster), for example <c>http://127.0.0.1:5000</c>.
    /// The hub is at this URL plus <c>/hubs/collab</c>.
    /// </summary>
    public Uri ServerUrl { get; set; } = new("http://127.0.0.1:5000");

    /// <summary>The hub protocol. MessagePack by default.</summary>
    public CollabProtocol Protocol { get; set; } = CollabProtocol.MessagePack;

    /// <summary>
    /// This client's id (PROTOCOL §3): with an op's id it makes submissions idempotent, so it is kept
    /// for the life of the client, across reconnects. A random 16-character id by default.
    /// </summary>
    public string ClientId { get; set; } = NewClientId();

    /// <summary>The name and color shown to other members, or null.</summary>
    public UserInfo? User { get; set; }

    /// <summary>Supplies a bearer token for each connection attempt, when the server needs one.</summary>
    public Func<Task<string?>>? AccessTokenProvider { get; set; }

    /// <summary>The shortest wait before a reconnect attempt.</summary>
    public TimeSpan MinReconnectDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>The longest wait between reconnect attempts.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Called last when a connection is configured, after the client has set WebSockets, skipped
    /// negotiation and set the token provider; for example to plug in a test server's handler
    /// and <see cref="HttpConnectionOptions.WebSocketFactory"/>.
    /// </summary>
    public Action<HttpConnectionOptions>? ConfigureHttp { get; set; }

    /// <summary>Where the client and its SignalR connections log, or null for no logging.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    private const string IdAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// <summary>A new random 16-character client id.</summary>
    public static string NewClientId() => RandomNumberGenerator.GetString(IdAlphabet, 16);
}
