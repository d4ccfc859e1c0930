using System.Text.Json;
using Collab;
using CollabServer.Documents;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Api;

/// <summary>The REST endpoints of PROTOCOL §7. Errors are RFC 9457 problem details whose <c>type</c> is the protocol's code.</summary>
public static class DocumentsApi
{
    public static void MapDocumentsApi(this IEndpointRouteBuilder app)
    {
        var docs = app.MapGroup("/api/docs");

        docs.MapGet("/", async (DocumentRegistry registry) =>
        {
            var result = new List<DocumentSummary>();
            foreach (var id in DocumentStore.ListIds(registry.Options.DataDir).Order(StringComparer.Ordinal))
            {
                var live = await registry.CallIfLiveAsync(id, actor => actor.Summary(), null);
                if (live is not null)
                {
                    result.Add(live);
                }
                else if (TryReadSummary(registry, id) is { } s)
                {
                    result.Add(new DocumentSummary(id, s.Version, s.Length, DateTimeOffset.FromUnixTimeMilliseconds(s.UpdatedAtMs)));
                }
            }
            return Results.Ok(result);
        });

        docs.MapGet("/{id}", async (string id, DocumentRegistry registry) =>
        {
            if (Invalid(id) is { } bad)
            {
                return bad;
            }
            if (!registry.Exists(id))
            {
                return NotFound(id);
            }
            var doc = await registry.CallAsync(id, actor => actor.Read());
            return doc is { } d ? Results.Ok(new { id, version = d.Version, text = d.Text }) : NotFound(id);
        });

        docs.MapGet("/{id}/ops", async (string id, int? from, int? limit, DocumentRegistry registry) =>
        {
            if (Invalid(id) is { } bad)
            {
                return bad;
            }
            if (!registry.Exists(id))
            {
                return NotFound(id);
            }
            var ops = await registry.CallAsync(id, actor => actor.ReadOps(from ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000)));
            return ops is null ? NotFound(id) : Results.Ok(ops);
        });

        docs.MapPut("/{id}", async (string id, HttpRequest request, DocumentRegistry registry) =>
        {
            if (Invalid(id) is { } bad)
            {
                return bad;
            }
            var text = await ReadTextAsync(request);
            if (text is null)
            {
                return Problem(ErrorCodes.InvalidOp, "The body must be JSON { \"text\": \"...\" } with well-formed UTF-16 text.", StatusCodes.Status400BadRequest);
            }
            try
            {
                var version = await registry.CallAsync(id, actor => actor.Replace(text));
                return Results.Ok(new { id, version });
            }
            catch (HubException ex)
            {
                return Problem(ex);
            }
        });

        docs.MapDelete("/{id}", async (string id, DocumentRegistry registry) =>
        {
            if (Invalid(id) is { } bad)
            {
                return bad;
            }
            if (!registry.Exists(id))
            {
                return NotFound(id);
            }
            var deleted = await registry.CallAsync(id, actor => actor.Delete());
            return deleted ? Results.NoContent() : NotFound(id);
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

    /// <summary>A document's summary from its file; null for one that cannot be read, which the listing leaves out.</summary>
    private static (int Version, int Length, long UpdatedAtMs)? TryReadSummary(DocumentRegistry registry, string id)
    {
        try
        {
            return DocumentStore.ReadSummary(DocumentStore.PathFor(registry.Options.DataDir, id));
        }
        catch (Microsoft.Data.Sqlite.SqliteException)
        {
            return null;
        }
    }

    private static IResult? Invalid(string id) =>
        DocumentId.IsValid(id) ? null : Problem(ErrorCodes.InvalidDocId, "A document id is 1 to 128 characters from A-Z a-z 0-9 . _ - and does not start with a dot.", StatusCodes.Status400BadRequest);

    private static IResult NotFound(string id) => Results.Problem(title: $"Document '{id}' does not exist.", statusCode: StatusCodes.Status404NotFound);

    internal static IResult Problem(string code, string detail, int status) =>
        Results.Problem(type: code, title: detail, statusCode: status);

    private static IResult Problem(HubException ex)
    {
        var (code, sentence) = CollabErrors.Parse(ex);
        return Problem(code, sentence, code switch
        {
        ErrorCodes.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorCodes.Unavailable => StatusCodes.Status503ServiceUnavailable,
        ErrorCodes.Forbidden => StatusCodes.Status403Forbidden,
        ErrorCodes.Unauthorized => StatusCodes.Status401Unauthorized,
        _ => StatusCodes.Status400BadRequest,
        });
    }
}
