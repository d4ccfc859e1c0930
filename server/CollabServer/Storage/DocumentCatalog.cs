using System.Diagnostics;
using Collab;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace CollabServer.Storage;

/// <summary>
/// Where every document's storage is, and the only code that knows: it lists documents, tells
/// whether one exists, opens, creates and deletes its database, and reads a summary without
/// loading it. Today each document is <c>{DataDir}/docs/{id}.db</c> (ids are validated by
/// <see cref="DocumentId"/>, so they are safe as file names); ownership (which node may write a
/// document) is to be answered here too.
/// </summary>
public sealed class DocumentCatalog(IOptions<CollabOptions> options)
{
    private readonly CollabOptions _options = options.Value;

    /// <summary>The data directory as configured (relative to the working directory unless absolute).</summary>
    public string DataDir => _options.DataDir;

    private string DocsDir => Path.Combine(_options.DataDir, "docs");

    private string PathFor(string docId)
    {
        Debug.Assert(DocumentId.IsValid(docId));
        return Path.Combine(DocsDir, docId + ".db");
    }

    /// <summary>Whether the document has a database.</summary>
    public bool Exists(string docId) => File.Exists(PathFor(docId));

    /// <summary>The ids of every document with a database, in no particular order.</summary>
    public IEnumerable<string> ListIds() =>
        Directory.Exists(DocsDir)
            ? Directory.EnumerateFiles(DocsDir, "*.db").Select(f => Path.GetFileName(f)[..^3]).Where(DocumentId.IsValid)
            : [];

    /// <summary>Opens the document's database, or returns null when it has none.</summary>
    public IDocumentStore? OpenExisting(string docId) => SqliteDocumentStore.OpenExisting(PathFor(docId), _options.Sync);

    /// <summary>Creates the document's (empty) database.</summary>
    public IDocumentStore Create(string docId) => SqliteDocumentStore.Create(PathFor(docId), _options.Sync);

    /// <summary>Deletes a closed document's files.</summary>
    public void Delete(string docId) => SqliteDocumentStore.DeleteFiles(PathFor(docId));

    /// <summary>A document's summary read from its database without loading it; null when it has none or it cannot be read.</summary>
    public DocumentSummary? ReadSummary(string docId)
    {
        try
        {
            return SqliteDocumentStore.ReadSummary(PathFor(docId)) is { } s
                ? new DocumentSummary(docId, s.Version, s.Length, DateTimeOffset.FromUnixTimeMilliseconds(s.UpdatedAtMs))
                : null;
        }
        catch (SqliteException)
        {
            return null;
        }
    }
}
