using CollabServer.Diagnostics;
using CollabServer.Errors;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Hubs;

/// <summary>
/// The hub's edge for errors: a <see cref="CollabError"/> goes to the caller as the protocol's
/// <c>code: sentence</c> HubException (PROTOCOL §5), counted by its code. Anything else is
/// SignalR's to report (as a generic error, without details).
/// </summary>
public sealed class ErrorCountingFilter(CollabMetrics metrics) : IHubFilter
{
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(invocationContext);
        }
        catch (CollabError error)
        {
            metrics.Error(error.Code);
            throw error.ToHubException();
        }
    }
}
