namespace Collab;

/// <summary>
/// The closed list of error codes of PROTOCOL §5 (the codes and what a client does after each are
/// in ErrorCodes.g.cs, generated from client/error-codes.json). A hub error's message is
/// <c>code: sentence</c>; a REST error is a problem details object whose <c>type</c> is the code.
/// </summary>
public static partial class ErrorCodes
{
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
