using System.Globalization;
using System.Text.Json;
using Collab;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Identity;
using CollabServer.Storage;
using CollabServer.Storage.Postgres;
using Microsoft.Extensions.Options;
using CollabServer.Documents.Types;

namespace CollabServer.Api;

/// <summary>
/// The REST endpoints of PROTOCOL §7. Refusals are <see cref="CollabError"/>s, answered as RFC
/// 9457 problem details whose <c>type</c> is the protocol's code (<c>not_found</c> for a missing
/// document).
/// </summary>
public static partial class DocumentsApi
{
    /// <summary>The largest body of a request that names one thing (a backup, a node): 64 KiB.</summary>
    internal const long SmallBodyBytes = 64 * 1024;

    public static void MapDocumentsApi(this IEndpointRouteBuilder app)
    {
        var docs = app.MapGroup("/api/docs").AnswerErrors();

        // Paged by id: ?after=ID&limit=N, with a Link header to the next page (RFC 8288).
        docs.MapGet("/", async (string? after, int? limit, HttpContext http, DocumentRegistry registry, DocumentCatalog catalog, IOptions<CollabOptions> options) =>
        {
            RequireAdmin(http);
            var max = options.Value.MaxListPage;
            if (limit is < 1 || (after is not null && !DocumentId.IsValid(after)))
            {
                throw CollabError.InvalidOp($"limit is 1 to {max} and after is a document id");
            }
            var pageSize = Math.Min(limit ?? max, max);
            // With PostgreSQL, it lists every document (a node's disk has only the ones it served).
            var postgres = http.RequestServices.GetService<PostgresDatabase>();
            var listed = postgres?.List(after, pageSize + 1).ToDictionary(s => s.Id, StringComparer.Ordinal);
            var ids = listed?.Keys.Order(StringComparer.Ordinal).ToList() ?? catalog.ListIds()
                .Where(id => after is null || string.CompareOrdinal(id, after) > 0)
                .Order(StringComparer.Ordinal)
                .Take(pageSize + 1)
                .ToList();
            if (ids.Count > pageSize)
            {
                ids.RemoveAt(pageSize);
                http.Response.Headers.Link = $"</api/docs?after={Uri.EscapeDataString(ids[^1])}&limit={pageSize}>; rel=\"next\"";
            }
            var result = new List<DocumentSummary>();
            foreach (var id in ids)
            {
                // A live document's summary comes from its actor; a closed one's from its file.
                var summary = await registry.AskIfLiveAsync(id, new ReadSummary(), null) ?? listed?.GetValueOrDefault(id) ?? catalog.ReadSummary(id);
                if (summary is not null)
                {
                    result.Add(summary);
                }
            }
            return Results.Ok(result);
        });

        docs.MapGet("/{id}", async (string id, string? version, string? at, HttpContext http, DocumentRegistry registry, DocumentCatalog catalog) =>
        {
            Require(http, id, DocumentAccess.Read);
            CheckExists(id, registry);
            if (version is not null || at is not null)
            {
                return await AnswerPastAsync(http, id, version, at, registry, catalog);
            }
            var doc = await registry.AskAsync(id, () => new ReadText()) ?? throw CollabError.NotFound(id, registry.MovedTo(id));
            return Results.Ok(DocumentJson(id, doc.Version, doc.Content));
        });

        docs.MapGet("/{id}/ops", async (string id, int? from, int? limit, HttpContext http, DocumentRegistry registry) =>
        {
            Require(http, id, DocumentAccess.Read);
            CheckExists(id, registry);
            var ops = await registry.AskAsync(id, () => new ReadOps(from ?? 0, Math.Clamp(limit ?? 1000, 1, 10_000)));
            return Results.Ok(ops ?? throw CollabError.NotFound(id));
        });

        docs.MapPut("/{id}", async (string id, HttpRequest request, DocumentRegistry registry, IDocumentStorage storage, CreationBudget creations, IOptions<CollabOptions> options) =>
        {
            Require(request.HttpContext, id, DocumentAccess.Edit);
            var limit = options.Value.MaxRestBodyBytes;
            CheckContentLength(request, limit);
            // A PUT that creates the document spends its subject's creation budget before anything
            // is read or written (a document only joined has no file yet: its first write creates it).
            if (!storage.Exists(id))
            {
                creations.Take(request.HttpContext);
            }
            await ToOwnerBeforeBodyAsync(request.HttpContext, id, registry);
            var content = await ReadContentAsync(request, limit);
            var version = await registry.AskAsync(id, () => new ReplaceText(content, By(request.HttpContext, OpAuthorship.RestEdit)));
            return Results.Ok(new { id, version });
        });

        // ?version=V: only if the head is V (else 409 conflict), checked on the document's loop.
        // ?movedTo=NEW: a rename; {id} then redirects to NEW (PROTOCOL §7).
        docs.MapDelete("/{id}", async (string id, string? version, string? movedTo, HttpContext http, DocumentRegistry registry) =>
        {
            RequireAdmin(http);
            CheckExists(id, registry);
            int? expected = null;
            if (version is not null)
            {
                expected = int.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var v)
                    ? v
                    : throw CollabError.InvalidOp("version is a whole number, 0 or more");
            }
            if (movedTo is not null)
            {
                if (!DocumentId.IsValid(movedTo) || movedTo == id)
                {
                    throw CollabError.InvalidOp("movedTo is the id of another document");
                }
                if (!registry.Exists(movedTo))
                {
                    throw CollabError.InvalidOp($"movedTo names document '{movedTo}', which does not exist: write it first");
                }
            }
            if (registry.IsQuarantined(id))
            {
                // No actor loads it, and its version is unknown: only a delete without a version removes it.
                return expected is not null
                    ? throw new CollabError(ErrorCodes.Conflict, $"document '{id}' is quarantined: its version is unknown; delete it without ?version=")
                    : registry.DeleteIfQuarantined(id, movedTo) ? Results.NoContent() : throw CollabError.NotFound(id);
            }
            var deleted = await registry.AskAsync(id, () => new DeleteDocument(expected, movedTo));
            return deleted ? Results.NoContent() : throw CollabError.NotFound(id, registry.MovedTo(id));
        });

