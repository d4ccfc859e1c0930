using System.Text.Json;
using Collab;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Storage;

namespace CollabServer.Api;

/// <summary>
/// The REST endpoints of PROTOCOL §7. Refusals are <see cref="CollabError"/>s, answered as RFC
/// 9457 problem details whose <c>type</c> is the protocol's code (<c>not_found</c> for a missing
/// document).
/// </summary>
public static class DocumentsApi
{
    public static void MapDocumentsApi(this IEndpointRouteBuilder app)
    {
        var docs = app.MapGroup("/api/docs");
        // Every endpoint answers a CollabError, wherever it was thrown, as problem details.
        docs.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (CollabError error)
            {
                return error.ToProblem();
            }
        });

        docs.MapGet("/", async (DocumentRegistry registry) =>
        {
            var result = new List<DocumentSummary>();
            foreach (var id in registry.Catalog.ListIds().Order(StringComparer.Ordinal))
            {
                // A live document's summary comes from its actor; a closed one's from its file.
                var summary = await registry.CallIfLiveAsync(id, actor => actor.Summary(), null) ?? registry.Catalog.ReadSummary(id);
                if (summary is not null)
                {
                    result.Add(summary);
                }
            }
            return Results.Ok(result);
        });

        docs.MapGet("/{id}", async (string id, DocumentRegistry registry) =>
        {
            CheckExists(id, registry);
            var doc = await registry.CallAsync(id, actor => actor.Read()) ?? throw CollabError.NotFound(id);
            return Results.Ok(new { id, version = doc.Version, text = doc.Text });
        });

        docs.MapGet("/{id}/ops", async (string id, int? from, int? limit, DocumentRegistry registry) =>
        {
            CheckExists(id, registry);
            var ops = await registry.CallAsync(id, actor => actor.ReadOps(from ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000)));
            return Results.Ok(ops ?? throw CollabError.NotFound(id));
        });

        docs.MapPut("/{id}", async (string id, HttpRequest request, DocumentRegistry registry) =>
        {
            CheckId(id);
            var text = await ReadTextAsync(request) ?? throw CollabError.InvalidOp("the body must be JSON { \"text\": \"...\" } with well-formed UTF-16 text");
            var version = await registry.CallAsync(id, actor => actor.Replace(text));
            return Results.Ok(new { id, version });
        });

        docs.MapDelete("/{id}", async (string id, DocumentRegistry registry) =>
        {
            CheckExists(id, registry);
            var deleted = await registry.CallAsync(id, actor => actor.Delete());
            return deleted ? Results.NoContent() : throw CollabError.NotFound(id);
        });
    }

    /// <summary>The <c>text</c> of a JSON body, or null if the body is not such JSON (System.Text.Json refuses lone surrogates, which is what we want).</summary>
    private static async Task<string?> ReadTextAsync(HttpRequest request)
    {
        try
        {
            using var body = await JsonDocument.ParseAsync(request.Body);
            return body.RootElement.ValueKind == JsonValueKind.Object
                && body.RootElement.TryGetProperty("text", out var text)
                && text.ValueKind == JsonValueKind.String
                ? text.GetString()
                : null;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }
    }

    private static void CheckId(string id)
    {
        if (!DocumentId.IsValid(id))
        {
            throw CollabError.InvalidDocId();
        }
    }

    private static void CheckExists(string id, DocumentRegistry registry)
    {
        CheckId(id);
        if (!registry.Exists(id))
        {
            throw CollabError.NotFound(id);
        }
    }
}
