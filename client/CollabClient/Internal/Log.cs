using Microsoft.Extensions.Logging;

namespace Collab.Client.Internal;

/// <summary>Every log message of the client, with stable event ids.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Warning, "Connection to {BaseUrl} lost; reconnecting.")]
    public static partial void ConnectionLost(ILogger logger, Uri baseUrl, Exception? exception);

    [LoggerMessage(2, LogLevel.Debug, "Reconnect attempt {Attempt} to {BaseUrl} failed.")]
    public static partial void ReconnectAttemptFailed(ILogger logger, int attempt, Uri baseUrl, Exception exception);

    [LoggerMessage(3, LogLevel.Information, "Reconnected to {BaseUrl} after {Attempts} attempt(s).")]
    public static partial void Reconnected(ILogger logger, Uri baseUrl, int attempts);

    [LoggerMessage(4, LogLevel.Warning, "Document {DocId}: op {OpId} was rejected with {Code}.")]
    public static partial void SubmitRejected(ILogger logger, string docId, long opId, string code, Exception exception);

    [LoggerMessage(5, LogLevel.Debug, "Document {DocId}: submitting op {OpId} failed; it is sent again when the connection is back.")]
    public static partial void SubmitFailed(ILogger logger, string docId, long opId, Exception exception);

    [LoggerMessage(6, LogLevel.Warning, "Document {DocId}: join failed.")]
    public static partial void JoinFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(7, LogLevel.Error, "Document {DocId}: an event handler threw.")]
    public static partial void EventHandlerFailed(ILogger logger, string docId, Exception exception);



    [LoggerMessage(10, LogLevel.Information, "Document {DocId}: redirected to {BaseUrl}.")]
    public static partial void Redirected(ILogger logger, string docId, string baseUrl);

    [LoggerMessage(11, LogLevel.Debug, "Document {DocId}: leave failed.")]
    public static partial void LeaveFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(12, LogLevel.Information, "Document {DocId}: the server asked for a reset ({Reason}).")]
    public static partial void ResetRequested(ILogger logger, string docId, string reason);


    [LoggerMessage(14, LogLevel.Warning, "Document {DocId}: the server diverged from what this client had seen acknowledged ({Reason}); joining again to keep both texts.")]
    public static partial void Diverged(ILogger logger, string docId, string reason);

    [LoggerMessage(15, LogLevel.Warning, "Document {DocId}: could not follow the redirect to {BaseUrl}.")]
    public static partial void RedirectFailed(ILogger logger, string docId, string baseUrl, Exception exception);

    [LoggerMessage(16, LogLevel.Debug, "Document {DocId}: sending presence failed.")]
    public static partial void PresenceFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(20, LogLevel.Warning, "{From} stopped answering: its {Count} documents go to {To}.")]
    public static partial void FailedOver(ILogger logger, Uri from, Uri to, int count);

    [LoggerMessage(21, LogLevel.Warning, "{BaseUrl} refused the connection for good ({Code}, {Reason}): not retrying until asked to (ReconnectNow, or a new open).")]
    public static partial void ReconnectStopped(ILogger logger, Uri baseUrl, string code, CollabErrorReason reason, Exception exception);
}
