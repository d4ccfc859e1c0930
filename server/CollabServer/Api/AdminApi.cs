using Collab;
using CollabServer.Errors;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabServer.Api;

/// <summary>Administration endpoints (PROTOCOL §7): <c>POST /api/admin/backup</c>.</summary>
public static class AdminApi
{
    public static void MapAdminApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin").AnswerErrors();

        // { "name": "..." } → a consistent online copy of every document's database (SQLite's
        // backup API) in {Collab:Backup:Dir or DataDir/backups}/{name}/docs/{id}.db. It is built
        // under {name}.partial and renamed when complete, so a folder with the name is whole.
        admin.MapPost("/backup", async (HttpContext http, DocumentCatalog catalog, IOptions<CollabOptions> options) =>
        {
            DocumentsApi.RequireAdmin(http);
            var name = await DocumentsApi.ReadStringFieldAsync(http.Request, "name", DocumentsApi.SmallBodyBytes);
            if (name is null || !DocumentId.IsValid(name))
            {
                throw CollabError.InvalidOp("the body is {\"name\": NAME}, a name made like a document id");
            }
            var root = Path.GetFullPath(options.Value.Backup.Dir ?? Path.Combine(catalog.DataDir, "backups"));
            var target = Path.Combine(root, name);
            var partial = target + ".partial";
            if (Directory.Exists(target) || Directory.Exists(partial))
            {
                // 409, with the closed list's invalid_op as its type (PROTOCOL §5 has no code of its own for this).
                return Results.Problem(type: ErrorCodes.InvalidOp, title: $"a backup named '{name}' exists (or is being taken)", statusCode: StatusCodes.Status409Conflict);
            }
            Directory.CreateDirectory(partial);
            try
            {
                var (documents, bytes) = await Task.Run(() =>
                {
                    int count = 0;
                    long total = 0;
                    foreach (var id in catalog.ListIds().Order(StringComparer.Ordinal))
                    {
                        if (catalog.CopyOnline(id, Path.Combine(partial, "docs", id + ".db")) is { } size)
                        {
                            count++;
                            total += size;
                        }
                    }
                    return (count, total);
                });
                Directory.Move(partial, target);
                return Results.Ok(new { name, documents, bytes });
            }
            catch
            {
                Directory.Delete(partial, recursive: true);
                throw;
            }
        });
    }
}
