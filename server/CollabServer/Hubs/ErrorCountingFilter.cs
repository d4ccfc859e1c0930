using CollabServer.Diagnostics;
using CollabServer.Errors;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Hubs;

/// <summary>
/// The hub's edge for errors: a <see cref="CollabError"/> goes to the caller as the protocol's
/// <c>code: sentence</c> HubException (PROTOCOL §5), counted by its code. Anything else is
/// the server's fault: logged at Error with its stack and answered <c>unavailable</c>.
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
        catch (Exception ex) when (ex is not HubException and not OperationCanceledException)
        {
            // The server's own fault: logged here, at Error with its stack, once. (SignalR's
            // dispatcher would log every refusal above the same way; Program.cs quiets it.)
            metrics.Error(Collab.ErrorCodes.Unavailable);
            Log.HubFault(logger, invocationContext.HubMethodName, ex);
            throw new CollabError(Collab.ErrorCodes.Unavailable, "the server failed to handle the request").ToHubException();
        }
    }
}
