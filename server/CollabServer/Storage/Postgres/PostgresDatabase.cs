using CollabServer.Errors;
using System.Runtime.InteropServices;
using Npgsql;
using CollabServer.Documents.Types;

namespace CollabServer.Storage.Postgres;

/// <summary>A document's row in PostgreSQL: which life of it, the newest owner epoch, its head version and length.</summary>
public sealed record PostgresDocument(string Id, long Incarnation, long Epoch, int Version, int Length, long CreatedAtMs, long UpdatedAtMs, bool Deleted)
{
    /// <summary>The document's type, fixed when its life began.</summary>
    public DocumentType Type { get; init; } = DocumentType.Text;

    /// <summary>The version retention folded the ops up to (its snapshot is the oldest version kept), and when it was committed; 0 when nothing was folded.</summary>
    public int RetainedFrom { get; init; }

    public long RetainedFromAtMs { get; init; }
}

/// <summary>
/// The cluster's durable tier (<c>Collab:Postgres</c>): every document's ops, its snapshots and
/// its owner epoch in one PostgreSQL database, so any node can load any document and a machine's
/// loss loses nothing that was acknowledged. Npgsql's data source pools the connections; a
/// multi-host connection string with <c>Target Session Attributes=primary</c> finds a promoted
/// standby. Every method but <see cref="AppendAsync"/> is synchronous (a document's loop, or a
/// REST call, waits for it) and turns a lost connection into <c>unavailable</c>.
/// </summary>
public sealed class PostgresDatabase : IAsyncDisposable
{
    /// <summary>The schema, one step per version; <see cref="Migrate"/> applies the ones a database lacks, in order.</summary>
    private static readonly string[] s_migrations =
    [
        """
        CREATE TABLE collab_documents (
            id          text COLLATE "C" PRIMARY KEY,
            incarnation bigint NOT NULL,
            epoch       bigint NOT NULL DEFAULT 0,
            version     integer NOT NULL DEFAULT 0,
            length      integer NOT NULL DEFAULT 0,
            created_at  bigint NOT NULL,
            updated_at  bigint NOT NULL,
            deleted     boolean NOT NULL DEFAULT false);
        CREATE TABLE collab_ops (
            doc_id     text NOT NULL,
            version    integer NOT NULL,
            client_id  text NOT NULL,
            op_id      bigint NOT NULL,
            created_at bigint NOT NULL,
            length     integer NOT NULL,
            op         text NOT NULL,
            PRIMARY KEY (doc_id, version));
        CREATE TABLE collab_snapshot_chunks (
            doc_id  text NOT NULL,
            version integer NOT NULL,
            seq     integer NOT NULL,
            text    bytea NOT NULL,
            PRIMARY KEY (doc_id, version, seq));
        CREATE TABLE collab_snapshots (
            doc_id     text NOT NULL,
            version    integer NOT NULL,
            length     integer NOT NULL,
            chunks     integer NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (doc_id, version));
        """,
        """
        ALTER TABLE collab_documents ADD COLUMN retained_from integer NOT NULL DEFAULT 0;
        ALTER TABLE collab_documents ADD COLUMN retained_from_at bigint NOT NULL DEFAULT 0;
        """,
        // 3: where renamed documents went (IDocumentRedirects).
        """
        CREATE TABLE collab_redirects (
            id         text COLLATE "C" PRIMARY KEY,
            moved_to   text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL);
        """,
        // 4: each document's type (DocumentType), fixed when its life begins.
        """
        ALTER TABLE collab_documents ADD COLUMN type text NOT NULL DEFAULT 'text';
        """,
    ];

