using System.Diagnostics;
using Collab;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;
using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>An op row as the log stores it: the op is its JSON text, exactly as written.</summary>
public sealed record OpRow(int Version, string ClientId, long OpId, long CreatedAtMs, string Op);

/// <summary>
/// Where every document's storage is, and the only code that knows: it lists documents, tells
/// whether one exists, opens, creates and deletes its database, and reads a summary without
/// loading it. Today each document is <c>{DataDir}/docs/{id}.db</c> (ids are validated by
/// <see cref="DocumentId"/>, so they are safe as file names); ownership (which node may write a
/// document) is to be answered here too.
/// </summary>
public sealed class DocumentCatalog(IOptions<CollabOptions> options) : IDocumentStorage
{
    private readonly CollabOptions _options = options.Value;

    /// <summary>The data directory as configured (relative to the working directory unless absolute).</summary>
    public string DataDir => _options.DataDir;

    private string DocsDir => Path.Combine(_options.DataDir, "docs");

    /// <summary>Whether SQLite moves a document's WAL into its database by itself; under the node log, the log's checkpoint does, off the document's loop.</summary>
    private bool AutoCheckpoint => _options.CommitLog == CommitLogMode.Document || _options.UsesPostgres;

    /// <summary>A document's database file (its WAL is beside it, with <c>-wal</c> appended).</summary>
    public string DatabasePath(string docId) => PathFor(docId);

    private string PathFor(string docId)
    {
        Debug.Assert(DocumentId.IsValid(docId));
        return Path.Combine(DocsDir, docId + ".db");
    }

    private const string QuarantineSuffix = ".quarantined";

    /// <summary>Whether the document has a database (a quarantined one counts: it can be deleted).</summary>
    public bool Exists(string docId) => File.Exists(PathFor(docId)) || IsQuarantined(docId);

    /// <summary>The ids of every document with a database, quarantined ones included, in no particular order.</summary>
    public IEnumerable<string> ListIds() =>
        Directory.Exists(DocsDir)
            ? Directory.EnumerateFiles(DocsDir, "*.db")
                .Select(f => Path.GetFileName(f)[..^3])
                .Concat(Directory.EnumerateFiles(DocsDir, "*.db" + QuarantineSuffix).Select(f => Path.GetFileName(f)[..^(3 + QuarantineSuffix.Length)]))
                .Where(DocumentId.IsValid)
                .Distinct(StringComparer.Ordinal)
            : [];

    /// <summary>Whether the document's database was set aside as damaged.</summary>
    public bool IsQuarantined(string docId) => File.Exists(PathFor(docId) + QuarantineSuffix);

