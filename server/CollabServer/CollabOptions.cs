namespace CollabServer;

/// <summary>How SQLite syncs a commit to disk (PRAGMA synchronous).</summary>
public enum SyncMode
{
    /// <summary>fsync on every commit: an acknowledged op survives a power cut.</summary>
    Full,
    /// <summary>fsync at checkpoints only: an acknowledged op survives a process crash, not a power cut.</summary>
    Normal,
    /// <summary>No fsync at all: for tests and throwaway data.</summary>
    Off,
}

/// <summary>Where an acknowledged op is made durable (see <see cref="Storage.ICommitLog"/>).</summary>
public enum CommitLogMode
{
    /// <summary>One log per node, synced once for every batch that arrived since the last sync; the documents' files are written without syncing and brought up to date from the log after a crash.</summary>
    Node,
    /// <summary>Each document's own database is synced at every commit.</summary>
    Document,
}

/// <summary>Settings under <c>Collab:</c> in configuration (<c>--Collab:DataDir=PATH</c>, <c>Collab__DataDir</c>).</summary>
public sealed class CollabOptions
{
    public const string Section = "Collab";

    /// <summary>Where the per-document databases live.</summary>
    public string DataDir { get; set; } = "./data";

    /// <summary>A document with no members and no work is shut down, its database closed, after this long.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A document's database is closed after this long without writes, even with members; the next write opens it again.</summary>
    public TimeSpan DatabaseIdleTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether acknowledged ops are synced to disk: <see cref="SyncMode.Full"/> syncs before every
    /// acknowledgement (the node log, or each document's database with <see cref="CommitLogMode.Document"/>);
    /// <see cref="SyncMode.Off"/> never syncs (tests and throwaway data). <see cref="SyncMode.Normal"/>
    /// applies to <see cref="CommitLogMode.Document"/> only (PRAGMA synchronous=NORMAL); with the node log it is the same as Full.
    /// </summary>
    public SyncMode Sync { get; set; } = SyncMode.Full;

    /// <summary>Where acknowledged ops are made durable: one log per node (the default), or each document's own database.</summary>
    public CommitLogMode CommitLog { get; set; } = CommitLogMode.Node;

    /// <summary>The size of a node log segment file (made at full size ahead of need); when one is full the log moves to the next, and a checkpoint lets the old one go.</summary>
    public long LogSegmentBytes { get; set; } = 16L * 1024 * 1024;

    /// <summary>How often the node log moves to a new segment and lets the old one go (after syncing the documents written in it).</summary>
    public TimeSpan LogCheckpointInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>PRAGMA synchronous of the documents' own databases: not synced at each commit under the node log.</summary>
    internal SyncMode DocumentSync => CommitLog == CommitLogMode.Document && !UsesPostgres ? Sync : Sync == SyncMode.Off ? SyncMode.Off : SyncMode.Normal;

    /// <summary>
    /// An Npgsql connection string (<c>Host=db1,db2;Database=collab;Username=collab;Target Session
    /// Attributes=primary</c>): PostgreSQL is then the commit log and the durable tier (every
    /// acknowledged op is in it, so a node may lose its disk), and each node's SQLite files are its
    /// working copies. Null: the node's own disk is the durable tier (<see cref="CommitLog"/>).
    /// </summary>
    public string? Postgres { get; set; }

    /// <summary>Whether PostgreSQL is the durable tier.</summary>
    internal bool UsesPostgres => !string.IsNullOrEmpty(Postgres);

    /// <summary>A snapshot of the text is written after this many ops (more for large texts, see <see cref="Documents.CommitPipeline"/>).</summary>
    public int SnapshotInterval { get; set; } = 1000;

    /// <summary>Recent ops kept in memory per document for transforms, dedupe and resumes; older ones are read from disk.</summary>
    public int OpWindow { get; set; } = 1000;

    /// <summary>Most ops committed in one transaction.</summary>
    public int MaxBatch { get; set; } = 1024;

    /// <summary>Most ops a resuming client is sent instead of the whole text.</summary>
    public int MaxResumeOps { get; set; } = 10_000;

    /// <summary>Largest hub message accepted, in bytes.</summary>
    public long MaxMessageBytes { get; set; } = 1024 * 1024;

    /// <summary>Longest document, in UTF-16 code units.</summary>
    public int MaxDocumentLength { get; set; } = 16 * 1024 * 1024;

    /// <summary>Sustained ops per second per connection.</summary>
    public double OpsPerSecond { get; set; } = 1000;

    /// <summary>Ops a connection may send in a burst above the sustained rate.</summary>
    public double OpsBurst { get; set; } = 2000;

    /// <summary>
    /// Minimum thread-pool threads. A document's commit blocks its thread in fsync; with many
    /// documents committing at once the pool must not wait to grow (it adds about one thread a
    /// second), or every document's latency suffers.
    /// </summary>
    public int MinThreads { get; set; } = 64;

    /// <summary>Messages queued for one connection; past that it is closed and the client resumes.</summary>
    public int OutboundQueueLimit { get; set; } = 10_000;

    /// <summary>Documents one connection may be joined to at once.</summary>
    public int MaxDocumentsPerConnection { get; set; } = 100;

    /// <summary>Documents one connection may create (by its first write to a new document) per minute.</summary>
    public int DocumentsCreatedPerMinute { get; set; } = 60;

    /// <summary>
    /// How far behind the current version an op's base may be: an older base answers
    /// <c>unknown_version</c> (the client resumes and rebases), so one op never costs the
    /// document's loop more than this many transforms. The default is the in-memory window.
    /// </summary>
    public int MaxTransformOps { get; set; } = 1000;