    /// <summary>
    /// A round of document batches, one statement (so one transaction, one round trip and one WAL
    /// flush for them all): each document's row is updated only if its batch's life, epoch and
    /// first version fit it (the fence: a deposed owner's epoch is below the stored one), and a
    /// document's ops and snapshot chunk go in only if its row was updated. Each batch is so all
    /// or nothing on its own; the statement returns the documents whose batch went in.
    /// </summary>
    private const string AppendSql = """
        WITH b AS (
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::integer[], $5::integer[], $6::integer[], $7::bigint[])
                AS b(id, incarnation, epoch, previous, head, length, at)),
        fence AS (
            UPDATE collab_documents d SET epoch = GREATEST(d.epoch, b.epoch), version = b.head, length = b.length, updated_at = b.at
            FROM b WHERE d.id = b.id AND d.incarnation = b.incarnation AND d.epoch <= b.epoch AND d.version = b.previous AND NOT d.deleted
            RETURNING d.id),
        chunk AS (
            INSERT INTO collab_snapshot_chunks (doc_id, version, seq, text)
            SELECT c.id, c.version, c.seq, c.text FROM unnest($8::text[], $9::integer[], $10::integer[], $11::bytea[]) AS c(id, version, seq, text)
            WHERE c.id IN (SELECT id FROM fence)
            ON CONFLICT (doc_id, version, seq) DO UPDATE SET text = excluded.text),
        snapshot AS (
            INSERT INTO collab_snapshots (doc_id, version, length, chunks, created_at)
            SELECT s.id, s.version, s.length, s.chunks, s.at FROM unnest($12::text[], $13::integer[], $14::integer[], $15::integer[], $16::bigint[]) AS s(id, version, length, chunks, at)
            WHERE s.id IN (SELECT id FROM fence)
            ON CONFLICT (doc_id, version) DO NOTHING),
        ops AS (
            INSERT INTO collab_ops (doc_id, version, client_id, op_id, created_at, length, op)
            SELECT x.id, x.version, x.client, x.op_id, x.at, x.length, x.op
            FROM unnest($17::text[], $18::integer[], $19::text[], $20::bigint[], $21::bigint[], $22::integer[], $23::text[]) AS x(id, version, client, op_id, at, length, op)
            WHERE x.id IN (SELECT id FROM fence))
        SELECT id FROM fence
        """;

    private readonly NpgsqlDataSource _source;

    public PostgresDatabase(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
        {
            // The same few statements run all day: prepared once per connection, they skip parsing.
            builder.ConnectionStringBuilder.MaxAutoPrepare = 16;
        }
        builder.ConnectionStringBuilder.ApplicationName ??= "collabserver";
        _source = builder.Build();
        Description = $"{builder.ConnectionStringBuilder.Host}:{builder.ConnectionStringBuilder.Port}/{builder.ConnectionStringBuilder.Database}";
    }

    /// <summary>Hosts and database, without the password: for the log.</summary>
    public string Description { get; }

    /// <summary>The schema version this server writes.</summary>
    public static int SchemaVersion => s_migrations.Length;

    /// <summary>
    /// Creates or upgrades the schema (each step in a transaction, under an advisory lock, so
    /// nodes starting together apply it once). Refuses a database whose schema is newer than this
    /// server's. Returns the version found before.
    /// </summary>
    public int Migrate()
    {
        using var connection = _source.OpenConnection();
        using var transaction = connection.BeginTransaction();
        Execute(connection, "SELECT pg_advisory_xact_lock(7046118412)");
        Execute(connection, "CREATE TABLE IF NOT EXISTS collab_schema (version integer NOT NULL)");
        using var read = new NpgsqlCommand("SELECT max(version) FROM collab_schema", connection);
        var found = read.ExecuteScalar() is int v ? v : 0;
        if (found > SchemaVersion)
        {
            throw new InvalidOperationException($"The PostgreSQL schema is version {found}; this server knows up to {SchemaVersion}. Run a newer server.");
        }
        for (var step = found; step < SchemaVersion; step++)
        {
            Execute(connection, s_migrations[step]);
        }
        if (found < SchemaVersion)
        {
            Execute(connection, $"DELETE FROM collab_schema; INSERT INTO collab_schema (version) VALUES ({SchemaVersion})");
        }
        transaction.Commit();
        return found;

        static void Execute(NpgsqlConnection connection, string sql)
        {
            using var command = new NpgsqlCommand(sql, connection);
            command.ExecuteNonQuery();
        }
    }