        MapHistory(docs);
        ClusterApi.MapMove(docs);
    }

    /// <summary>
    /// The string <paramref name="field"/> of a JSON object body of at most <paramref name="limit"/>
    /// bytes, or null if the body is not such JSON (System.Text.Json refuses lone surrogates, which is
    /// what we want). A larger body is <c>too_large</c>.
    /// </summary>
    internal static async Task<string?> ReadStringFieldAsync(HttpRequest request, string field, long limit)
    {
        using var body = await ReadJsonAsync(request, limit);
        return body?.RootElement is { ValueKind: JsonValueKind.Object } root ? ReadStringOrNull(root, field) : null;
    }

    /// <summary>
    /// A document as REST answers it: <c>{id, version, text}</c> for text; <c>{id, version, type,
    /// delta, text}</c> for rich text, whose <c>text</c> is the text of its string inserts.
    /// </summary>
    internal static Dictionary<string, object?> DocumentJson(string id, int version, DocContent content)
    {
        var json = new Dictionary<string, object?> { ["id"] = id, ["version"] = version };
        if (content is RichContent rich)
        {
            json["type"] = rich.Type.Name;
            json["delta"] = rich.Value;
        }
        json["text"] = content.PlainText();
        return json;
    }

    /// <summary>
    /// A PUT's content: <c>{"text": "..."}</c> for a text document, <c>{"type": "rich-text",
    /// "delta": [...]}</c> for a rich-text one (PROTOCOL §7); made on the document's loop, where a
    /// refusal (a lone surrogate, a delta that is not a document) fails the request only.
    /// </summary>
    private static async Task<Func<DocContent>> ReadContentAsync(HttpRequest request, long limit)
    {
        const string shape = "the body must be JSON {\"text\": \"...\"} with well-formed UTF-16 text, or {\"type\": \"rich-text\", \"delta\": [...]} with a delta of inserts";
        using var body = await ReadJsonAsync(request, limit);
        if (body?.RootElement is not { ValueKind: JsonValueKind.Object } root)
        {
            throw CollabError.InvalidOp(shape);
        }
        var type = root.TryGetProperty("type", out var named) ? named.ValueKind == JsonValueKind.String ? named.GetString() : "" : null;
        if (DocumentType.Named(type) is not { } documentType)
        {
            throw CollabError.InvalidOp($"there is no document type '{type}': text or rich-text");
        }
        if (documentType == DocumentType.RichText)
        {
            if (!root.TryGetProperty("delta", out var deltaJson) || deltaJson.ValueKind != JsonValueKind.Array)
            {
                throw CollabError.InvalidOp(shape);
            }
            var delta = deltaJson.Deserialize<Collab.Ot.Delta>()!;
            return () => RichTextType.FromDelta(delta);
        }
        var text = ReadStringOrNull(root, "text") ?? throw CollabError.InvalidOp(shape);
        return () => TextType.FromText(text);
    }

    /// <summary>The string <paramref name="field"/> of <paramref name="root"/>; null when it is missing, not a string, or not well-formed UTF-16.</summary>
    private static string? ReadStringOrNull(JsonElement root, string field)
    {
        try
        {
            return root.TryGetProperty(field, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>A JSON body of at most <paramref name="limit"/> bytes, or null when it is not JSON; <c>too_large</c> past the limit.</summary>
    private static async Task<JsonDocument?> ReadJsonAsync(HttpRequest request, long limit)
    {
        CheckContentLength(request, limit);
        try
        {
            // Counted as read, so the limit holds for a chunked body (no Content-Length) too.
            await using var capped = CappedBody.Open(request, limit, () => new CollabError(ErrorCodes.TooLarge, $"the body is larger than {limit} bytes"));
            return await JsonDocument.ParseAsync(capped);
        }
        catch (JsonException)
        {
            return null;
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw new CollabError(ErrorCodes.TooLarge, $"the body is larger than {limit} bytes");
        }
    }

    /// <summary>A body whose <c>Content-Length</c> is over <paramref name="limit"/> is <c>too_large</c> before a byte of it is read (or forwarded).</summary>
    internal static void CheckContentLength(HttpRequest request, long limit)
    {
        if (request.ContentLength > limit)
        {
            throw new CollabError(ErrorCodes.TooLarge, $"the body is larger than {limit} bytes");
        }
    }

    /// <summary>
    /// In a cluster, loads the document here before its request's body is read: a document another
    /// node owns throws <see cref="Cluster.NotOwnerException"/>, and the request goes to the owner
    /// with its body unread, streamed through (<see cref="Cluster.OwnerForwarder"/>), never held here.
    /// </summary>
    internal static async Task ToOwnerBeforeBodyAsync(HttpContext http, string id, DocumentRegistry registry)
    {
        if (http.RequestServices.GetRequiredService<Cluster.IDocumentOwnership>().Clustered)
        {
            await registry.AskAsync(id, () => new LoadDocument());
        }
    }

    /// <summary>A server write of <paramref name="kind"/> on behalf of the request's caller, as history records it.</summary>
    internal static OpAuthorship By(HttpContext http, string kind)
    {
        var identity = ConnectionIdentity.From(http.User);
        return new OpAuthorship(kind, identity.Subject, identity.Name);
    }

    /// <summary>Refuses the request unless its identity may do <paramref name="needed"/> with the document (PROTOCOL §8).</summary>
    internal static void Require(HttpContext http, string id, DocumentAccess needed)
    {
        CheckId(id);
        var policy = http.RequestServices.GetRequiredService<IDocumentAccessPolicy>();
        var identity = Authenticated(http, policy);
        if (policy.For(identity, id) < needed)
        {
            throw new CollabError(ErrorCodes.Forbidden, $"your token does not grant {(needed is DocumentAccess.Edit ? "editing" : "reading")} document '{id}'");
        }
    }

    /// <summary>Refuses the request unless its identity has <c>collab:admin</c>.</summary>
    internal static void RequireAdmin(HttpContext http)
    {
        var policy = http.RequestServices.GetRequiredService<IDocumentAccessPolicy>();
        if (!policy.IsAdmin(Authenticated(http, policy)))
        {
            throw new CollabError(ErrorCodes.Forbidden, "this needs the collab:admin grant");
        }
    }

    /// <summary>The request's identity; <c>unauthorized</c> when a token is needed and there is none.</summary>
    internal static ConnectionIdentity Authenticated(HttpContext http) => Authenticated(http, http.RequestServices.GetRequiredService<IDocumentAccessPolicy>());

    private static ConnectionIdentity Authenticated(HttpContext http, IDocumentAccessPolicy policy)
    {
        var identity = ConnectionIdentity.From(http.User);
        if (!policy.Open && !identity.IsAuthenticated)
        {
            throw new CollabError(ErrorCodes.Unauthorized, "a bearer token is required (Authorization: Bearer ...)");
        }
        return identity;
    }

    private static void CheckId(string id)
    {
        if (!DocumentId.IsValid(id))
        {
            throw CollabError.InvalidDocId();
        }
    }

    internal static void CheckExists(string id, DocumentRegistry registry)
    {
        CheckId(id);
        if (!registry.Exists(id))
        {
            // A renamed document's 404 says where it went (movedTo).
            throw CollabError.NotFound(id, registry.MovedTo(id));
        }
    }
}
