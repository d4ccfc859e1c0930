using System.Diagnostics;
using Collab;
using CollabServer.Storage;
using Microsoft.Extensions.Options;
using CollabServer.Documents.Types;

namespace CollabServer.Backup;

/// <summary>
/// <c>CollabServer rebuild --from BACKUP_DIR --to DATA_DIR</c> (or <c>--from-postgres CONNECTION</c>,
/// see <see cref="FromPostgres"/>): rebuilds every document of a
/// continuous backup (<see cref="BackupShipper"/>) into an empty data directory. It first reads
/// every batch file and checks every checksum, that each document's versions run from 1
/// without a gap or a duplicate, that each file's name fits its size, and that every op applies to
/// the text before it; anything wrong stops it (exit 1, a sentence on standard error) before it
/// writes a thing, naming the file and the byte offset or op. Then it writes each document through the server's own store
/// (ops, the length after each, and snapshots every <c>Collab:SnapshotInterval</c> ops), so the
/// result loads like any document. Other settings are read like the server's
/// (<c>--Collab:Sync=...</c>, <c>--Collab:History:SnapshotSpacing=...</c>).
/// </summary>
public static class RebuildCommand
{
    public static int Run(string[] args)
    {
        try
        {
            return RunChecked(args);
        }
        catch (Exception ex)
        {
            // A command ends with a sentence and an exit code, never with an unhandled exception.
            Console.Error.WriteLine($"rebuild failed: {ex.GetType().Name}: {ex.Message}");
            return 1;
        }
    }

    private static int RunChecked(string[] args)
    {
        string? from = null, to = null, postgres = null;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--from" && i + 1 < args.Length)
            {
                from = args[++i];
            }
            else if (args[i] == "--from-postgres" && i + 1 < args.Length)
            {
                postgres = args[++i];
            }
            else if (args[i] == "--to" && i + 1 < args.Length)
            {
                to = args[++i];
            }
            else
            {
                rest.Add(args[i]);
            }
        }
        if ((from is null) == (postgres is null) || to is null)
        {
            Console.Error.Write(CommandLine.RebuildUsage);
            Console.Error.WriteLine();
            return 2;
        }
        var configuration = CommandConfiguration.Build(rest);
        var options = configuration.GetSection(CollabOptions.Section).Get<CollabOptions>() ?? new CollabOptions();
        options.DataDir = to;
        if (from is null)
        {
            return FromPostgres(postgres!, to, options); // exactly one of the two was given
        }
        var docsDir = Path.Combine(from, "docs");
        if (!Directory.Exists(docsDir))
        {
            Console.Error.WriteLine($"{Path.GetFullPath(from)} is not a backup: it has no docs/ folder.");
            return 2;
        }
        if (Directory.Exists(to) && Directory.EnumerateFileSystemEntries(to).Any())
        {
            Console.Error.WriteLine($"{Path.GetFullPath(to)} is not empty; rebuild writes only into an empty (or new) data directory.");
            return 2;
        }

        // 1. Read and check everything: files, checksums, versions, and that every op applies to
        // the text before it. Nothing is written unless all of it holds.
        List<(string Id, DocumentType Type, List<(string Path, int First, int Last)> Batches)> documents;
        long files, ops, bytes;
        try
        {
            var refusal = Check(docsDir, options, out documents, out files, out ops, out bytes);
            if (refusal is not null)
            {
                Console.Error.WriteLine($"corrupt backup, nothing written: {refusal}");
                return 1;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"the backup cannot be read, nothing written: {ex.Message}");
            return 1;
        }
        Console.WriteLine($"checked {files} batch files, {ops} ops, {bytes} bytes: every checksum matches and every op applies");

