using System.Text;
using System.Text.Json;
using Collab.Ot;
using CollabServer.Documents.Types;
using Microsoft.Data.Sqlite;

namespace CollabServer.Storage;

/// <summary>
/// One document's SQLite database: the op log, snapshots of the text, and metadata. Owned by
/// the document's actor, which is its only user, so nothing here locks. Every statement is
/// prepared once per open database. Only <see cref="DocumentCatalog"/> knows where the files are.
/// </summary>
public sealed class SqliteDocumentStore : IDocumentStore
{
    private const int SchemaVersion = 1;

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _insertOp;
    private readonly SqliteCommand _findOp;
    private readonly SqliteCommand _maxOpId;
    private readonly SqliteCommand _readEpoch;
    private readonly SqliteCommand _writeEpoch;
    private readonly SqliteCommand _writeConfirmed;

    private readonly int _historySpacing;

    /// <summary>The document's type, fixed when it was created (meta row <c>type</c>; none for text).</summary>
    public DocumentType Type { get; private init; } = DocumentType.Text;

    private SqliteDocumentStore(SqliteConnection connection, int historySpacing)
    {
        _connection = connection;
        _historySpacing = historySpacing;
        _insertOp = Prepare("INSERT INTO ops (version, client_id, op_id, op, created_at, length) VALUES ($v, $c, $o, $op, $t, $l)", "$v", "$c", "$o", "$op", "$t", "$l");
        _findOp = Prepare("SELECT version FROM ops WHERE client_id = $c AND op_id = $o", "$c", "$o");
        _maxOpId = Prepare("SELECT MAX(op_id) FROM ops WHERE client_id = $c", "$c");
        _readEpoch = Prepare("SELECT value FROM meta WHERE key = 'epoch'");
        _writeEpoch = Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', $e)", "$e");
        _writeConfirmed = Prepare($"INSERT OR REPLACE INTO meta (key, value) VALUES ('{ConfirmedKey}', $v)", "$v");
    }