    /// <summary>
    /// Appends a round of batches, of different documents (see <see cref="AppendSql"/>). For each
    /// batch: null when it is durable (the commit returned: with synchronous standbys, a quorum has
    /// it), otherwise why not, a <see cref="FencedException"/> when a newer owner's epoch is stored.
    /// Throws when PostgreSQL could not be asked (then none went in).
    /// </summary>
    public async Task<Exception?[]> AppendAsync(IReadOnlyList<LogBatch> batches)
    {
        var n = batches.Count;
        var ids = new string[n];
        var incarnations = new long[n];
        var epochs = new long[n];
        var previous = new int[n];
        var heads = new int[n];
        var lengths = new int[n];
        var times = new long[n];
        var chunks = (Ids: new List<string>(), Versions: new List<int>(), Seqs: new List<int>(), Texts: new List<byte[]>());
        var snapshots = (Ids: new List<string>(), Versions: new List<int>(), Lengths: new List<int>(), Chunks: new List<int>(), Times: new List<long>());
        var opCount = batches.Sum(b => b.Ops.Count);
        var ops = (Ids: new string[opCount], Versions: new int[opCount], Clients: new string[opCount], OpIds: new long[opCount], Times: new long[opCount], Lengths: new int[opCount], Json: new string[opCount]);
        var k = 0;
        for (var i = 0; i < n; i++)
        {
            var batch = batches[i];
            var batchOps = batch.Ops;
            ids[i] = batch.DocId;
            incarnations[i] = batch.Incarnation;
            epochs[i] = batch.Epoch;
            previous[i] = batchOps[0].Version - 1;
            heads[i] = batchOps[^1].Version;
            lengths[i] = batch.Length;
            times[i] = batchOps[^1].CreatedAtMs;
            // Each op row keeps the text's length after it, as the document's own database does.
            var length = batch.Length;
            for (var j = batchOps.Count - 1; j >= 0; j--)
            {
                ops.Lengths[k + j] = length;
                length -= batchOps[j].Op.LengthDelta;
            }
            foreach (var op in batchOps)
            {
                ops.Ids[k] = batch.DocId;
                ops.Versions[k] = op.Version;
                ops.Clients[k] = op.ClientId;
                ops.OpIds[k] = op.OpId;
                ops.Times[k] = op.CreatedAtMs;
                ops.Json[k] = op.Json;
                k++;
            }
            if (batch.Snapshot is { } chunk)
            {
                chunks.Ids.Add(batch.DocId);
                chunks.Versions.Add(chunk.Version);
                chunks.Seqs.Add(chunk.Seq);
                chunks.Texts.Add(ChunkBytes(chunk.Text));
                if (chunk.IsLast)
                {
                    snapshots.Ids.Add(batch.DocId);
                    snapshots.Versions.Add(chunk.Version);
                    snapshots.Lengths.Add(chunk.Length);
                    snapshots.Chunks.Add(chunk.Seq + 1);
                    snapshots.Times.Add(times[i]);
                }
            }
        }
        await using var command = _source.CreateCommand(AppendSql);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string[]> { TypedValue = ids });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = incarnations });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = epochs });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = previous });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = heads });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = lengths });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = times });
        p.Add(new NpgsqlParameter<List<string>> { TypedValue = chunks.Ids });
        p.Add(new NpgsqlParameter<List<int>> { TypedValue = chunks.Versions });
        p.Add(new NpgsqlParameter<List<int>> { TypedValue = chunks.Seqs });
        p.Add(new NpgsqlParameter<List<byte[]>> { TypedValue = chunks.Texts });
        p.Add(new NpgsqlParameter<List<string>> { TypedValue = snapshots.Ids });
        p.Add(new NpgsqlParameter<List<int>> { TypedValue = snapshots.Versions });
        p.Add(new NpgsqlParameter<List<int>> { TypedValue = snapshots.Lengths });
        p.Add(new NpgsqlParameter<List<int>> { TypedValue = snapshots.Chunks });
        p.Add(new NpgsqlParameter<List<long>> { TypedValue = snapshots.Times });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = ops.Ids });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = ops.Versions });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = ops.Clients });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = ops.OpIds });
        p.Add(new NpgsqlParameter<long[]> { TypedValue = ops.Times });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = ops.Lengths });
        p.Add(new NpgsqlParameter<string[]> { TypedValue = ops.Json });
        var written = new HashSet<string>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync().ConfigureAwait(false))
        {
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                written.Add(reader.GetString(0));
            }
        }
        var results = new Exception?[n];
        for (var i = 0; i < n; i++)
        {
            if (!written.Contains(ids[i]))
            {
                // Nothing of it went in: say why (rare, so one read each).
                var batch = batches[i];
                PostgresDocument? row;
                try
                {
                    row = Find(batch.DocId);
                }
                catch (CollabError e)
                {
                    results[i] = new CommitLogException($"PostgreSQL did not take the batch of '{batch.DocId}', and could not say why: {e.Message}");
                    continue;
                }
                results[i] = row switch
                {
                    null or { Deleted: true } => new CommitLogException($"document '{batch.DocId}' is not in PostgreSQL (deleted by another node?)"),
                    _ when row.Incarnation != batch.Incarnation => new CommitLogException($"document '{batch.DocId}' was deleted and made again by another node"),
                    _ when row.Epoch > batch.Epoch => FencedBy(row, batch.Epoch),
                    _ => new CommitLogException($"document '{batch.DocId}' is at version {row.Version} in PostgreSQL, not {previous[i]}"),
                };
            }
        }
        return results;
    }

    /// <summary>
    /// A snapshot chunk as PostgreSQL keeps it: its UTF-16 code units as bytes. Not <c>text</c>:
    /// PostgreSQL's text refuses U+0000, which a document may hold, and a chunk boundary may fall
    /// between the two halves of a surrogate pair, which no Unicode encoding keeps.
    /// </summary>
    private static byte[] ChunkBytes(string text) => MemoryMarshal.AsBytes(text.AsSpan()).ToArray();

    private static string ChunkText(byte[] bytes) => new(MemoryMarshal.Cast<byte, char>(bytes));

    /// <summary>A write under <paramref name="epoch"/> that PostgreSQL refused because <paramref name="row"/> records a newer owner.</summary>
    private static FencedException FencedBy(PostgresDocument row, long epoch) =>
        new($"epoch {epoch} is fenced off by epoch {row.Epoch} in PostgreSQL", row.Epoch);

    /// <summary>The document's row; null when PostgreSQL never had it.</summary>
    public PostgresDocument? Find(string docId) => Run(() =>
    {
        using var command = _source.CreateCommand("SELECT incarnation, epoch, version, length, created_at, updated_at, deleted, retained_from, retained_from_at, type FROM collab_documents WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        using var reader = command.ExecuteReader();
        return reader.Read()
            ? new PostgresDocument(docId, reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2), reader.GetInt32(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetBoolean(6))
            {
                RetainedFrom = reader.GetInt32(7),
                RetainedFromAtMs = reader.GetInt64(8),
                Type = DocumentType.Named(reader.GetString(9)) ?? throw new InvalidDataException($"document '{docId}' in PostgreSQL is of type '{reader.GetString(9)}', which this server does not know"),
            }
            : null;
    }, retry: true);

    /// <summary>
    /// Makes the document's row for a new life of it (a deleted one's row is taken over: a write of
    /// the old life is refused by its incarnation, so its epoch starts again). False when a live document of that id is there already.
    /// </summary>
    public bool Create(string docId, long incarnation, DocumentType type, long createdAtMs) => Run(() =>
    {
        using var command = _source.CreateCommand("""
            INSERT INTO collab_documents (id, incarnation, created_at, updated_at, type) VALUES ($1, $2, $3, $3, $4)
            ON CONFLICT (id) DO UPDATE SET incarnation = $2, epoch = 0, version = 0, length = 0, created_at = $3, updated_at = $3, deleted = false, type = $4
            WHERE collab_documents.deleted
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = incarnation });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = createdAtMs });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = type.Name });
        return command.ExecuteNonQuery() == 1;
    });

    /// <summary>
    /// Records a new owner's epoch (unless a newer one is there); throws <see cref="FencedException"/>
    /// with the stored epoch when it is.
    /// </summary>
    public void Fence(string docId, long incarnation, long epoch) => Run(() =>
    {
        using var command = _source.CreateCommand("UPDATE collab_documents SET epoch = $3 WHERE id = $1 AND incarnation = $2 AND epoch <= $3 AND NOT deleted");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = incarnation });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = epoch });
        if (command.ExecuteNonQuery() == 0)
        {
            throw Find(docId) is { Deleted: false } row && row.Incarnation == incarnation
                ? FencedBy(row, epoch)
                : CollabError.Unavailable($"document '{docId}' was deleted or made again on another node; try again");
        }
        return 0;
    });

    /// <summary>
    /// Deletes the life <paramref name="incarnation"/> of the document, unless a newer owner than
    /// <paramref name="epoch"/> holds it (then <see cref="FencedException"/>): its ops and
    /// snapshots go, its row stays as a tombstone (so a node's stale copy is known to be stale).
    /// False when that life is gone already.
    /// </summary>
    public bool Delete(string docId, long incarnation, long epoch) => Run(() =>
    {
        using var command = _source.CreateCommand("""
            WITH gone AS (
                UPDATE collab_documents SET deleted = true, version = 0, length = 0
                WHERE id = $1 AND incarnation = $2 AND epoch <= $3 AND NOT deleted
                RETURNING id),
            ops AS (DELETE FROM collab_ops WHERE doc_id IN (SELECT id FROM gone)),
            chunks AS (DELETE FROM collab_snapshot_chunks WHERE doc_id IN (SELECT id FROM gone)),
            snapshots AS (DELETE FROM collab_snapshots WHERE doc_id IN (SELECT id FROM gone))
            SELECT count(*) FROM gone
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = incarnation });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = epoch });
        if (Convert.ToInt64(command.ExecuteScalar()) == 1)
        {
            return true;
        }
        return Find(docId) is { Deleted: false } row && row.Incarnation == incarnation
            ? throw FencedBy(row, epoch)
            : false;
    });

    /// <summary>
    /// Retention's fold in PostgreSQL, one statement fenced like a commit (same life, epoch not
    /// below the stored one): the text at <paramref name="plan"/>'s boundary becomes a snapshot,
    /// the oldest version kept; the ops up to it and the snapshots before it go. False when it does
    /// not apply (another life, a newer owner, or folded that far already).
    /// </summary>
    public bool Fold(string docId, long incarnation, long epoch, FoldPlan plan, IReadOnlyList<SnapshotChunk> chunks) => Run(() =>
    {
        using var command = _source.CreateCommand("""
            WITH fold AS (
                UPDATE collab_documents SET retained_from = $4, retained_from_at = $5
                WHERE id = $1 AND incarnation = $2 AND epoch <= $3 AND NOT deleted AND version > $4 AND retained_from < $4
                RETURNING id),
            chunk AS (
                INSERT INTO collab_snapshot_chunks (doc_id, version, seq, text)
                SELECT $1, $4, c.seq, c.text FROM unnest($6::integer[], $7::bytea[]) AS c(seq, text) WHERE EXISTS (SELECT 1 FROM fold)
                ON CONFLICT (doc_id, version, seq) DO UPDATE SET text = excluded.text),
            snapshot AS (
                INSERT INTO collab_snapshots (doc_id, version, length, chunks, created_at)
                SELECT $1, $4, $8, $9, $5 WHERE EXISTS (SELECT 1 FROM fold)
                ON CONFLICT (doc_id, version) DO UPDATE SET length = excluded.length, chunks = excluded.chunks),
            old_ops AS (DELETE FROM collab_ops WHERE doc_id = $1 AND version <= $4 AND EXISTS (SELECT 1 FROM fold)),
            old_snapshots AS (DELETE FROM collab_snapshots WHERE doc_id = $1 AND version < $4 AND EXISTS (SELECT 1 FROM fold)),
            old_chunks AS (DELETE FROM collab_snapshot_chunks WHERE doc_id = $1 AND version < $4 AND EXISTS (SELECT 1 FROM fold))
            SELECT count(*) FROM fold
            """);
        var p = command.Parameters;
        p.Add(new NpgsqlParameter<string> { TypedValue = docId });
        p.Add(new NpgsqlParameter<long> { TypedValue = incarnation });
        p.Add(new NpgsqlParameter<long> { TypedValue = epoch });
        p.Add(new NpgsqlParameter<int> { TypedValue = plan.Boundary });
        p.Add(new NpgsqlParameter<long> { TypedValue = plan.BoundaryAtMs });
        p.Add(new NpgsqlParameter<int[]> { TypedValue = [.. chunks.Select(c => c.Seq)] });
        p.Add(new NpgsqlParameter<byte[][]> { TypedValue = [.. chunks.Select(c => ChunkBytes(c.Text))] });
        p.Add(new NpgsqlParameter<int> { TypedValue = plan.Content.Length });
        p.Add(new NpgsqlParameter<int> { TypedValue = chunks.Count });
        return Convert.ToInt64(command.ExecuteScalar()) == 1;
    });

    /// <summary>What a copy that holds everything up to <paramref name="after"/> lacks: the ops, snapshot chunks and snapshots after it, oldest first.</summary>
    public (List<(OpRow Op, int Length)> Ops, List<(int, int, string)> Chunks, List<(int, int, int, long)> Snapshots) ReadAfter(string docId, int after) => Run(() =>
    {
        using var connection = _source.OpenConnection();
        // One snapshot of the database for the three reads.
        using var transaction = connection.BeginTransaction(System.Data.IsolationLevel.RepeatableRead);
        var ops = new List<(OpRow, int)>();
        using (var command = new NpgsqlCommand("SELECT version, client_id, op_id, created_at, length, op FROM collab_ops WHERE doc_id = $1 AND version > $2 ORDER BY version", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = after });
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                ops.Add((new OpRow(reader.GetInt32(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetString(5)), reader.GetInt32(4)));
            }
        }
        var chunks = new List<(int, int, string)>();
        using (var command = new NpgsqlCommand("SELECT version, seq, text FROM collab_snapshot_chunks WHERE doc_id = $1 AND version > $2", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = after });
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                chunks.Add((reader.GetInt32(0), reader.GetInt32(1), ChunkText(reader.GetFieldValue<byte[]>(2))));
            }
        }
        var snapshots = new List<(int, int, int, long)>();
        using (var command = new NpgsqlCommand("SELECT version, length, chunks, created_at FROM collab_snapshots WHERE doc_id = $1 AND version > $2", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = after });
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                snapshots.Add((reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetInt64(3)));
            }
        }
        transaction.Commit();
        return (ops, chunks, snapshots);
    }, retry: true);

    /// <summary>Live documents with an id after <paramref name="after"/>, in id order, at most <paramref name="limit"/>.</summary>
    public List<DocumentSummary> List(string? after, int limit) => Run(() =>
    {
        using var command = _source.CreateCommand("SELECT id, version, length, updated_at FROM collab_documents WHERE NOT deleted AND id > $1 ORDER BY id LIMIT $2");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = after ?? "" });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit });
        using var reader = command.ExecuteReader();
        var result = new List<DocumentSummary>();
        while (reader.Read())
        {
            result.Add(new DocumentSummary(reader.GetString(0), reader.GetInt32(1), reader.GetInt32(2), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))));
        }
        return result;
    }, retry: true);

    /// <summary>The id <paramref name="docId"/> was renamed to (<see cref="IDocumentRedirects"/>), or null.</summary>
    public string? FindRedirect(string docId) => Run(() =>
    {
        using var command = _source.CreateCommand("SELECT moved_to FROM collab_redirects WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        return command.ExecuteScalar() as string;
    }, retry: true);

    /// <summary>Records that <paramref name="docId"/> moved to <paramref name="movedTo"/>, replacing an earlier record.</summary>
    public void SetRedirect(string docId, string movedTo) => Run(() =>
    {
        using var command = _source.CreateCommand("""
            INSERT INTO collab_redirects (id, moved_to, created_at) VALUES ($1, $2, $3)
            ON CONFLICT (id) DO UPDATE SET moved_to = $2, created_at = $3
            """);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = movedTo });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() });
        return command.ExecuteNonQuery();
    });

    /// <summary>Forgets where <paramref name="docId"/> moved.</summary>
    public void RemoveRedirect(string docId) => Run(() =>
    {
        using var command = _source.CreateCommand("DELETE FROM collab_redirects WHERE id = $1");
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = docId });
        return command.ExecuteNonQuery();
    });

    /// <summary>Whether an error means PostgreSQL could not be reached or answered (then the call may succeed later), not a bug.</summary>
    public static bool IsUnavailable(Exception error) => error is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException;

    /// <summary>
    /// Runs a call, turning a lost PostgreSQL into <c>unavailable</c>. A failure empties the pool
    /// (after a restart or a failover every idle connection in it is dead, and each would fail
    /// once); a read (<paramref name="retry"/>) is then tried once more on a fresh connection.
    /// </summary>
    private T Run<T>(Func<T> call, bool retry = false)
    {
        try
        {
            return call();
        }
        catch (Exception ex) when (IsUnavailable(ex))
        {
            _source.Clear();
            if (retry)
            {
                return Run(call);
            }
            throw CollabError.Unavailable($"the document store (PostgreSQL) cannot be reached ({ex.Message}); try again");
        }
    }

    /// <summary>Empties the pool after a failure outside <see cref="Run{T}"/> (an append).</summary>
    internal void ClearPool() => _source.Clear();

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
