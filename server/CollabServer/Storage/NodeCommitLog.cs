using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using System.Text;
using CollabServer.Diagnostics;
using Microsoft.Win32.SafeHandles;

namespace CollabServer.Storage;

/// <summary>
/// One append-only log per node (<c>Collab:CommitLog=Node</c>, the default): every document's
/// batches go into it, and one writer makes everything that arrived since its last sync durable
/// with one <c>fdatasync</c>, so a node syncs about once per millisecond under any number of
/// documents instead of once per document commit. The documents' own databases are written by
/// the same commits without syncing (<c>synchronous=NORMAL</c>: consistent after any crash,
/// not necessarily current).
/// </summary>
/// <remarks>
/// <para>Files: <c>{DataDir}/log/{node}/{sequence}.log</c>, each a header and then records framed
/// as <c>[length:int32][crc32:uint32][payload]</c>, the payload one <see cref="LogBatch"/>. A
/// record is only ever appended, by the one writer thread, and synced before any batch in it is
/// reported durable; so a crash can leave only the last record of the newest segment torn,
/// and a torn or zeroed record ends the reading of its segment.</para>
/// <para>Checkpoint: the writer moves to a new segment every <see cref="CollabOptions.LogCheckpointInterval"/>
/// and when one passes <see cref="CollabOptions.LogSegmentBytes"/>; a closed segment is deleted
/// once the database and WAL of every document it holds are synced. So the log holds at most
/// about two intervals of writes.</para>
/// <para>Recovery (<see cref="Recover"/>, before the node serves): every segment under
/// <c>{DataDir}/log</c>, this node's and, in a cluster sharing the data directory, the other
/// nodes', is read in order and each document's database is given the ops it lacks. A record
/// is applied only to the same life of the document (<see cref="LogBatch.Incarnation"/>), only
/// past the version the database holds, and only if its epoch is not below the one the database
/// records (a deposed owner's late writes are ignored). Only this node's segments are deleted.</para>
/// </remarks>
public sealed partial class NodeCommitLog : ICommitLog, IDisposable
{
    private static ReadOnlySpan<byte> Header => "COLLOG01"u8;

    private readonly string _root;
    private readonly string _dir;
    private readonly bool _sync;
    private readonly long _segmentBytes;
    private readonly DocumentCatalog _catalog;
    private readonly CollabMetrics _metrics;
    private readonly ILogger _logger;

    private readonly object _gate = new(); // also the writer's wake-up signal (Monitor.Pulse)
    private List<Entry> _incoming = [];
    private bool _rotateRequested;
    private bool _stopping;
    private Exception? _failed;
    private Thread? _writer;
    private Timer? _checkpointTimer;
    private readonly TimeSpan _checkpointInterval;

    // The writer's own state.
    private Segment? _current;
    private long _nextSequence = 1;
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _encoder;

    // Closed segments waiting for their checkpoint, oldest first; guarded by _gate.
    private readonly List<Segment> _closed = [];
    private readonly Lock _checkpointing = new();

