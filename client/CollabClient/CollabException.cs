namespace Collab.Client;

/// <summary>
/// An error from the server or from the client's own protocol handling, with the protocol's
/// stable error code (PROTOCOL §5, <see cref="ErrorCodes"/>).
/// </summary>
public sealed class CollabException : Exception
{
    /// <summary>Creates an exception with a code and a message.</summary>
    public CollabException(string code, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Code = code;
    }

    /// <summary>The protocol error code, for example <c>invalid_op</c>; <c>unavailable</c> when the server could not be reached.</summary>
    public string Code { get; }

    /// <summary>
    /// Wraps a hub error whose message holds <c>code: sentence</c>. A message without a code
    /// becomes <c>unavailable</c>, the code for faults that may go away.
    /// </summary>
    public static CollabException FromHubError(Exception error)
    {
        var code = ErrorCodes.FromMessage(error.Message) ?? ErrorCodes.Unavailable;
        return new CollabException(code, error.Message, error);
    }
}
