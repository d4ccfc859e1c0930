using System.Globalization;
using System.Text.Json;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Identity;
using CollabServer.Storage;
using Microsoft.Extensions.Options;
using Microsoft.Data.Sqlite;
using CollabServer.Documents.Types;

namespace CollabServer.Api;

// Reading the past and restoring it (PROTOCOL §7): GET /api/docs/{id}?version=N|at=T,
// GET /api/docs/{id}/history, POST /api/docs/{id}/restore. The past is read on a read-only
// connection of its own (DocumentCatalog.OpenHistory) on the thread pool, never on the
// document's actor; only the current text comes from the actor, and a restore is written
// through it like a PUT.
public static partial class DocumentsApi
{
    /// <summary>Entries per history page when <c>limit</c> is not given, and the most one page holds.</summary>
    internal const int DefaultHistoryPage = 50, MaxHistoryPage = 500;

    /// <summary>A history entry never spans a multiple of this many versions (see <see cref="HistoryReader.Entries"/>).</summary>
    internal const int HistoryEntrySpan = 10_000;

    /// <summary>Op rows one history page reads at most (it ends early, at an entry's end, with a next link).</summary>
    internal const int HistoryPageRows = 100_000;

    /// <summary>Largest restore body, in bytes.</summary>
    private const int MaxRestoreBodyBytes = 4096;

    private static void MapHistory(RouteGroupBuilder docs)
    {
        docs.MapGet("/{id}/history", async (string id, string? before, string? limit, HttpContext http, DocumentRegistry registry, DocumentCatalog catalog, PastReadLimits limits, IOptions<CollabOptions> options) =>
        {
            Require(http, id, DocumentAccess.Read);
            CheckExists(id, registry);
            using var subject = await limits.EnterSubjectAsync(http);
            int? beforeVersion = before is null ? null : ParseInt(before, "before");
            var pageSize = limit is null ? DefaultHistoryPage : ParseInt(limit, "limit");
            if (pageSize is < 1 or > MaxHistoryPage)
            {
                throw CollabError.InvalidOp($"limit is 1 to {MaxHistoryPage}");
            }
            var gapMs = (long)options.Value.History.GroupGap.TotalMilliseconds;
            var (entries, more) = await OffTheLoop(id, registry, catalog, limits, http.RequestAborted, history =>
            {
                var head = history?.Version ?? 0;
                var end = beforeVersion ?? head + 1;
                if (end < 1 || end > head + 1)
                {
                    throw CollabError.UnknownVersion($"before is 1 to the current version + 1 ({head + 1}), not {end}");
                }
                if (history is null)
                {
                    return ([], false);
                }
                var page = history.Entries(end, pageSize, gapMs, HistoryEntrySpan, HistoryPageRows, out var hasMore);
                return (page, hasMore);
            });
            if (more)
            {
                http.Response.Headers.Link = $"</api/docs/{id}/history?before={entries[^1].FromVersion}&limit={pageSize}>; rel=\"next\"";
            }
            // The author as history names it; never the token subject (PROTOCOL §8: clients see clientIds and names only).
            return Results.Ok(entries.Select(e => new
            {
                version = e.Version,
                fromVersion = e.FromVersion,
                at = e.At,
                clientId = e.ClientId,
                author = e.Author is { } by ? new { kind = by.Kind, name = by.Name } : null,
            }));
        });

        docs.MapPost("/{id}/restore", async (string id, HttpRequest request, DocumentRegistry registry, DocumentCatalog catalog, PastReadLimits limits) =>
        {
            CheckId(id);
            RequireAdmin(request.HttpContext);
            CheckExists(id, registry);
            await ToOwnerBeforeBodyAsync(request.HttpContext, id, registry);
            var (version, at) = await ReadRestoreBodyAsync(request);
            using var subject = await limits.EnterSubjectAsync(request.HttpContext);
            var (past, bytes) = await ReadPastAsync(id, version, at, registry, catalog, limits, request.HttpContext.RequestAborted);
            using var held = bytes;
            // Sequenced on the actor like a PUT: one op from whatever the text is now to the text
            // then, broadcast as an ordinary op; nothing is lost, so a restore can be restored away.
            var restored = await registry.AskAsync(id, () => new ReplaceText(() => past.Content, By(request.HttpContext, OpAuthorship.Restore)));
            return Results.Ok(new { id, version = restored });
        });
    }

    /// <summary>The document as it was (<c>?version=N</c> or <c>?at=ISO-8601</c>).</summary>
    internal sealed record PastDocument(string Id, int Version, DocContent Content, DateTimeOffset? At)
    {
        /// <summary>The answer's body: the document's fields (<see cref="DocumentJson"/>) and when the version was committed.</summary>
        public Dictionary<string, object?> ToJson()
        {
            var json = DocumentJson(Id, Version, Content);
            json["at"] = At;
            return json;
        }
    }

