using CollabServer.Cluster;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Identity;

namespace CollabServer.Api;

/// <summary>The cluster's REST endpoints (PROTOCOL §7): where a document lives, the live nodes, and live moves.</summary>
public static class ClusterApi
{
    public static void MapClusterApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api").AnswerErrors();

        api.MapGet("/route/{id}", async (string id, HttpContext http, IDocumentOwnership ownership) =>
        {
            DocumentsApi.Require(http, id, DocumentAccess.Read);
            return Results.Ok(new { id, node = await ownership.RouteAsync(id) ?? BaseUrl(http) });
        });

        api.MapGet("/cluster", async (HttpContext http, IDocumentOwnership ownership, DocumentRegistry registry) =>
        {
            DocumentsApi.Authenticated(http);
            IReadOnlyList<NodeInfo> nodes = ownership.Clustered
                ? await ownership.NodesAsync()
                : [new NodeInfo(ownership.NodeId ?? "local", ownership.NodeUrl ?? BaseUrl(http), registry.ActiveCount)];
            return Results.Ok(nodes.Select(n => new { node = n.Node, url = n.Url, documents = n.Documents }));
        });
    }

    /// <summary><c>POST /api/docs/{id}/move</c> <c>{ "node": "n2" }</c>, in the documents' group (forwarded to the owner like the rest).</summary>
    internal static void MapMove(RouteGroupBuilder docs)
    {
        docs.MapPost("/{id}/move", async (string id, HttpRequest request, DocumentRegistry registry, IDocumentOwnership ownership) =>
        {
            DocumentsApi.RequireAdmin(request.HttpContext);
            DocumentsApi.CheckExists(id, registry);
            await DocumentsApi.ToOwnerBeforeBodyAsync(request.HttpContext, id, registry);
            var node = await DocumentsApi.ReadStringFieldAsync(request, "node", DocumentsApi.SmallBodyBytes);
            if (node is null)
            {
                throw CollabError.InvalidOp("the body must be JSON { \"node\": \"NODE-ID\" }");
            }
            if (!ownership.Clustered)
            {
                throw CollabError.InvalidOp("this server runs as a single node: there is no other node to move a document to");
            }
            var target = (await ownership.NodesAsync()).FirstOrDefault(n => n.Node == node)
                ?? throw CollabError.InvalidOp($"there is no live node '{node}' (GET /api/cluster lists them)");
            if (node == ownership.NodeId)
            {
                // To this node: loading the document here claims it when nobody holds it, and when
                // another node does, the request goes on to that owner, which moves it here.
                await registry.AskAsync(id, () => new LoadDocument());
            }
            else if (!await registry.MoveAsync(id, node))
            {
                throw CollabError.Unavailable($"document '{id}' changed owner during the move; try again");
            }
            return Results.Ok(new { id, node, url = target.Url });
        });
    }

    private static string BaseUrl(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host.Value}";
}