    /// <summary>
    /// Opens an existing database without writing to it, or returns null when there is none.
    /// <paramref name="historySpacing"/> is <see cref="HistoryOptions.SnapshotSpacing"/>: which old snapshots its commits keep.
    /// <paramref name="autoCheckpoint"/> false leaves moving the WAL into the database to someone
    /// else (the node log's checkpoint): SQLite's own checkpoint, with its two syncs, would
    /// otherwise run inside a commit on the document's loop.
    /// </summary>
    internal static SqliteDocumentStore? OpenExisting(string path, SyncMode sync, int historySpacing = 0, bool autoCheckpoint = true)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        var connection = Connect(path, SqliteOpenMode.ReadWrite, sync, autoCheckpoint);
        try
        {
            using var check = connection.CreateCommand();
            check.CommandText = "SELECT value FROM meta WHERE key = 'schema'";
            var schema = Convert.ToInt32(check.ExecuteScalar() ?? throw new InvalidDataException($"{path} has no schema version."));
            if (schema != SchemaVersion)
            {
                throw new InvalidDataException($"{path} has schema {schema}; this server reads {SchemaVersion}.");
            }
            check.CommandText = "SELECT COALESCE((SELECT value FROM meta WHERE key = 'incarnation'), (SELECT value FROM meta WHERE key = 'created_at'), 0)";
            var incarnation = Convert.ToInt64(check.ExecuteScalar());
            check.CommandText = "SELECT value FROM meta WHERE key = 'type'";
            var typeName = check.ExecuteScalar() as string;
            var type = DocumentType.Named(typeName) ?? throw new InvalidDataException($"{path} holds a document of type '{typeName}', which this server does not know.");
            return new SqliteDocumentStore(connection, historySpacing) { Incarnation = incarnation, Type = type };
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates a new, empty document database. It is built under a temporary name and renamed
    /// into place when complete, so a crash never leaves a database without its schema.
    /// </summary>
    internal static SqliteDocumentStore Create(string path, SyncMode sync, int historySpacing = 0, bool autoCheckpoint = true, long? incarnation = null, DocumentType? type = null)
    {
        // A text document records no type (its files are as they were before there were types).
        var typeRow = type is null || type == DocumentType.Text ? "" : $", ('type', '{type.Name}')";
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".new";
        DeleteFiles(temporary);
        using (var connection = Connect(temporary, SqliteOpenMode.ReadWriteCreate, sync))
        {
            using var command = connection.CreateCommand();
            command.CommandText = $"""
                PRAGMA journal_mode = WAL;
                BEGIN;
                CREATE TABLE IF NOT EXISTS ops (
                    version    INTEGER PRIMARY KEY,
                    client_id  TEXT NOT NULL,
                    op_id      INTEGER NOT NULL,
                    op         TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    length     INTEGER NOT NULL);
                CREATE UNIQUE INDEX IF NOT EXISTS ops_by_client ON ops (client_id, op_id);
                CREATE TABLE IF NOT EXISTS snapshots (
                    version    INTEGER PRIMARY KEY,
                    length     INTEGER NOT NULL,
                    chunks     INTEGER NOT NULL,
                    created_at INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS snapshot_chunks (
                    version    INTEGER NOT NULL,
                    seq        INTEGER NOT NULL,
                    text       TEXT NOT NULL,
                    PRIMARY KEY (version, seq));
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY);
                INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', {SchemaVersion}), ('created_at', {DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}), ('incarnation', {incarnation ?? Random.Shared.NextInt64(1, long.MaxValue)}){typeRow};
                COMMIT;
                """;
            command.ExecuteNonQuery();
        }
        try
        {
            File.Move(temporary, path);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another node made it first (a cluster shares the data directory): that one is
            // the document's; this empty one goes, and the commit's fence decides who may write.
            DeleteFiles(temporary);
        }
        // The new name is durable before the first commit to it is acknowledged.
        FileSync.Directory(Path.GetDirectoryName(path)!);
        return OpenExisting(path, sync, historySpacing, autoCheckpoint)!;
    }

    private static SqliteConnection Connect(string path, SqliteOpenMode mode, SyncMode sync, bool autoCheckpoint = true)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = mode,
            // One connection per actor for its whole life; pooling would keep the file open after a delete.
            Pooling = false,
        }.ToString());
        connection.Open();
        using var pragma = connection.CreateCommand();
        // A small page cache: a node holds thousands of open documents, and the actor keeps the
        // text in memory anyway, so the cache only serves the op log's recent pages.
        pragma.CommandText = $"PRAGMA synchronous = {sync.ToString().ToUpperInvariant()}; PRAGMA cache_size = -256; PRAGMA foreign_keys = OFF;"
            + (autoCheckpoint ? "" : " PRAGMA wal_autocheckpoint = 0;");
        pragma.ExecuteNonQuery();
        return connection;
    }

    private SqliteCommand Prepare(string sql, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }
        command.Prepare();
        return command;
    }

    /// <inheritdoc/>
    public long Incarnation { get; private init; }

    /// <inheritdoc/>
    public int Replay(IReadOnlyList<LogBatch> batches)
    {
        using var transaction = _connection.BeginTransaction();
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT version, length FROM ops ORDER BY version DESC LIMIT 1";
        int version = 0, length = 0;
        using (var reader = command.ExecuteReader())
        {
            if (reader.Read())
            {
                version = reader.GetInt32(0);
                length = reader.GetInt32(1);
            }
        }
        _readEpoch.Transaction = transaction;
        var storedEpoch = _readEpoch.ExecuteScalar() is long e ? e : 0;
        _readEpoch.Transaction = null;
        var applied = 0;
        _insertOp.Transaction = transaction;
        foreach (var batch in batches)
        {
            if (batch.Incarnation != Incarnation || batch.Epoch < storedEpoch)
            {
                continue; // another life of the document, or a deposed owner's write
            }
            foreach (var op in batch.Ops)
            {
                if (op.Version != version + 1)
                {
                    continue; // already here (or, past a gap, not applicable)
                }
                length += op.Op.LengthDelta;
                InsertOp(op, length);
                version = op.Version;
                applied++;
            }
        }
        _insertOp.Transaction = null;
        transaction.Commit();
        return applied;
    }

    /// <inheritdoc/>
    public LoadedDocument Load()
    {
        var snapshot = ReadSnapshot(_connection, null, int.MaxValue);
        var content = snapshot is { } found ? Type.ParseSnapshot(found.Text) : Type.Empty;
        var snapshotVersion = snapshot?.Version ?? 0;
        var ops = ReadOps(snapshotVersion, int.MaxValue);
        var version = snapshotVersion;
        foreach (var op in ops)
        {
            if (op.Version != version + 1)
            {
                throw new InvalidDataException($"The op log jumps from version {version} to {op.Version}.");
            }
            content = op.Op.Apply(content);
            version = op.Version;
        }
        return new LoadedDocument(content, version, snapshotVersion, ops);
    }

    /// <summary>
    /// The newest complete snapshot at or below <paramref name="atOrBelow"/> (its row is written
    /// with its last chunk), or null when there is none. For loading and for reading the past.
    /// </summary>
    internal static (int Version, string Text)? ReadSnapshot(SqliteConnection connection, SqliteTransaction? transaction, int atOrBelow)
    {
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT s.version, s.length, c.text FROM snapshot_chunks c
            JOIN (SELECT version, length FROM snapshots WHERE version <= $v ORDER BY version DESC LIMIT 1) s ON c.version = s.version
            ORDER BY c.seq
            """;
        command.Parameters.AddWithValue("$v", atOrBelow);
        using var reader = command.ExecuteReader();
        StringBuilder? sb = null;
        var version = 0;
        while (reader.Read())
        {
            version = reader.GetInt32(0);
            (sb ??= new StringBuilder(reader.GetInt32(1))).Append(reader.GetString(2));
        }
        return sb is null ? null : (version, sb.ToString());
    }

    /// <inheritdoc/>
    public List<StoredOp> ReadOps(int after, int upTo, int limit = int.MaxValue)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT version, client_id, op_id, op, created_at FROM ops WHERE version > $a AND version <= $b ORDER BY version LIMIT $l";
        command.Parameters.AddWithValue("$a", after);
        command.Parameters.AddWithValue("$b", upTo);
        command.Parameters.AddWithValue("$l", limit);
        using var reader = command.ExecuteReader();
        var result = new List<StoredOp>();
        while (reader.Read())
        {
            result.Add(new StoredOp(reader.GetInt32(0), ParseOp(Type, reader.GetInt32(0), reader.GetString(3)), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(4)));
        }
        return result;
    }

    /// <summary>An op as the log stores it (JSON); throws <see cref="InvalidDataException"/> if it is malformed.</summary>
    internal static DocOp ParseOp(DocumentType type, int version, string json)
    {
        try
        {
            return type.ParseOp(json);
        }
        catch (Exception ex) when (ex is InvalidDataException or JsonException)
        {
            throw new InvalidDataException($"Op {version} in the log is malformed: {ex.Message}", ex);
        }
    }

    /// <inheritdoc/>
    public int? FindOp(string clientId, long opId)
    {
        _findOp.Parameters[0].Value = clientId;
        _findOp.Parameters[1].Value = opId;
        var result = _findOp.ExecuteScalar();
        return result is null ? null : Convert.ToInt32(result);
    }

    /// <inheritdoc/>
    public long MaxOpId(string clientId)
    {
        _maxOpId.Parameters[0].Value = clientId;
        return _maxOpId.ExecuteScalar() is long max ? max : long.MinValue;
    }

    /// <inheritdoc/>
    public void Commit(IReadOnlyList<StoredOp> ops, int length, IReadOnlyList<SnapshotChunk> snapshot, FenceToken fence)
    {
        using var transaction = _connection.BeginTransaction();
        CheckFence(transaction, fence);
        if (ConfirmedMark is { } mark)
        {
            // Prepared once: under PostgreSQL every commit records it.
            _writeConfirmed.Transaction = transaction;
            _writeConfirmed.Parameters[0].Value = mark;
            _writeConfirmed.ExecuteNonQuery();
            _writeConfirmed.Transaction = null;
            ConfirmedMark = null;
        }
        _insertOp.Transaction = transaction;
        long now = 0;
        // Each op row keeps the length after it, so a listing reads one row instead of a
        // metadata row that every commit would have to update.
        var lengthAfter = length;
        for (var i = ops.Count - 1; i > 0; i--)
        {
            lengthAfter -= ops[i].Op.LengthDelta;
        }
        for (var i = 0; i < ops.Count; i++)
        {
            var op = ops[i];
            if (i > 0)
            {
                lengthAfter += op.Op.LengthDelta;
            }
            InsertOp(op, lengthAfter);
            now = op.CreatedAtMs;
            if (op.Authorship is { } by)
            {
                RecordAuthorship(transaction, op, by);
            }
        }
        foreach (var chunk in snapshot)
        {
            using var command = _connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT OR REPLACE INTO snapshot_chunks (version, seq, text) VALUES ($v, $s, $t)";
            command.Parameters.AddWithValue("$v", chunk.Version);
            command.Parameters.AddWithValue("$s", chunk.Seq);
            command.Parameters.AddWithValue("$t", chunk.Text);
            command.ExecuteNonQuery();
            if (chunk.IsLast)
            {
                // Complete: keep it and the one before (loading reads the newest). The one that
                // now drops out of those two stays for reading the past if it is at least
                // historySpacing versions after the newest one kept before it (every snapshot
                // passes this point exactly once, so the older ones are exactly the kept ones);
                // otherwise it goes, with unfinished leftovers. Reading any version then replays at
                // most about historySpacing + one snapshot interval of ops (docs/ARCHITECTURE.md).
                command.Parameters.Clear();
                command.CommandText = """
                    INSERT OR REPLACE INTO snapshots (version, length, chunks, created_at) VALUES ($v, $l, $n, $c);
                    DELETE FROM snapshots WHERE version = (SELECT version FROM snapshots ORDER BY version DESC LIMIT 1 OFFSET 2)
                        AND version - COALESCE((SELECT MAX(p.version) FROM snapshots p WHERE p.version < snapshots.version), 0) < $spacing
                        AND version <> COALESCE((SELECT value FROM meta WHERE key = 'retained_from'), -1);
                    DELETE FROM snapshot_chunks WHERE version NOT IN (SELECT version FROM snapshots) AND version <= $v;
                    """;
                command.Parameters.AddWithValue("$spacing", _historySpacing);
                command.Parameters.AddWithValue("$v", chunk.Version);
                command.Parameters.AddWithValue("$l", chunk.Length);
                command.Parameters.AddWithValue("$n", chunk.Seq + 1);
                command.Parameters.AddWithValue("$c", now == 0 ? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() : now);
                command.ExecuteNonQuery();
            }
        }
        transaction.Commit();
        _insertOp.Transaction = null;
    }

    /// <summary>
    /// The tables history names authors from, made by the first op that needs them (a database
    /// written before them has neither; history then shows client ids): a member's name by its
    /// author key, and what each server write was.
    /// </summary>
    internal const string AuthorTables =
        "CREATE TABLE IF NOT EXISTS authors (author_key TEXT PRIMARY KEY, subject TEXT NOT NULL, name TEXT);" +
        "CREATE TABLE IF NOT EXISTS server_writes (version INTEGER PRIMARY KEY, kind TEXT NOT NULL, subject TEXT NOT NULL, name TEXT);";

    private void RecordAuthorship(SqliteTransaction transaction, StoredOp op, OpAuthorship by)
    {
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = AuthorTables + (by.Kind == OpAuthorship.Member
            ? "INSERT OR REPLACE INTO authors (author_key, subject, name) VALUES ($k, $s, $n);"
            : "INSERT OR REPLACE INTO server_writes (version, kind, subject, name) VALUES ($v, $kind, $s, $n);");
        command.Parameters.AddWithValue("$k", op.ClientId);
        command.Parameters.AddWithValue("$v", op.Version);
        command.Parameters.AddWithValue("$kind", by.Kind);
        command.Parameters.AddWithValue("$s", by.Subject);
        command.Parameters.AddWithValue("$n", (object?)by.Name ?? DBNull.Value);
        command.ExecuteNonQuery();
    }

    private const string ConfirmedKey = "confirmed";

    /// <summary>
    /// A version known to be durable in the commit log that is not this file (PostgreSQL), to be
    /// recorded with the next commit: the ops up to it are the log's; any after it may be ops the
    /// log never took (a crash between this file's commit and the log's), which catching up
    /// replaces with the log's. Recorded late, so it is never ahead of the truth.
    /// </summary>
    internal int? ConfirmedMark { get; set; }

    /// <summary>The version recorded by <see cref="ConfirmedMark"/> (0 when none was).</summary>
    internal int ReadConfirmed()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = $"SELECT value FROM meta WHERE key = '{ConfirmedKey}'";
        return command.ExecuteScalar() is long v ? (int)v : 0;
    }

    /// <summary>The oldest version retention kept (its snapshot; the ops up to it may be gone), 0 when nothing was folded.</summary>
    internal int RetainedFrom()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT value FROM meta WHERE key = 'retained_from'";
        return command.ExecuteScalar() is long v ? (int)v : 0;
    }

    /// <summary>The newest version stored (0 for none).</summary>
    internal int HeadVersion()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT MAX(version) FROM (SELECT MAX(version) AS version FROM ops UNION ALL SELECT MAX(version) FROM snapshots)";
        return command.ExecuteScalar() is long v ? (int)v : 0;
    }

    /// <summary>
    /// Brings this copy up to date with the commit log's (one transaction): everything after
    /// <paramref name="keepThrough"/> goes, then the log's ops and snapshots after it are written as
    /// the log has them, and <paramref name="confirmed"/> is recorded as durable there.
    /// </summary>
    internal void CatchUp(int keepThrough, IEnumerable<(OpRow Op, int Length)> ops, IEnumerable<(int Version, int Seq, string Text)> chunks,
        IEnumerable<(int Version, int Length, int Chunks, long CreatedAtMs)> snapshots, int confirmed, long epoch, long createdAtMs,
        (int Version, long AtMs)? retainedFrom = null)
    {
        using var transaction = _connection.BeginTransaction();
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "DELETE FROM ops WHERE version > $k; DELETE FROM snapshots WHERE version > $k; DELETE FROM snapshot_chunks WHERE version > $k;";
        command.Parameters.AddWithValue("$k", keepThrough);
        command.ExecuteNonQuery();
        command.Parameters.Clear();
        command.CommandText = "INSERT INTO ops (version, client_id, op_id, op, created_at, length) VALUES ($v, $c, $o, $op, $t, $l)";
        var p = new[] { "$v", "$c", "$o", "$op", "$t", "$l" }.Select(n => command.Parameters.Add(new SqliteParameter { ParameterName = n })).ToArray();
        foreach (var (op, length) in ops)
        {
            p[0].Value = op.Version;
            p[1].Value = op.ClientId;
            p[2].Value = op.OpId;
            p[3].Value = op.Op;
            p[4].Value = op.CreatedAtMs;
            p[5].Value = length;
            command.ExecuteNonQuery();
        }
        command.Parameters.Clear();
        command.CommandText = "INSERT OR REPLACE INTO snapshot_chunks (version, seq, text) VALUES ($v, $s, $t)";
        p = [.. new[] { "$v", "$s", "$t" }.Select(n => command.Parameters.Add(new SqliteParameter { ParameterName = n }))];
        foreach (var (version, seq, text) in chunks)
        {
            p[0].Value = version;
            p[1].Value = seq;
            p[2].Value = text;
            command.ExecuteNonQuery();
        }
        command.Parameters.Clear();
        command.CommandText = "INSERT OR REPLACE INTO snapshots (version, length, chunks, created_at) VALUES ($v, $l, $n, $c)";
        p = [.. new[] { "$v", "$l", "$n", "$c" }.Select(n => command.Parameters.Add(new SqliteParameter { ParameterName = n }))];
        foreach (var (version, length, count, createdAt) in snapshots)
        {
            p[0].Value = version;
            p[1].Value = length;
            p[2].Value = count;
            p[3].Value = createdAt;
            command.ExecuteNonQuery();
        }
        WriteMeta(transaction, ConfirmedKey, confirmed);
        WriteMeta(transaction, "created_at", createdAtMs);
        if (retainedFrom is { } retained)
        {
            // A copy made again from the start keeps the log's oldest version, not its own.
            if (retained.Version > 0)
            {
                WriteMeta(transaction, "retained_from", retained.Version);
                WriteMeta(transaction, "retained_from_at", retained.AtMs);
            }
            else
            {
                command.Parameters.Clear();
                command.CommandText = "DELETE FROM meta WHERE key IN ('retained_from', 'retained_from_at')";
                command.ExecuteNonQuery();
            }
        }
        if (epoch > 0)
        {
            WriteMeta(transaction, "epoch", epoch);
        }
        transaction.Commit();
    }

    private void WriteMeta(SqliteTransaction transaction, string key, long value)
    {
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT OR REPLACE INTO meta (key, value) VALUES ($k, $v)";
        command.Parameters.AddWithValue("$k", key);
        command.Parameters.AddWithValue("$v", value);
        command.ExecuteNonQuery();
    }

    /// <summary>Inserts one op row, in the transaction <see cref="_insertOp"/> is set to; <paramref name="lengthAfter"/> is the text's length after it.</summary>
    private void InsertOp(StoredOp op, int lengthAfter)
    {
        _insertOp.Parameters[0].Value = op.Version;
        _insertOp.Parameters[1].Value = op.ClientId;
        _insertOp.Parameters[2].Value = op.OpId;
        _insertOp.Parameters[3].Value = op.Json;
        _insertOp.Parameters[4].Value = op.CreatedAtMs;
        _insertOp.Parameters[5].Value = lengthAfter;
        _insertOp.ExecuteNonQuery();
    }

    /// <inheritdoc/>
    public void WriteSnapshot(int version, DocContent content, FenceToken fence)
    {
        Commit([], content.Length, ChunksOf(version, content), fence);
    }

    /// <summary>A whole snapshot of <paramref name="content"/> at <paramref name="version"/>, cut into chunks to write in one commit.</summary>
    public static List<SnapshotChunk> ChunksOf(int version, DocContent content)
    {
        var text = content.Snapshot;
        var chunks = new List<SnapshotChunk>();
        for (var offset = 0; offset < text.Length || chunks.Count == 0;)
        {
            var n = ChunkLengthAt(text, offset);
            chunks.Add(new SnapshotChunk(version, chunks.Count, text.Substring(offset, n), offset + n >= text.Length, content.Length));
            offset += n;
        }
        return chunks;
    }

    /// <summary>
    /// The length of the snapshot chunk that starts at <paramref name="offset"/>:
    /// <see cref="SnapshotChunkLength"/>, or one less, so that a chunk never ends between the two
    /// halves of a surrogate pair (SQLite keeps text as UTF-8, which cannot hold half a pair: the
    /// snapshot came back with U+FFFD in place of the character cut in two).
    /// </summary>
    internal static int ChunkLengthAt(Rope text, int offset)
    {
        var n = Math.Min(SnapshotChunkLength, text.Length - offset);
        return n > 1 && offset + n < text.Length && char.IsHighSurrogate(text[offset + n - 1]) ? n - 1 : n;
    }

    /// <summary>
    /// Refuses the transaction if the document has seen a newer owner's epoch; records a newer
    /// one. Part of the commit's transaction, so the check and the write are one atomic step.
    /// </summary>
    private void CheckFence(SqliteTransaction transaction, FenceToken fence)
    {
        if (fence.Epoch == 0)
        {
            return; // a single node: no leases, nothing to read
        }
        // With the write lock held (BEGIN IMMEDIATE): what is checked now holds until the commit.
        _readEpoch.Transaction = transaction;
        var stored = _readEpoch.ExecuteScalar() is long e ? e : 0;
        _readEpoch.Transaction = null;
        if (fence.Check(stored))
        {
            _writeEpoch.Transaction = transaction;
            _writeEpoch.Parameters[0].Value = fence.Epoch;
            _writeEpoch.ExecuteNonQuery();
            _writeEpoch.Transaction = null;
        }
    }

    /// <inheritdoc/>
    public void Fence(FenceToken fence)
    {
        using var transaction = _connection.BeginTransaction();
        CheckFence(transaction, fence);
        transaction.Commit();
    }

    /// <inheritdoc/>
    public long StoredEpoch() => _readEpoch.ExecuteScalar() is long e ? e : 0;

    /// <summary>
    /// What the retention pass would fold in one document (<see cref="HistoryOptions.Retention"/>):
    /// every op committed before <paramref name="cutoffMs"/>, except the newest op, into a snapshot
    /// at the boundary version B, at most <paramref name="keepAfter"/> when given (the ops after it
    /// are still needed by the backup). Read on a read-only connection of its own, off the
    /// document's loop; null when nothing is old enough.
    /// </summary>
    internal static FoldPlan? PlanFold(string path, long cutoffMs, int? keepAfter = null)
    {
        using var history = HistoryReader.Open(path);
        if (history is null || history.VersionAt(cutoffMs - 1) is not int before)
        {
            return null;
        }
        var boundary = Math.Min(before, history.Version - 1); // the newest op stays: it anchors version and length
        boundary = Math.Min(boundary, keepAfter ?? int.MaxValue);
        if (boundary <= history.OldestVersion)
        {
            return null;
        }
        var content = history.ContentAt(boundary);
        return new FoldPlan(boundary, history.CommittedAtMs(boundary), content) { Chunks = ChunksOf(boundary, content) };
    }

    /// <inheritdoc/>
    public bool WriteFold(FoldPlan plan, FenceToken fence)
    {
        using var transaction = _connection.BeginTransaction();
        CheckFence(transaction, fence);
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        // The same document as the one planned from: deleted and made again in between, it would
        // get the old text as its snapshot and lose its own ops. Then the next pass folds it.
        command.CommandText = "SELECT created_at FROM ops WHERE version = $v AND EXISTS (SELECT 1 FROM ops WHERE version > $v)";
        command.Parameters.AddWithValue("$v", plan.Boundary);
        if (command.ExecuteScalar() is not long at || at != plan.BoundaryAtMs)
        {
            return false;
        }
        command.CommandText = "INSERT OR REPLACE INTO snapshot_chunks (version, seq, text) VALUES ($v, $s, $t)";
        var chunks = plan.Chunks ?? ChunksOf(plan.Boundary, plan.Content);
        foreach (var chunk in chunks)
        {
            command.Parameters.Clear();
            command.Parameters.AddWithValue("$v", plan.Boundary);
            command.Parameters.AddWithValue("$s", chunk.Seq);
            command.Parameters.AddWithValue("$t", chunk.Text);
            command.ExecuteNonQuery();
        }
        command.Parameters.Clear();
        command.CommandText = """
            INSERT OR REPLACE INTO snapshots (version, length, chunks, created_at) VALUES ($v, $l, $n, $c);
            INSERT OR REPLACE INTO meta (key, value) VALUES ('retained_from', $v), ('retained_from_at', $c);
            DELETE FROM snapshots WHERE version < $v;
            DELETE FROM snapshot_chunks WHERE version < $v;
            """;
        command.Parameters.AddWithValue("$v", plan.Boundary);
        command.Parameters.AddWithValue("$l", plan.Content.Length);
        command.Parameters.AddWithValue("$n", chunks.Count);
        command.Parameters.AddWithValue("$c", plan.BoundaryAtMs);
        command.ExecuteNonQuery();
        transaction.Commit();
        return true;
    }

    /// <inheritdoc/>
    public int DeleteFolded(int boundary, int limit, FenceToken fence)
    {
        using var transaction = _connection.BeginTransaction();
        CheckFence(transaction, fence);
        using var command = _connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "DELETE FROM ops WHERE version IN (SELECT version FROM ops WHERE version <= $v AND version <= COALESCE((SELECT value FROM meta WHERE key = 'retained_from'), -1) ORDER BY version LIMIT $n)";
        command.Parameters.AddWithValue("$v", boundary);
        command.Parameters.AddWithValue("$n", limit);
        var deleted = command.ExecuteNonQuery();
        transaction.Commit();
        return deleted;
    }

    /// <summary>Code units in one snapshot chunk.</summary>
    public const int SnapshotChunkLength = 64 * 1024;


    /// <summary>Reads the version, length and last update time from the newest op row, without loading the document.</summary>
    internal static (int Version, int Length, long UpdatedAtMs)? ReadSummary(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT COALESCE(o.version, 0), COALESCE(o.length, 0), COALESCE(o.created_at, m.value)
            FROM (SELECT value FROM meta WHERE key = 'created_at') m
            LEFT JOIN (SELECT version, length, created_at FROM ops ORDER BY version DESC LIMIT 1) o ON 1
            """;
        using var reader = command.ExecuteReader();
        reader.Read();
        return (reader.GetInt32(0), reader.IsDBNull(1) ? 0 : reader.GetInt32(1), reader.IsDBNull(2) ? 0 : reader.GetInt64(2));
    }

    /// <summary>
    /// Moves a document's WAL into its database on a connection of its own, beside its owner's
    /// (PASSIVE: it never waits for or blocks the owner's commits), syncing the WAL first and the
    /// database after, as <c>synchronous=NORMAL</c> does at every checkpoint: every commit made
    /// before it is then durable in the document's own files. False if the document has no database.
    /// </summary>
    internal static bool Checkpoint(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWrite, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA synchronous = NORMAL; PRAGMA wal_checkpoint(PASSIVE);";
        command.ExecuteNonQuery();
        return true;
    }

    /// <summary>Deletes a closed document's files.</summary>
    internal static void DeleteFiles(string path)
    {
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(path + suffix);
        }
    }

    public void Dispose()
    {
        _insertOp.Dispose();
        _findOp.Dispose();
        _maxOpId.Dispose();
        _readEpoch.Dispose();
        _writeEpoch.Dispose();
        _writeConfirmed.Dispose();
        _connection.Dispose();
    }
}
