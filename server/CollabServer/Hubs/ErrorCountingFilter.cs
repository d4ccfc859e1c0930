using CollabServer.Diagnostics;
using CollabServer.Errors;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Hubs;

/// <summary>
/// The hub's edge for errors: a <see cref="CollabError"/> goes to the caller as the protocol's
/// <c>code: sentence</c> HubException (PROTOCOL §5), counted by its code. Anything else is
/// SignalR's to report (as a generic error, without details) and logged at Error with its stack.
/// </summary>
public sealed class ErrorCountingFilter(CollabMetrics metrics, ILogger<ErrorCountingFilter> logger) : IHubFilter
{
    private static readonly TokenBucket s_refusalLog = new(10, 20);

    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(invocationContext);
        }
        catch (CollabError error)
        {
            metrics.Error(error.Code);
            // A client's mistake, not the server's: one line at Debug, no stack trace, and at
            // most a few a second whatever a client sends.
            if (logger.IsEnabled(LogLevel.Debug) && s_refusalLog.TryTake())
            {
                Log.Refused(logger, invocationContext.HubMethodName, invocationContext.Context.ConnectionId, error.Code, error.Sentence);
            }
            throw error.ToHubException();
        }
    }
}