    /// <summary>
    /// <c>GET /api/docs/{id}?version=N|at=T</c>: the subject's share of past reads and the rebuilt
    /// text's share of the byte budget are held until the answer is written (<see cref="PastReadLimits"/>).
    /// </summary>
    private static async Task<IResult> AnswerPastAsync(HttpContext http, string id, string? version, string? at, DocumentRegistry registry, DocumentCatalog catalog)
    {
        var limits = http.RequestServices.GetRequiredService<PastReadLimits>();
        var subject = await limits.EnterSubjectAsync(http);
        try
        {
            var (past, bytes) = await ReadPastAsync(id, version, at, registry, catalog, limits, http.RequestAborted);
            return new HeldResult(Results.Ok(past.ToJson()), bytes, subject);
        }
        catch
        {
            subject.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The text at a version given as <paramref name="version"/> or <paramref name="at"/> (exactly
    /// one): older versions from the history reader, the current one from the actor when it is live.
    /// A rebuilt text comes with its reservation in the byte budget (null for the actor's text), for
    /// the caller to hold until it is done with the text.
    /// </summary>
    private static async Task<(PastDocument Past, IDisposable? Bytes)> ReadPastAsync(string id, string? version, string? at, DocumentRegistry registry, DocumentCatalog catalog, PastReadLimits limits, CancellationToken cancellationToken)
    {
        if ((version is null) == (at is null))
        {
            throw CollabError.InvalidOp("give either version or at, not both");
        }
        int? wanted = version is null ? null : ParseInt(version, "version");
        long? atMs = at is null ? null : ParseInstant(at);
        var (resolved, committedAt, head, length) = await OffTheLoop(id, registry, catalog, limits, cancellationToken, history =>
        {
            var head = history?.Version ?? 0;
            var v = wanted ?? (history is null ? 0 : history.VersionAt(atMs!.Value)
                ?? throw CollabError.UnknownVersion($"{at} is before the document was created ({DateTimeOffset.FromUnixTimeMilliseconds(history.CreatedAtMs):O})"));
            if (v < 0 || v > head)
            {
                throw CollabError.UnknownVersion($"version {v} is not between 0 and the current version {head}");
            }
            DateTimeOffset? when = history is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(history.CommittedAtMs(v));
            return (v, when, head, history?.LengthAt(v) ?? 0);
        });
        if (resolved == head && await registry.AskIfLiveAsync(id, new ReadText(), null) is { } live && live.Version == resolved)
        {
            // The current version is the actor's text, if it is live (no replay at all).
            return (new PastDocument(id, resolved, live.Content, committedAt), null);
        }
        // Rebuilt from storage: it waits for room in the node's budget of texts in flight.
        var bytes = await limits.ReserveAsync(length, cancellationToken);
        try
        {
            var content = await OffTheLoop(id, registry, catalog, limits, cancellationToken,
                history => history?.ContentAt(resolved) ?? (resolved == 0 ? DocumentType.Text.Empty : throw CollabError.NotFound(id)));
            return (new PastDocument(id, resolved, content, committedAt), bytes);
        }
        catch
        {
            bytes.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="read"/> on the thread pool with a history reader (null when the document
    /// has no database yet), once one of the node's storage permits for past reads is free.
    /// </summary>
    private static async Task<T> OffTheLoop<T>(string id, DocumentRegistry registry, DocumentCatalog catalog, PastReadLimits limits, CancellationToken cancellationToken, Func<HistoryReader?, T> read)
    {
        if (registry.CopiesNeedLoad)
        {
            // Loaded here first: a node that does not own it answers by forwarding to the owner.
            await registry.AskAsync(id, () => new ReadSummary());
        }
        return await limits.RunAsync(() => ReadHistory(id, catalog, read), cancellationToken);
    }

    private static T ReadHistory<T>(string id, DocumentCatalog catalog, Func<HistoryReader?, T> read)
    {
        try
        {
            using var history = catalog.OpenHistory(id);
            return read(history);
        }
        catch (Exception ex) when (ex is SqliteException or InvalidDataException)
        {
            throw CollabError.Unavailable($"the history of '{id}' could not be read");
        }
    }

    private static int ParseInt(string value, string name) =>
        int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var n)
            ? n
            : throw CollabError.InvalidOp($"{name} must be an integer, not '{value}'");

    /// <summary>An ISO-8601 instant (an offset or Z; without one it is taken as UTC) in Unix milliseconds.</summary>
    private static long ParseInstant(string value)
    {
        if (value.Length < 10 || !char.IsAsciiDigit(value[0]) || value[4] != '-'
            || !DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant))
        {
            throw CollabError.InvalidOp($"at must be an ISO-8601 instant such as 2025-06-01T12:00:00.123Z, not '{value}' (a '+' in a query string is written %2B)");
        }
        return instant.ToUnixTimeMilliseconds();
    }

    /// <summary>The restore body: <c>{ "version": N }</c> or <c>{ "at": "ISO-8601" }</c>, as the strings <see cref="ReadPastAsync"/> takes.</summary>
    private static async Task<(string? Version, string? At)> ReadRestoreBodyAsync(HttpRequest request)
    {
        const string Shape = "the body must be JSON { \"version\": N } or { \"at\": \"ISO-8601\" }";
        if (request.ContentLength > MaxRestoreBodyBytes)
        {
            throw CollabError.InvalidOp(Shape);
        }
        try
        {
            // Counted as read: a chunked body (no Content-Length) is held to the same bound.
            await using var capped = CappedBody.Open(request, MaxRestoreBodyBytes, () => CollabError.InvalidOp(Shape));
            using var body = await JsonDocument.ParseAsync(capped, new JsonDocumentOptions { MaxDepth = 4 });
            var root = body.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw CollabError.InvalidOp(Shape);
            }
            var hasVersion = root.TryGetProperty("version", out var version);
            var hasAt = root.TryGetProperty("at", out var at);
            if (hasVersion && !hasAt && version.ValueKind == JsonValueKind.Number && version.TryGetInt32(out var n))
            {
                return (n.ToString(CultureInfo.InvariantCulture), null);
            }
            if (hasAt && !hasVersion && at.ValueKind == JsonValueKind.String)
            {
                return (null, at.GetString());
            }
            throw CollabError.InvalidOp(Shape);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            throw CollabError.InvalidOp(Shape);
        }
    }
}
