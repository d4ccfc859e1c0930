using CollabServer.Diagnostics;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Hubs;

/// <summary>Counts every hub error by its protocol code; the error itself goes on to the client unchanged.</summary>
public sealed class ErrorCountingFilter(CollabMetrics metrics) : IHubFilter
{
    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocationContext, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        try
        {
            return await next(invocationContext);
        }
        catch (HubException ex)
        {
            metrics.Error(CollabErrors.Parse(ex).Code);
            throw;
        }
    }
}