    /// <summary>
    /// Sets a damaged database aside (<c>{id}.db.quarantined</c>, with its WAL): the document is
    /// unavailable, listed as quarantined, and kept for inspection until an admin deletes it.
    /// </summary>
    public void Quarantine(string docId)
    {
        var path = PathFor(docId);
        // The database first: once it is moved the document counts as quarantined, so a failure
        // after it never leaves the database to be loaded without its WAL.
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            if (File.Exists(path + suffix))
            {
                File.Move(path + suffix, path + QuarantineSuffix + suffix, overwrite: true);
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="error"/>, met while opening or loading a database, means the file
    /// itself is damaged (not a passing fault such as a full disk or a lock).
    /// </summary>
    public static bool IsDamage(Exception error) => error switch
    {
        InvalidDataException => true,
        // SQLITE_CORRUPT, SQLITE_NOTADB, and an error on a file without our schema.
        SqliteException { SqliteErrorCode: 11 or 26 } => true,
        SqliteException { SqliteErrorCode: 1 } e => e.Message.Contains("no such table", StringComparison.Ordinal),
        _ => false,
    };

    /// <summary>Opens the document's database, or returns null when it has none.</summary>
    public IDocumentStore? OpenExisting(string docId) => SqliteDocumentStore.OpenExisting(PathFor(docId), _options.DocumentSync, _options.History.SnapshotSpacing, AutoCheckpoint);

    /// <summary>Creates the document's (empty) database.</summary>
    public IDocumentStore Create(string docId, DocumentType? type = null) => Create(docId, null, type);

    /// <summary>Creates the document's (empty) database for the given life of it (a copy of a document PostgreSQL holds), or a new one.</summary>
    internal SqliteDocumentStore Create(string docId, long? incarnation, DocumentType? type) =>
        SqliteDocumentStore.Create(PathFor(docId), _options.DocumentSync, _options.History.SnapshotSpacing, AutoCheckpoint, incarnation, type);

    /// <summary>
    /// Opens the document's database for reading its past on a connection of its own (read-only;
    /// WAL lets it read beside the actor's writes), or returns null when the document has none.
    /// Throws <see cref="Errors.CollabError"/> <c>unavailable</c> for a quarantined document.
    /// </summary>
    public HistoryReader? OpenHistory(string docId)
    {
        if (IsQuarantined(docId))
        {
            throw Errors.CollabError.Quarantined(docId);
        }
        return HistoryReader.Open(PathFor(docId));
    }

    /// <summary>
    /// What retention would fold in the document (see <see cref="SqliteDocumentStore.PlanFold"/>),
    /// read without its actor; null when nothing is old enough or it is quarantined. The document's
    /// owner writes the fold.
    /// </summary>
    public FoldPlan? PlanFold(string docId, long cutoffMs, int? keepAfter = null) =>
        IsQuarantined(docId) ? null : SqliteDocumentStore.PlanFold(PathFor(docId), cutoffMs, keepAfter);

    /// <summary>Deletes a closed document's files, or its quarantined ones.</summary>
    public void Delete(string docId)
    {
        SqliteDocumentStore.DeleteFiles(PathFor(docId));
        SqliteDocumentStore.DeleteFiles(PathFor(docId) + QuarantineSuffix);
    }

    /// <summary>
    /// The committed ops with version &gt; <paramref name="after"/>, oldest first, at most
    /// <paramref name="limit"/>, as the log stores them (the op as its JSON text), read on a
    /// read-only connection of its own beside the actor's writes; empty when the document has no database.
    /// </summary>
    public List<OpRow> ReadOpRows(string docId, int after, int limit)
    {
        var path = PathFor(docId);
        var rows = new List<OpRow>();
        if (!File.Exists(path))
        {
            return rows;
        }
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, client_id, op_id, op, created_at FROM ops WHERE version > $a ORDER BY version LIMIT $l";
        command.Parameters.AddWithValue("$a", after);
        command.Parameters.AddWithValue("$l", limit);
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(new OpRow(reader.GetInt32(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(4), reader.GetString(3)));
        }
        return rows;
    }

    /// <summary>
    /// Copies a document's database to <paramref name="destination"/> with SQLite's online backup
    /// API: a consistent copy of its last commit, taken while the actor goes on writing. Returns
    /// the copy's size in bytes, or null when the document has no database (or is quarantined).
    /// </summary>
    public long? CopyOnline(string docId, string destination)
    {
        var path = PathFor(docId);
        if (!File.Exists(path))
        {
            return null;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
        using (var source = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString()))
        using (var target = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = destination, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString()))
        {
            source.Open();
            target.Open();
            // The copy stays in WAL mode like every document; closing it checkpoints, so it is one file.
            source.BackupDatabase(target);
        }
        return new FileInfo(destination).Length;
    }

    /// <summary>A document's summary read from its database without loading it; null when it has none or it cannot be read.</summary>
    public DocumentSummary? ReadSummary(string docId)
    {
        if (IsQuarantined(docId) && !File.Exists(PathFor(docId)))
        {
            return new DocumentSummary(docId, 0, 0, File.GetLastWriteTimeUtc(PathFor(docId) + QuarantineSuffix)) { State = DocumentSummary.Quarantined };
        }
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
