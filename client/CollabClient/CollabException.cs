using System.Net;

namespace Collab.Client;

/// <summary>
/// An error from the server or from the client's own protocol handling, with the protocol's
/// stable error code (PROTOCOL §5, <see cref="ErrorCodes"/>), and for a connection or a join that
/// failed, why (<see cref="Reason"/>) and whether trying again can help (<see cref="IsRetryable"/>).
/// </summary>
public sealed class CollabException : Exception
{
    /// <summary>Creates an exception with a code and a message; its <see cref="Reason"/> follows from the code.</summary>
    public CollabException(string code, string message, Exception? innerException = null)
        : this(code, ReasonOf(code), message, statusCode: null, innerException)
    {
    }

    /// <summary>Creates an exception with a code, the finer reason, a message and the HTTP status the server answered, if any.</summary>
    public CollabException(string code, CollabErrorReason reason, string message, HttpStatusCode? statusCode = null, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
        Reason = reason;
        StatusCode = statusCode;
    }

    /// <summary>The protocol error code, for example <c>invalid_op</c>; <c>unavailable</c> when the server could not be reached.</summary>
    public string Code { get; }

    /// <summary>
    /// Why a connection or a join failed, finer than <see cref="Code"/>: <see cref="CollabErrorReason.Origin"/>
    /// is a <c>forbidden</c> for the Origin header the client sent, <see cref="CollabErrorReason.Network"/>
    /// no answer at all. For other errors it follows from the code.
    /// </summary>
    public CollabErrorReason Reason { get; }

    /// <summary>The HTTP status the server answered when the connection was refused, or null (no answer, or not an HTTP refusal).</summary>
    public HttpStatusCode? StatusCode { get; }

    /// <summary>
    /// Whether trying again later, with nothing changed, may succeed: true for
    /// <see cref="CollabErrorReason.Unavailable"/> and <see cref="CollabErrorReason.Network"/>; false for
    /// <c>unauthorized</c>, <c>forbidden</c> and a refused origin (the same request is refused again)
    /// and for requests the server never takes.
    /// </summary>
    public bool IsRetryable => Reason is CollabErrorReason.Unavailable or CollabErrorReason.Network;

    /// <summary>
    /// Wraps a hub error whose message holds <c>code: sentence</c>. A message without a code
    /// becomes <c>unavailable</c>, the code for faults that may go away.
    /// </summary>
    public static CollabException FromHubError(Exception error)
    {
        var code = ErrorCodes.FromMessage(error.Message) ?? ErrorCodes.Unavailable;
        return new CollabException(code, error.Message, error);
    }

    /// <summary>The reason an error with <paramref name="code"/> gives, when nothing finer is known.</summary>
    public static CollabErrorReason ReasonOf(string code) => code switch
    {
        ErrorCodes.Unauthorized => CollabErrorReason.Unauthorized,
        ErrorCodes.Forbidden => CollabErrorReason.Forbidden,
        _ when ErrorCodes.RetryOf(code) == ErrorRetry.Later => CollabErrorReason.Unavailable,
        _ => CollabErrorReason.Invalid,
    };
}

/// <summary>Why a connection or a join failed (<see cref="CollabException.Reason"/>), as the TypeScript client's <c>FailureReason</c>.</summary>
public enum CollabErrorReason
{
    /// <summary>No valid token: none (the token provider gave none, or threw), expired, wrongly signed or not accepted (HTTP 401, code <c>unauthorized</c>). Not retryable: get a new token, then reconnect.</summary>
    Unauthorized,

    /// <summary>The token (or this client) has no access (HTTP 403 or a join refused with <c>forbidden</c>). Not retryable.</summary>
    Forbidden,

    /// <summary>The server refused the <c>Origin</c> header the client sent (HTTP 403, code <c>forbidden</c>, the server's sentence names the origin). Not retryable.</summary>
    Origin,

    /// <summary>The server answered but could not take the client now (5xx, <c>unavailable</c>, <c>rate_limited</c>, a handshake that failed for a passing reason). Retryable.</summary>
    Unavailable,

    /// <summary>No answer at all (the server is down or unreachable); the code is <c>unavailable</c>. Retryable.</summary>
    Network,

    /// <summary>A request the server will never take (<c>invalid_doc_id</c>, <c>invalid_op</c>, ...) or an error that is not about connecting. Not retryable.</summary>
    Invalid,
}