    /// <summary>Sustained presence updates per second per connection (and the burst above it).</summary>
    public double PresencePerSecond { get; set; } = 20;

    public double PresenceBurst { get; set; } = 40;

    /// <summary>Most selection ranges in one presence update.</summary>
    public int MaxSelectionRanges { get; set; } = 100;

    /// <summary>
    /// Most TCP connections the server keeps open at once; past it a new connection is closed at
    /// once (counted as <c>kestrel_rejected_connections_total</c>). Null: the process's open-file
    /// limit less <see cref="FileHeadroom"/>, so the files documents and logs need are always left.
    /// </summary>
    public int? MaxConnections { get; set; }

    /// <summary>Open files kept back from connections when <see cref="MaxConnections"/> is computed (a quarter of the limit when that is more).</summary>
    public int FileHeadroom { get; set; } = 1024;

    /// <summary>Sustained joins (and leaves) per second per connection, and the burst above it.</summary>
    public double JoinsPerSecond { get; set; } = 5;

    public double JoinsBurst { get; set; } = 100;

    /// <summary>Longest user name in a join or presence update, in UTF-16 code units.</summary>
    public int MaxUserNameLength { get; set; } = 100;

    /// <summary>Longest user colour in a join or presence update, in UTF-16 code units.</summary>
    public int MaxUserColorLength { get; set; } = 32;

    /// <summary>Bytes of ops a document keeps in memory (<see cref="OpWindow"/> counts them); older ones are read from disk.</summary>
    public long OpWindowBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>
    /// Most position steps (op components walked, times positions) mapping one member's selection
    /// may cost the document's loop; a presence update based further back answers
    /// <c>unknown_version</c>, and a stored selection that far behind is shown at its clamped positions.
    /// </summary>
    public long PresenceMapBudget { get; set; } = 200_000;

    /// <summary>Sustained bytes of ops per second one subject (one connection when anonymous) may write through the hub, and the burst above it.</summary>
    public long WriteBytesPerSecond { get; set; } = 256 * 1024;

    public long WriteBytesBurst { get; set; } = 4 * 1024 * 1024;

    /// <summary>Sustained bytes of ops per second one document takes from all its writers, and the burst above it.</summary>
    public long DocumentWriteBytesPerSecond { get; set; } = 1024 * 1024;

    public long DocumentWriteBytesBurst { get; set; } = 16 * 1024 * 1024;

    /// <summary>Largest REST request body, in bytes; a larger one answers 413.</summary>
    public long MaxRestBodyBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Most documents one page of <c>GET /api/docs</c> lists (its <c>limit</c> may ask for fewer).</summary>
    public int MaxListPage { get; set; } = 1000;

    /// <summary>
    /// A StackExchange.Redis configuration string (<c>127.0.0.1:6379</c>): the node joins a
    /// cluster that routes each document to its owner through Redis. Null: a single node.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>This node's id in the cluster (<c>A-Z a-z 0-9 . _ -</c>); required with <see cref="Redis"/>.</summary>
    public string? NodeId { get; set; }

    /// <summary>The base URL clients are sent to for documents this node owns; required with <see cref="Redis"/>.</summary>
    public string? NodeUrl { get; set; }

    /// <summary>
    /// How long a document's owner lease and a node's registration last without renewal. An owner
    /// renews every third of it and stops acknowledging a fifth of it (at least 250 ms) before it
    /// could run out; after a crash another node takes over within it.
    /// </summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Reading the past (<c>Collab:History:…</c>).</summary>
    public HistoryOptions History { get; set; } = new();

    /// <summary>Continuous backup of the op logs (<c>Collab:Backup:…</c>); off unless <see cref="BackupOptions.Dir"/> is set.</summary>
    public BackupOptions Backup { get; set; } = new();

    /// <summary>Limits of the REST API (<c>Collab:Rest:</c>).</summary>
    public RestLimitsOptions Rest { get; set; } = new();
}

/// <summary>Settings under <c>Collab:Backup:</c> (see <see cref="Backup.BackupShipper"/>).</summary>
public sealed class BackupOptions
{
    /// <summary>Where committed ops are shipped (may be a network mount), and where <c>POST /api/admin/backup</c> copies go; null: no continuous backup.</summary>
    public string? Dir { get; set; }

    /// <summary>A committed op is shipped at most this long after its commit (plus the time to write the batch).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Pending ops are shipped as soon as their records reach this many bytes, before the interval is up.</summary>
    public long MaxBatchBytes { get; set; } = 16 * 1024 * 1024;
}

/// <summary>Settings under <c>Collab:History:</c>.</summary>
public sealed class HistoryOptions
{
    /// <summary>
    /// Snapshots kept for reading old versions: of the snapshots written every
    /// <see cref="CollabOptions.SnapshotInterval"/> ops, one is kept whenever it is at least this
    /// many versions after the previous kept one (besides the newest two, which are always kept), so
    /// reading any version replays at most about this many ops plus one snapshot interval. 0 keeps
    /// every snapshot.
    /// </summary>
    public int SnapshotSpacing { get; set; } = 5_000;

    /// <summary>Consecutive edits of one member at most this far apart are one history entry.</summary>
    public TimeSpan GroupGap { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long the past stays readable: ops older than this are folded into a snapshot at the
    /// boundary (off the actor's loop), and reading before it answers the oldest version kept.
    /// Zero keeps everything.
    /// </summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often the retention pass looks at every document.</summary>
    public TimeSpan RetentionCheckInterval { get; set; } = TimeSpan.FromHours(1);
}
