using CollabServer.Cluster;
using CollabServer.Errors;

namespace CollabServer.Api;

/// <summary>The REST edge for errors, shared by every endpoint group.</summary>
internal static class ErrorFilter
{
    /// <summary>
    /// Answers a <see cref="CollabError"/>, wherever it was thrown, as problem details with the
    /// protocol's code; a document another node owns (<see cref="NotOwnerException"/>) is
    /// answered by that node (<see cref="OwnerForwarder"/>).
    /// </summary>
    public static RouteGroupBuilder AnswerErrors(this RouteGroupBuilder group)
    {
        group.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (CollabError error)
            {
                return error.ToProblem();
            }
            catch (NotOwnerException owner)
            {
                return await OwnerForwarder.ForwardAsync(context.HttpContext, owner);
            }
            catch (OperationCanceledException) when (context.HttpContext.RequestAborted.IsCancellationRequested)
            {
                return Results.Empty; // the client went away (while its read waited for a limit)
            }
        });
        return group;
    }
}