    /// <summary>
    /// A node's log in <paramref name="root"/> (the data directory's <c>log</c> folder, holding a
    /// folder per node) under <paramref name="node"/>; <paramref name="sync"/> is false only with
    /// <c>Collab:Sync=Off</c> (records written, never synced); <paramref name="catalog"/> says where
    /// each document's database is. Nothing is written before <see cref="Recover"/>.
    /// </summary>
    public NodeCommitLog(string root, string node, bool sync, long segmentBytes, TimeSpan checkpointInterval, DocumentCatalog catalog, CollabMetrics metrics, ILogger logger)
    {
        _root = root;
        _dir = Path.Combine(root, node);
        _sync = sync;
        _segmentBytes = segmentBytes;
        _checkpointInterval = checkpointInterval;
        _catalog = catalog;
        _metrics = metrics;
        _logger = logger;
        _encoder = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);
    }

    public SyncMode DocumentSync => _sync ? SyncMode.Normal : SyncMode.Off;

    public bool DurableOnStoreCommit => false;

    /// <summary>Bytes the current segment holds; for tests and metrics.</summary>
    internal long CurrentSegmentBytes => _current?.Length ?? 0;

    /// <inheritdoc/>
    public void Append(LogBatch batch, Action<Exception?> durable)
    {
        Exception? refused;
        lock (_gate)
        {
            refused = _failed ?? (_stopping || _writer is null ? new CommitLogException("the node log is not open") : null);
            if (refused is null)
            {
                _incoming.Add(new Entry(batch, durable));
                if (_incoming.Count == 1)
                {
                    Monitor.Pulse(_gate);
                }
            }
        }
        if (refused is not null)
        {
            durable(refused);
        }
    }

    /// <inheritdoc/>
    public void Recover(IDocumentStorage storage)
    {
        var started = Stopwatch.GetTimestamp();
        var own = Directory.Exists(_dir) ? Segments(_dir) : [];
        var batches = new List<LogBatch>();
        var torn = 0;
        foreach (var dir in Directory.Exists(_root) ? Directory.GetDirectories(_root).Order(StringComparer.Ordinal).ToArray() : [])
        {
            foreach (var segment in Segments(dir))
            {
                if (!Read(segment.Path, batches))
                {
                    torn++;
                }
            }
        }
        var applied = 0;
        var documents = 0;
        foreach (var group in batches.GroupBy(b => b.DocId, StringComparer.Ordinal))
        {
            int n;
            using (var store = storage.OpenExisting(group.Key))
            {
                if (store is null)
                {
                    continue; // deleted since: its records have nothing to go to
                }
                n = store.Replay([.. group]);
            }
            applied += n;
            documents += n > 0 ? 1 : 0;
            SyncDocument(group.Key);
        }
        foreach (var segment in own)
        {
            File.Delete(segment.Path);
        }
        _nextSequence = own.Count > 0 ? own[^1].Sequence + 1 : 1;
        if (own.Count > 0)
        {
            FileSync.Directory(_dir);
        }
        Log.LogRecovered(_logger, batches.Count, applied, documents, torn, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        Start();
    }

    /// <summary>Starts the writer; the first segment is made by the first write, so a node that never writes leaves no file.</summary>
    private void Start()
    {
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "collab-node-log" };
        _writer.Start();
        _checkpointTimer = new Timer(_ => RequestRotation(), null, _checkpointInterval, _checkpointInterval);
    }

    private void RequestRotation()
    {
        lock (_gate)
        {
            _rotateRequested = true;
            Monitor.Pulse(_gate);
        }
    }

    private void WriteLoop()
    {
        var entries = new List<Entry>();
        while (true)
        {
            bool rotate;
            lock (_gate)
            {
                while (_incoming.Count == 0 && !_rotateRequested && !_stopping)
                {
                    Monitor.Wait(_gate);
                }
                if (_incoming.Count == 0 && _stopping)
                {
                    return;
                }
                (entries, _incoming) = (_incoming, entries);
                rotate = _rotateRequested;
                _rotateRequested = false;
            }
            Exception? error = null;
            try
            {
                if (entries.Count > 0)
                {
                    Write(entries);
                }
                if (rotate || _current?.Length >= _segmentBytes)
                {
                    Rotate();
                }
            }
            catch (Exception ex)
            {
                error = new CommitLogException("the node log could not be written", ex);
                Log.LogFailed(_logger, ex);
                lock (_gate)
                {
                    _failed = error; // every later append is refused: its documents step down, nothing is acknowledged
                }
            }
            foreach (var entry in entries)
            {
                entry.Durable(error);
            }
            entries.Clear();
            if (error is not null)
            {
                lock (_gate)
                {
                    (entries, _incoming) = (_incoming, entries);
                }
                foreach (var entry in entries)
                {
                    entry.Durable(error);
                }
                entries.Clear();
            }
        }
    }

    private void Write(List<Entry> entries)
    {
        var started = Stopwatch.GetTimestamp();
        _buffer.SetLength(0);
        var segment = _current ??= OpenSegment();
        foreach (var entry in entries)
        {
            Encode(entry.Batch);
            segment.Documents.Add(entry.Batch.DocId);
        }
        var bytes = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        RandomAccess.Write(segment.Handle, bytes, segment.Length);
        segment.Length += bytes.Length;
        if (_sync)
        {
            FileSync.Data(segment.Handle);
        }
        _metrics.LogSynced(entries.Count, Stopwatch.GetElapsedTime(started));
    }

    /// <summary>Appends one framed record for <paramref name="batch"/> to the buffer.</summary>
    private void Encode(LogBatch batch)
    {
        var frameAt = _buffer.Length;
        _encoder.Write(0L); // length and CRC, filled in below
        _encoder.Write(batch.DocId);
        _encoder.Write(batch.Incarnation);
        _encoder.Write(batch.Epoch);
        _encoder.Write(batch.Ops.Count);
        foreach (var op in batch.Ops)
        {
            _encoder.Write(op.Version);
            _encoder.Write(op.ClientId);
            _encoder.Write(op.OpId);
            _encoder.Write(op.CreatedAtMs);
            _encoder.Write(op.Op.ToString());
        }
        _encoder.Flush();
        var frame = _buffer.GetBuffer().AsSpan((int)frameAt, (int)(_buffer.Length - frameAt));
        var payload = frame[8..];
        BinaryPrimitives.WriteInt32LittleEndian(frame, payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], Crc32.HashToUInt32(payload));
    }

    /// <summary>Reads a segment's records into <paramref name="into"/>; false if it ended in a torn or damaged record (which, with what follows it, is dropped).</summary>
    internal static bool Read(string path, List<LogBatch> into)
    {
        var data = File.ReadAllBytes(path);
        if (data.Length < Header.Length || !data.AsSpan(0, Header.Length).SequenceEqual(Header))
        {
            return data.Length == 0;
        }
        var at = Header.Length;
        while (at + 8 <= data.Length)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(at));
            if (length == 0)
            {
                return true; // the end (a crash may leave zeros past it)
            }
            if (length < 0 || at + 8L + length > data.Length)
            {
                return false;
            }
            var payload = data.AsSpan(at + 8, length);
            if (Crc32.HashToUInt32(payload) != BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at + 4)))
            {
                return false;
            }
            into.Add(Decode(data, at + 8, length));
            at += 8 + length;
        }
        return at == data.Length;
    }

    private static LogBatch Decode(byte[] data, int offset, int length)
    {
        using var reader = new BinaryReader(new MemoryStream(data, offset, length, writable: false), Encoding.UTF8);
        var docId = reader.ReadString();
        var incarnation = reader.ReadInt64();
        var epoch = reader.ReadInt64();
        var count = reader.ReadInt32();
        var ops = new StoredOp[count];
        for (var i = 0; i < count; i++)
        {
            var version = reader.ReadInt32();
            var clientId = reader.ReadString();
            var opId = reader.ReadInt64();
            var createdAt = reader.ReadInt64();
            ops[i] = new StoredOp(version, SqliteDocumentStore.ParseOp(version, reader.ReadString()), clientId, opId, createdAt);
        }
        return new LogBatch(docId, incarnation, epoch, ops);
    }

    private Segment OpenSegment()
    {
        Directory.CreateDirectory(_dir);
        var sequence = _nextSequence++;
        var path = Path.Combine(_dir, $"{sequence:D12}.log");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        RandomAccess.Write(handle, Header, 0);
        FileSync.Data(handle);
        FileSync.Directory(_dir); // the new name is durable before any record in it is reported so
        return new Segment(sequence, path, handle) { Length = Header.Length };
    }

    /// <summary>Closes the current segment (every record in it is synced) and opens the next; the closed one waits for the checkpoint.</summary>
    private void Rotate()
    {
        if (_current is null || _current.Length == Header.Length)
        {
            return; // nothing in it
        }
        var next = OpenSegment();
        var closed = _current;
        closed.Handle.Dispose();
        _current = next;
        lock (_gate)
        {
            _closed.Add(closed);
        }
        ThreadPool.UnsafeQueueUserWorkItem(_ => Checkpoint(), null);
    }

    /// <summary>
    /// Syncs the database and WAL of every document in the closed segments, then deletes them.
    /// Their records are in those files already (a document's store commits a batch before the
    /// batch is appended here), so once the files are synced the records are not needed.
    /// </summary>
    internal void Checkpoint()
    {
        lock (_checkpointing)
        {
            List<Segment> closed;
            lock (_gate)
            {
                closed = [.. _closed];
            }
            if (closed.Count == 0)
            {
                return;
            }
            var started = Stopwatch.GetTimestamp();
            var documents = new HashSet<string>(StringComparer.Ordinal);
            foreach (var segment in closed)
            {
                documents.UnionWith(segment.Documents);
            }
            try
            {
                foreach (var docId in documents)
                {
                    SyncDocument(docId);
                }
                foreach (var segment in closed)
                {
                    File.Delete(segment.Path);
                }
                FileSync.Directory(_dir);
            }
            catch (Exception ex)
            { Log.CheckpointFailed(_logger, ex); // the segments stay; the next checkpoint tries again
                return;
            }
            lock (_gate)
            {
                _closed.RemoveRange(0, closed.Count);
            }
            _metrics.LogCheckpointed(documents.Count, Stopwatch.GetElapsedTime(started));
        }
    }

    private void SyncDocument(string docId)
    {
        var path = _catalog.DatabasePath(docId);
        FileSync.File(path + "-wal");
        FileSync.File(path);
    }

    private static List<(long Sequence, string Path)> Segments(string dir) =>
        [.. Directory.EnumerateFiles(dir, "*.log")
            .Select(p => (Sequence: long.TryParse(Path.GetFileNameWithoutExtension(p), out var n) ? n : -1, Path: p))
            .Where(s => s.Sequence >= 0)
            .OrderBy(s => s.Sequence)];

    /// <summary>Stops the writer after what is queued, then checkpoints everything: a clean stop leaves no log behind.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _checkpointTimer?.Dispose();
        _writer?.Join();
        if (_current is { } current)
        {
            current.Handle.Dispose();
            lock (_gate)
            {
                _closed.Add(current);
            }
            _current = null;
        }
        Checkpoint();
    }

    /// <summary>For tests: stops the writer and leaves every file as a killed process would, checkpointing nothing.</summary>
    internal void Abandon()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }
        _checkpointTimer?.Dispose();
        _writer?.Join();
        _current?.Handle.Dispose();
        _current = null;
        lock (_gate)
        {
            _closed.Clear();
        }
    }

    private readonly record struct Entry(LogBatch Batch, Action<Exception?> Durable);

    private sealed class Segment(long sequence, string path, SafeFileHandle handle)
    {
        public long Sequence { get; } = sequence;

        public string Path { get; } = path;

        public SafeFileHandle Handle { get; } = handle;

        public long Length { get; set; }

        /// <summary>The documents with records in it: the ones a checkpoint syncs.</summary>
        public HashSet<string> Documents { get; } = new(StringComparer.Ordinal);
    }
}
