namespace Collab;

/// <summary>
/// The closed list of error codes of PROTOCOL §5. A hub error's message is <c>code: sentence</c>;
/// a REST error is a problem details object whose <c>type</c> is the code.
/// </summary>
public static class ErrorCodes
{
    // Client errors: the request was wrong and changed nothing.
    public const string InvalidDocId = "invalid_doc_id";
    public const string InvalidOp = "invalid_op";
    public const string UnknownVersion = "unknown_version";
    public const string NotJoined = "not_joined";
    public const string Forbidden = "forbidden";
    public const string Unauthorized = "unauthorized";
    public const string TooLarge = "too_large";
    public const string RateLimited = "rate_limited";

    /// <summary>REST only (an extension of PROTOCOL §5): the document does not exist.</summary>
    public const string NotFound = "not_found";

    // Server faults: the request may succeed later, or on another node.
    public const string Unavailable = "unavailable";

    /// <summary>The code at the start of an error message such as <c>invalid_op: …</c>, or null.</summary>
    public static string? FromMessage(string? message)
    {
        if (message is null)
        {
            return null;
        }
        // The SignalR client prefixes server errors with its own text; the code follows the last "HubException: ".
        const string marker = "HubException: ";
        var start = message.LastIndexOf(marker, StringComparison.Ordinal);
        var body = start >= 0 ? message[(start + marker.Length)..] : message;
        var colon = body.IndexOf(':');
        return colon > 0 ? body[..colon] : null;
    }
}