        // 2. Write every document through the real store.
        try
        {
            Write(to, documents, options, ops);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException or InvalidDataException)
        {
            Console.Error.WriteLine($"writing {Path.GetFullPath(to)} failed (the backup was checked; this is the target's disk): {ex.Message}");
            return 1;
        }
        return 0;
    }

    /// <summary>
    /// Reads every batch file under <paramref name="docsDir"/> and checks it: names that are batch
    /// names and plausible for the file's size (before reading it), checksums, versions from 1
    /// without a gap or a repeat, every op well-formed and applying to the text before it, the text
    /// within <c>Collab:MaxDocumentLength</c>, and no (client id, op id) twice. Returns why the backup
    /// is refused (the file and offset), or null with the documents to write.
    /// </summary>
    private static string? Check(string docsDir, CollabOptions options, out List<(string Id, DocumentType Type, List<(string Path, int First, int Last)> Batches)> documents, out long files, out long ops, out long bytes)
    {
        documents = [];
        files = ops = bytes = 0;
        foreach (var dir in Directory.EnumerateDirectories(docsDir).Order(StringComparer.Ordinal))
        {
            var id = Path.GetFileName(dir);
            if (!DocumentId.IsValid(id))
            {
                Console.Error.WriteLine($"{dir}: not a document id; skipped.");
                continue;
            }
            foreach (var file in Directory.EnumerateFiles(dir, "*" + BackupFormat.Extension))
            {
                if (BackupFormat.ParseName(Path.GetFileName(file)) is null)
                {
                    return $"{file}: offset 0: not a batch file name (FIRST-LAST{BackupFormat.Extension}, versions from 1)";
                }
            }
            var batches = BackupFormat.ListBatches(dir);
            long expected = 1;
            // Batch files hold ops only: a document's type is its ops' (DocumentType.OfStoredOp),
            // found at its first op that is not the empty op, which changes nothing in either type.
            DocumentType? type = null;
            var text = DocumentType.Text.Empty;
            var opIds = new HashSet<(string ClientId, long OpId)>();
            foreach (var (path, first, last) in batches)
            {
                if (first != expected)
                {
                    return $"{path}: offset 0: document '{id}' jumps from version {expected - 1} to {first} (a batch is missing or repeated)";
                }
                List<OpRow> rows;
                try
                {
                    rows = BackupFormat.Read(path, first, last);
                }
                catch (InvalidDataException ex)
                {
                    return ex.Message;
                }
                foreach (var row in rows)
                {
                    var shape = DocumentType.OfStoredOp(row.Op);
                    if (type is null && (shape != DocumentType.Text || row.Op.Trim() != "[]"))
                    {
                        type = shape;
                        text = type.Empty;
                    }
                    DocOp op;
                    try
                    {
                        op = SqliteDocumentStore.ParseOp(type ?? DocumentType.Text, row.Version, row.Op);
                    }
                    catch (Exception ex) when (ex is InvalidDataException or System.Text.Json.JsonException or NotSupportedException or ArgumentException or NullReferenceException)
                    {
                        return $"{path}: op {row.Version} of '{id}' is not an op: {ex.Message}";
                    }
                    if (op.Validate(text) is { } error)
                    {
                        return $"{path}: op {row.Version} of '{id}' does not apply to the text before it: {error}";
                    }
                    if ((long)text.Length + op.LengthDelta > options.MaxDocumentLength)
                    {
                        return $"{path}: op {row.Version} of '{id}' makes the text {(long)text.Length + op.LengthDelta} code units long, over Collab:MaxDocumentLength ({options.MaxDocumentLength})";
                    }
                    if (!opIds.Add((row.ClientId, row.OpId)))
                    {
                        return $"{path}: op {row.Version} of '{id}' repeats op id {row.OpId} of client '{row.ClientId}'";
                    }
                    text = op.Apply(text);
                }
                expected = (long)last + 1;
                files++;
                bytes += new FileInfo(path).Length;
            }
            ops += expected - 1;
            if (batches.Count > 0)
            {
                documents.Add((id, type ?? DocumentType.Text, batches));
            }
        }
        return null;
    }

    /// <summary>Writes the checked documents into <paramref name="to"/> through the server's own store.</summary>
    private static void Write(string to, List<(string Id, DocumentType Type, List<(string Path, int First, int Last)> Batches)> documents, CollabOptions options, long ops)
    {
        var catalog = new DocumentCatalog(Options.Create(options));
        Directory.CreateDirectory(to);
        var started = Stopwatch.StartNew();
        var snapshotEvery = Math.Max(1, options.SnapshotInterval);
        foreach (var (id, type, batches) in documents)
        {
            var text = type.Empty;
            var version = 0;
            using (var store = catalog.Create(id, type))
            {
                var group = new List<StoredOp>(snapshotEvery);
                void CommitGroup()
                {
                    store.Commit(group, text.Length, SqliteDocumentStore.ChunksOf(version, text), FenceToken.None);
                    group.Clear();
                }
                foreach (var (path, first, last) in batches)
                {
                    // Checked above; read again so only one document's ops are in memory at a time.
                    foreach (var row in BackupFormat.Read(path, first, last))
                    {
                        var op = SqliteDocumentStore.ParseOp(type, row.Version, row.Op);
                        text = op.Apply(text);
                        version = row.Version;
                        group.Add(new StoredOp(row.Version, op, row.ClientId, row.OpId, row.CreatedAtMs));
                        if (group.Count == snapshotEvery)
                        {
                            CommitGroup();
                        }
                    }
                }
                if (group.Count > 0)
                {
                    CommitGroup();
                }
            }
            Console.WriteLine($"{id}: version {version}, {text.Length} chars, {batches.Count} batch files");
        }
        Console.WriteLine($"rebuilt {documents.Count} documents, {ops} ops into {Path.GetFullPath(to)} in {started.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>
    /// <c>rebuild --from-postgres CONNECTION --to DATA_DIR</c>: every live document PostgreSQL holds
    /// (the durable tier of <c>Collab:Postgres</c>) becomes a database in an empty data directory,
    /// as the working copy a node makes, with PostgreSQL's ops, snapshots and oldest version kept;
    /// each is loaded once to check it gives PostgreSQL's length. PostgreSQL is only read. The
    /// result serves as a single node's data directory (without <c>Collab:Postgres</c>).
    /// </summary>
    private static int FromPostgres(string connection, string to, CollabOptions options)
    {
        if (Directory.Exists(to) && Directory.EnumerateFileSystemEntries(to).Any())
        {
            Console.Error.WriteLine($"{Path.GetFullPath(to)} is not empty; rebuild writes only into an empty (or new) data directory.");
            return 2;
        }
        var database = new Storage.Postgres.PostgresDatabase(connection);
        var catalog = new DocumentCatalog(Options.Create(options));
        Directory.CreateDirectory(to);
        var started = Stopwatch.StartNew();
        long documents = 0, ops = 0;
        try
        {
            string? after = null;
            while (database.List(after, 1000) is { Count: > 0 } page)
            {
                foreach (var summary in page)
                {
                    if (database.Find(summary.Id) is not { Deleted: false } row)
                    {
                        continue; // deleted since it was listed
                    }
                    var (rows, chunks, snapshots) = database.ReadAfter(row.Id, 0);
                    using (var store = catalog.Create(row.Id, row.Incarnation, row.Type))
                    {
                        store.CatchUp(0, rows, chunks, snapshots, row.Version, row.Epoch, row.CreatedAtMs, (row.RetainedFrom, row.RetainedFromAtMs));
                        var loaded = store.Load();
                        if (loaded.Version != row.Version || loaded.Content.Length != row.Length)
                        {
                            Console.Error.WriteLine($"'{row.Id}': PostgreSQL has version {row.Version}, {row.Length} chars; its ops load as version {loaded.Version}, {loaded.Content.Length} chars.");
                            return 1;
                        }
                    }
                    documents++;
                    ops += rows.Count;
                    Console.WriteLine($"{row.Id}: version {row.Version}, {row.Length} chars, {rows.Count} ops");
                }
                after = page[^1].Id;
            }
        }
        catch (Errors.CollabError ex)
        {
            Console.Error.WriteLine($"PostgreSQL ({database.Description}): {ex.Message}");
            return 1;
        }
        Console.WriteLine($"rebuilt {documents} documents, {ops} ops from PostgreSQL {database.Description} into {Path.GetFullPath(to)} in {started.Elapsed.TotalSeconds:F1} s");
        return 0;
    }
}
