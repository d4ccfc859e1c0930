using System.Net;
using CollabServer.Errors;
using Yarp.ReverseProxy.Forwarder;

namespace CollabServer.Cluster;

/// <summary>
/// REST calls about a document another node owns are answered by the owner: this node forwards
/// the request there (YARP's <see cref="IHttpForwarder"/>: headers, body and answer as they are,
/// the bearer token included) and returns its answer. The endpoints with a body find the owner
/// before they read it (<c>DocumentsApi.ToOwnerBeforeBodyAsync</c>), so a body is streamed through
/// to the owner as it arrives, never held or parsed here, and the owner's limits judge it (a
/// <c>Content-Length</c> over the limit is refused here first). A forwarded request is marked, and
/// is never forwarded a second time: a node that is not the owner either answers 503 unavailable.
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

    /// <summary>The largest body kept readable twice (in memory): one that names a version or a node.</summary>
    private const long ReplayableBodyBytes = 4096;

    /// <summary>
    /// In a cluster, keeps the small bodies of the document endpoints (a restore's, a move's, with a
    /// <c>Content-Length</c> of at most 4 KiB) readable twice, for the rare request whose document
    /// moves between the owner check and the write. Larger bodies, and chunked ones, are never
    /// buffered: they are streamed to the owner before they are read.
    /// </summary>
    public static void UseOwnerForwarding(this WebApplication app)
    {
        if (!app.Services.GetRequiredService<IDocumentOwnership>().Clustered)
        {
            return; // a single node owns everything: nothing is forwarded, no body is buffered
        }
        app.Use((context, next) =>
        {
            if (context.Request.Path.StartsWithSegments("/api/docs") && !HttpMethods.IsGet(context.Request.Method)
                && context.Request.ContentLength is <= ReplayableBodyBytes)
            {
                context.Request.EnableBuffering((int)ReplayableBodyBytes, ReplayableBodyBytes);
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
        else if (http.Items.ContainsKey(Api.CappedBody.ReadKey))
        {
            // Read here before the document moved away: the body is gone, the client sends it again.
            return CollabError.Unavailable($"the document moved to node {owner.NodeId} while this request was read; try again").ToProblem();
        }
        // Streamed through as it arrives: the owner's limit on the body is the one that holds.
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = null;
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
