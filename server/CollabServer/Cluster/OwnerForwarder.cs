using System.Net;
using CollabServer.Errors;
using Yarp.ReverseProxy.Forwarder;

namespace CollabServer.Cluster;

/// <summary>
/// REST calls about a document another node owns are answered by the owner: this node forwards
/// the request there (YARP's <see cref="IHttpForwarder"/>: headers, body and answer as they are,
/// the bearer token included) and returns its answer. A forwarded request is marked, and is
/// never forwarded a second time: a node that is not the owner either answers 503 unavailable.
/// </summary>
public static class OwnerForwarder
{
    public const string ForwardedHeader = "X-Collab-Forwarded";

    private static readonly HttpMessageInvoker s_client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(5),
    });

    private static readonly ForwarderRequestConfig s_config = new() { ActivityTimeout = TimeSpan.FromSeconds(60) };

    /// <summary>In a cluster, keeps request bodies of the document endpoints readable twice: once here, once when forwarded.</summary>
    public static void UseOwnerForwarding(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IDocumentOwnership>().Clustered)
        {
            return; // a single node owns everything: nothing is forwarded, no body is buffered
        }
        app.Use((context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/api/docs") && !HttpMethods.IsGet(context.Request.Method))
            {
                context.Request.EnableBuffering();
            }
            return next(context);
        });
    }

    /// <summary>Answers the request with the owner's answer.</summary>
    public static async Task<IResult> ForwardAsync(HttpContext http, NotOwnerException owner)
    {
        if (http.Request.Headers.ContainsKey(ForwardedHeader))
        {
            return CollabError.Unavailable($"the document moved while this request was forwarded (to node {owner.NodeId}); try again").ToProblem();
        }
        if (http.Request.Body.CanSeek)
        {
            http.Request.Body.Position = 0;
        }
        var ownership = http.RequestServices.GetRequiredService<IDocumentOwnership>();
        var error = await http.RequestServices.GetRequiredService<IHttpForwarder>()
            .SendAsync(http, owner.Url, s_client, s_config, new MarkForwarded(ownership.NodeId ?? "?"));
        http.RequestServices.GetRequiredService<Diagnostics.CollabMetrics>().Redirected();
        if (error != ForwarderError.None && !http.Response.HasStarted)
        {
            return CollabError.Unavailable($"the owner of this document (node {owner.NodeId}) did not answer; try again").ToProblem();
        }
        return Results.Empty;
    }

    private sealed class MarkForwarded(string nodeId) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
            proxyRequest.Headers.TryAddWithoutValidation(ForwardedHeader, nodeId);
        }
    }
}
