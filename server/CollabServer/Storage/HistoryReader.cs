using CollabServer.Identity;
using Microsoft.Data.Sqlite;
using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>One entry of a document's history: consecutive edits of one author (PROTOCOL §7).</summary>
public sealed record HistoryEntry(int Version, int FromVersion, DateTimeOffset At, string ClientId)
{
    /// <summary>
    /// Who made it, where the database recorded that (<see cref="OpAuthorship"/>): a member's name,
    /// or what a server write was and for whom. Null for ops written before authors were recorded.
    /// </summary>
    public OpAuthorship? Author { get; init; }
}

/// <summary>
/// Reads a document's past on a read-only connection of its own, never on the document's actor:
/// SQLite's WAL lets it read beside the actor's commits. Everything it answers comes from one
/// read transaction, so it sees one committed state of the log however long it reads. Open it
/// with <see cref="DocumentCatalog.OpenHistory"/>, use it on one thread, and dispose it soon (it
/// holds the WAL from being checkpointed past its read).
/// </summary>
public sealed class HistoryReader : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SqliteTransaction _transaction;

    private HistoryReader(SqliteConnection connection)
    {
        _connection = connection;
        _transaction = connection.BeginTransaction(deferred: true);
        using var command = Command("""
            SELECT COALESCE((SELECT MAX(version) FROM ops), 0),
                   (SELECT value FROM meta WHERE key = 'created_at'),
                   (SELECT created_at FROM ops ORDER BY version LIMIT 1),
                   (SELECT value FROM meta WHERE key = 'retained_from'),
                   (SELECT value FROM meta WHERE key = 'retained_from_at'),
                   (SELECT value FROM meta WHERE key = 'type')
            """);
        using var reader = command.ExecuteReader();
        reader.Read();
        Version = reader.GetInt32(0);
        var created = reader.IsDBNull(1) ? long.MaxValue : reader.GetInt64(1);
        // The first op is stamped when it is sequenced, a moment before its commit creates the file.
        CreatedAtMs = reader.IsDBNull(2) ? created : Math.Min(created, reader.GetInt64(2));
        OldestVersion = reader.IsDBNull(3) ? 0 : reader.GetInt32(3);
        _oldestAtMs = reader.IsDBNull(4) ? CreatedAtMs : reader.GetInt64(4);
        Version = Math.Max(Version, OldestVersion);
        var typeName = reader.IsDBNull(5) ? null : reader.GetString(5);
        Type = DocumentType.Named(typeName) ?? throw new InvalidDataException($"The document is of type '{typeName}', which this server does not know.");
    }

    private readonly long _oldestAtMs;

    /// <summary>The document's type.</summary>
    public DocumentType Type { get; }

    /// <summary>
    /// The oldest version that can still be read: 0, or the boundary the retention pass folded
    /// older ops into (<see cref="HistoryOptions.Retention"/>).
    /// </summary>
    public int OldestVersion { get; }

    private CollabServer.Errors.CollabError PastRetention(string what) =>
        CollabServer.Errors.CollabError.UnknownVersion($"{what} is past the retention period; the oldest version kept is {OldestVersion}");

    /// <summary>Opens the database at <paramref name="path"/> read-only, or returns null when there is none.</summary>
    internal static HistoryReader? Open(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false, // a pooled connection would keep a deleted document's file open
        }.ToString());
        try
        {
            connection.Open();
            return new HistoryReader(connection);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The newest committed version in this read.</summary>
    public int Version { get; }

    /// <summary>When the document was created (its file, or its first op if that is earlier).</summary>
    public long CreatedAtMs { get; }

    /// <summary>
    /// The last version committed at or before <paramref name="atMs"/>, or null when that is
    /// before the document was created. Ops are stamped in version order with a clock the actor
    /// keeps from going backwards, so this is a binary search over the primary key (about 20
    /// lookups at a million ops), with no index on time to pay for on every write.
    /// </summary>
    public int? VersionAt(long atMs)
    {
        if (atMs < CreatedAtMs)
        {
            return null;
        }
        if (atMs < _oldestAtMs)
        {
            throw PastRetention(DateTimeOffset.FromUnixTimeMilliseconds(atMs).ToString("O"));
        }
        using var command = Command("SELECT created_at FROM ops WHERE version = $v");
        var parameter = command.Parameters.Add("$v", SqliteType.Integer);
        // Invariant: created_at(lo) <= atMs (the oldest version kept counts as -infinity); created_at(hi + 1) > atMs.
        int lo = OldestVersion, hi = Version;
        while (lo < hi)
        {
            var mid = lo + (hi - lo + 1) / 2;
            parameter.Value = mid;
            var at = command.ExecuteScalar() is long t ? t : throw new InvalidDataException($"The op log has no version {mid}.");
            if (at <= atMs)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return lo;
    }

    /// <summary>When <paramref name="version"/> was committed (the creation time for version 0).</summary>
    public long CommittedAtMs(int version)
    {
        if (version == 0)
        {
            return CreatedAtMs;
        }
        if (version == OldestVersion)
        {
            return _oldestAtMs;
        }
        if (version < OldestVersion)
        {
            throw PastRetention($"version {version}");
        }
        using var command = Command("SELECT created_at FROM ops WHERE version = $v");
        command.Parameters.AddWithValue("$v", version);
        return command.ExecuteScalar() is long t ? t : throw new InvalidDataException($"The op log has no version {version}.");
    }

    /// <summary>
    /// The text's length at <paramref name="version"/> in UTF-16 code units, as the op log records it
    /// after each op (a folded version's from its snapshot), without rebuilding the text.
    /// </summary>
    public long LengthAt(int version)
    {
        if (version <= 0)
        {
            return 0;
        }
        using var command = Command("""
            SELECT COALESCE((SELECT length FROM ops WHERE version = $v),
                            (SELECT length FROM snapshots WHERE version = $v),
                            (SELECT MAX(length) FROM snapshots), 0)
            """);
        command.Parameters.AddWithValue("$v", version);
        return command.ExecuteScalar() is long length ? length : 0;
    }

    /// <summary>
    /// The text at <paramref name="version"/> (0…<see cref="Version"/>): the nearest complete
    /// snapshot at or below it, then the ops after that snapshot replayed onto it.
    /// </summary>
    public string TextAt(int version) => ContentAt(version).PlainText();

    /// <summary>
    /// The content at <paramref name="version"/> (0…<see cref="Version"/>): the nearest complete
    /// snapshot at or below it, then the ops after that snapshot replayed onto it.
    /// </summary>
    public DocContent ContentAt(int version)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(version, Version);
        if (version < OldestVersion)
        {
            throw PastRetention($"version {version}");
        }
        var content = Type.Empty;
        var at = 0;
        if (SqliteDocumentStore.ReadSnapshot(_connection, _transaction, version) is { } snapshot)
        {
            at = snapshot.Version;
            content = Type.ParseSnapshot(snapshot.Text);
        }
        using (var command = Command("SELECT version, op FROM ops WHERE version > $a AND version <= $b ORDER BY version"))
        {
            command.Parameters.AddWithValue("$a", at);
            command.Parameters.AddWithValue("$b", version);
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var v = reader.GetInt32(0);
                if (v != at + 1)
                {
                    throw new InvalidDataException($"The op log jumps from version {at} to {v}.");
                }
                content = SqliteDocumentStore.ParseOp(Type, v, reader.GetString(1)).Apply(content);
                at = v;
            }
        }
        return at == version ? content : throw new InvalidDataException($"The op log ends at version {at}, before {version}.");
    }

    /// <summary>
    /// History entries with versions below <paramref name="before"/>, newest first, at most
    /// <paramref name="limit"/>. An entry is a run of consecutive ops by one author (the stored
    /// author key: token subject and clientId) at most <paramref name="gapMs"/> apart. Runs never
    /// cross a multiple of <paramref name="span"/> versions, so one entry costs at most that many
    /// rows to read, and the entries do not depend on where a page starts. Ops made by the server
    /// (REST writes and restores, clientId "") are never grouped: different callers share that id.
    /// Reading stops early, at an entry's end, after <paramref name="maxRows"/> rows; then
    /// <paramref name="more"/> is true, as it is when older entries remain.
    /// </summary>
    public List<HistoryEntry> Entries(int before, int limit, long gapMs, int span, int maxRows, out bool more)
    {
        var entries = new List<HistoryEntry>();
        more = false;
        var names = new AuthorNames(this);
        using var command = Command("SELECT version, client_id, created_at FROM ops WHERE version < $b ORDER BY version DESC");
        command.Parameters.AddWithValue("$b", before);
        using var reader = command.ExecuteReader();
        int top = 0, from = 0, rows = 0;
        string? author = null;
        long topAt = 0, fromAt = 0;
        while (reader.Read())
        {
            rows++;
            var version = reader.GetInt32(0);
            var key = reader.GetString(1);
            var at = reader.GetInt64(2);
            var joins = author is not null
                && key.Length > 0
                && string.Equals(key, author, StringComparison.Ordinal)
                && fromAt - at <= gapMs
                && version % span != 0; // `from` (= version + 1) would start a new span
            if (joins)
            {
                from = version;
                fromAt = at;
                continue;
            }
            if (author is not null)
            {
                entries.Add(new HistoryEntry(top, from, DateTimeOffset.FromUnixTimeMilliseconds(topAt), OpAuthor.ClientIdOf(author)) { Author = names.Of(author, top) });
                if (entries.Count == limit || rows > maxRows)
                {
                    more = true;
                    return entries;
                }
            }
            author = key;
            top = from = version;
            topAt = fromAt = at;
        }
        if (author is not null)
        {
            entries.Add(new HistoryEntry(top, from, DateTimeOffset.FromUnixTimeMilliseconds(topAt), OpAuthor.ClientIdOf(author)) { Author = names.Of(author, top) });
        }
        return entries;
    }

    /// <summary>Names for the entries of one page: a member's by author key (read once each), a server write's by version.</summary>
    private sealed class AuthorNames(HistoryReader reader)
    {
        private readonly Dictionary<string, OpAuthorship?> _members = new(StringComparer.Ordinal);
        private bool? _tables;

        public OpAuthorship? Of(string authorKey, int version)
        {
            _tables ??= reader.Command("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'authors'").ExecuteScalar() is long n && n > 0;
            if (_tables != true)
            {
                return null;
            }
            if (authorKey.Length == 0)
            {
                // The server's own ops share one author key: each says what it was.
                using var write = reader.Command("SELECT kind, subject, name FROM server_writes WHERE version = $v");
                write.Parameters.AddWithValue("$v", version);
                using var row = write.ExecuteReader();
                return row.Read() ? new OpAuthorship(row.GetString(0), row.GetString(1), row.IsDBNull(2) ? null : row.GetString(2)) : null;
            }
            if (!_members.TryGetValue(authorKey, out var known))
            {
                using var member = reader.Command("SELECT subject, name FROM authors WHERE author_key = $k");
                member.Parameters.AddWithValue("$k", authorKey);
                using var row = member.ExecuteReader();
                known = _members[authorKey] = row.Read() ? new OpAuthorship(OpAuthorship.Member, row.GetString(0), row.IsDBNull(1) ? null : row.GetString(1)) : null;
            }
            return known;
        }
    }

    private SqliteCommand Command(string sql)
    {
        var command = _connection.CreateCommand();
        command.Transaction = _transaction;
        command.CommandText = sql;
        return command;
    }

    public void Dispose()
    {
        _transaction.Dispose();
        _connection.Dispose();
    }
}
