using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Hashing;
using System.Text;
using CollabServer.Diagnostics;
using Microsoft.Win32.SafeHandles;
using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>
/// One append-only log per node (<c>Collab:CommitLog=Node</c>, the default): every document's
/// batches go into it, and one writer at a time makes everything that arrived since its last sync durable
/// with one <c>fdatasync</c>, so a node syncs about once per millisecond under any number of
/// documents instead of once per document commit. The documents' own databases are written by
/// the same commits without syncing (<c>synchronous=NORMAL</c>: consistent after any crash,
/// not necessarily current).
/// </summary>
/// <remarks>
/// <para>Files: <c>{DataDir}/log/{node}/{sequence}.log</c>, each a header and then records framed
/// as <c>[length:int32][crc32:uint32][payload]</c>, the payload one <see cref="LogBatch"/>. A
/// record is only ever appended, by one writer at a time, and synced before any batch in it is
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
    private bool _open;
    private bool _writing; // a caller of Append is the writer (see WriteRounds)
    private Exception? _failed;
    private Timer? _checkpointTimer;
    private Thread? _checkpointer;
    private readonly SemaphoreSlim _checkpointDue = new(0);
    private readonly TimeSpan _checkpointInterval;

    // The writer's own state.
    private Segment? _current;
    private long _nextSequence = 1;
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _encoder;

    // Closed segments waiting for their checkpoint, oldest first; guarded by _gate.
    private readonly List<Segment> _closed = [];
    private readonly Lock _checkpointing = new();

    // The next segment, made ahead of need (see Preallocate); the writer's.
    private Task<Segment>? _spare;

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

    public bool DurableOnStoreCommit => false;

    /// <inheritdoc/>
    /// <remarks>
    /// Group commit without a thread of its own: the first caller to find no write under way
    /// becomes the writer and writes and syncs one round, everything appended so far, its own
    /// batch included; the others only add their batch to the next round. If more waits after
    /// that round, a pool thread takes over the rounds until nothing waits, so a caller (an
    /// actor's loop committing inline) is never held writing other documents' batches. So one
    /// document alone syncs on its own commit's thread, as a per-document commit would, and many
    /// share each sync.
    /// </remarks>
    public void Append(LogBatch batch, Action<Exception?> durable)
    {
        Exception? refused;
        lock (_gate)
        {
            refused = _failed ?? (_stopping || !_open ? new CommitLogException("the node log is not open") : null);
            if (refused is null)
            {
                _incoming.Add(new Entry(batch, durable));
                if (_writing)
                {
                    return; // the writer takes it in its next round
                }
                _writing = true;
            }
        }
        if (refused is not null)
        {
            durable(refused);
            return;
        }
        WriteRounds(oneRound: true);
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
            try
            {
                using var store = storage.OpenExisting(group.Key);
                if (store is null)
                {
                    continue; // deleted since: its records have nothing to go to
                }
                // In version order: a document's batches may be in several nodes' logs (owners one after another).
                n = store.Replay([.. group.OrderBy(b => b.Ops[0].Version)]);
            }
            catch (Exception ex) when (DocumentCatalog.IsDamage(ex))
            {
                Log.RecoverySkippedDamaged(_logger, group.Key, ex); // its first load sets it aside
                continue;
            }
            applied += n;
            documents += n > 0 ? 1 : 0;
            // Synced even when nothing was missing: after a killed process the file has every op
            // the log has, but maybe only in the page cache, and the log is deleted below.
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

    /// <summary>Opens the log for appends; the first segment is made by the first write, so a node that never writes leaves no file.</summary>
    private void Start()
    {
        lock (_gate)
        {
            _open = true;
        }
        _checkpointTimer = new Timer(_ => RequestRotation(), null, _checkpointInterval, _checkpointInterval);
        _checkpointer = new Thread(CheckpointLoop) { IsBackground = true, Name = "collab-log-checkpoint" };
        _checkpointer.Start();
    }

    /// <summary>The checkpoint interval is up: the next round moves to a new segment (this caller writes that round if no one else is writing).</summary>
    private void RequestRotation()
    {
        lock (_gate)
        {
            _rotateRequested = true;
            if (_writing || _stopping)
            {
                return;
            }
            _writing = true;
        }
        WriteRounds(oneRound: true);
    }

    /// <summary>
    /// The writer's rounds: each takes everything appended so far, writes it with one sync and
    /// reports it. It stops when nothing waits; with <paramref name="oneRound"/>, after its first
    /// round it hands what waits to a pool thread (which stays the writer) instead.
    /// </summary>
    private void WriteRounds(bool oneRound)
    {
        var entries = new List<Entry>();
        for (var round = 0; ; round++)
        {
            bool rotate;
            lock (_gate)
            {
                if (_incoming.Count == 0 && !_rotateRequested)
                {
                    _writing = false;
                    Monitor.PulseAll(_gate); // a stop waits for the writer to finish
                    return;
                }
                if (oneRound && round > 0)
                {
                    ThreadPool.UnsafeQueueUserWorkItem(log => log.WriteRounds(oneRound: false), this, preferLocal: false);
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
                if (rotate)
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
                    entries.AddRange(_incoming);
                    _incoming.Clear();
                }
            }
            foreach (var entry in entries)
            {
                entry.Durable(error);
            }
            entries.Clear();
        }
    }

    private void Write(List<Entry> entries)
    {
        var started = Stopwatch.GetTimestamp();
        _buffer.SetLength(0);
        foreach (var entry in entries)
        {
            Encode(entry.Batch);
        }
        var bytes = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
        if (_current is { } full && full.Length + bytes.Length > _segmentBytes)
        {
            Rotate(); // records never straddle segments; one larger than a segment makes its segment grow
        }
        var segment = _current ??= OpenSegment();
        foreach (var entry in entries)
        {
            segment.Documents.Add(entry.Batch.DocId);
        }
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
            _encoder.Write(op.Json);
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

    /// <summary>A logged op: its record does not say its document's type; its JSON's shape does (<see cref="DocumentType.OfStoredOp"/>).</summary>
    private static DocOp ParseLoggedOp(int version, string json) => SqliteDocumentStore.ParseOp(DocumentType.OfStoredOp(json), version, json);

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
            ops[i] = new StoredOp(version, ParseLoggedOp(version, reader.ReadString()), clientId, opId, createdAt);
        }
        return new LogBatch(docId, incarnation, epoch, ops);
    }

    /// <summary>
    /// The next segment: the spare made beforehand, or one made now; and the one after it is
    /// started in the background.
    /// </summary>
    private Segment OpenSegment()
    {
        var sequence = _nextSequence++;
        var segment = _spare is { } spare && spare.Result.Sequence == sequence ? spare.Result : Preallocate(sequence);
        var next = sequence + 1;
        _spare = Task.Run(() => Preallocate(next));
        return segment;
    }

    /// <summary>
    /// Makes a segment file at its full size, zeros after its header, synced with its name: an
    /// append then changes no metadata, so its <c>fdatasync</c> writes only the record (on ext4 it
    /// need not wait for a journal commit, which would also flush every other file's new blocks).
    /// </summary>
    private Segment Preallocate(long sequence)
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, $"{sequence:D12}.log");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete);
        try
        {
            var zeros = new byte[1 << 20];
            for (long at = 0; at < _segmentBytes; at += zeros.Length)
            {
                RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, _segmentBytes - at)), at);
            }
            RandomAccess.Write(handle, Header, 0);
            RandomAccess.FlushToDisk(handle);
            FileSync.Directory(_dir); // the name is durable before any record in the file is reported so
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return new Segment(sequence, path, handle) { Length = Header.Length };
    }

    /// <summary>Deletes the spare segment, which holds no record (on a clean stop).</summary>
    private void DropSpare()
    {
        if (_spare is { } spare)
        {
            _spare = null;
            try
            {
                var segment = spare.GetAwaiter().GetResult();
                segment.Handle.Dispose();
                File.Delete(segment.Path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // It held nothing: the next start deletes it with the other segments it read.
            }
        }
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
        _checkpointDue.Release();
    }

    /// <summary>
    /// Checkpoints every document in the closed segments (WAL and database synced), then deletes them.
    /// Their records are in those files already (a document's store commits a batch before the
    /// batch is appended here), so once the files are synced the records are not needed.
    /// </summary>
    internal void Checkpoint(TimeSpan pace = default)
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
                    if (pace > TimeSpan.Zero && !Volatile.Read(ref _stopping))
                    {
                        Thread.Sleep(pace);
                    }
                }
                foreach (var segment in closed)
                {
                    File.Delete(segment.Path);
                }
                FileSync.Directory(_dir);
            }
            catch (Exception ex)
            {
                Log.CheckpointFailed(_logger, ex); // the segments stay; the next checkpoint tries again
                return;
            }
            lock (_gate)
            {
                _closed.RemoveRange(0, closed.Count);
            }
            _metrics.LogCheckpointed(documents.Count, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>
    /// Checkpoints each closed segment, spread over up to a third of the checkpoint interval (at
    /// most 20 ms between documents), so the syncs of hundreds of documents do not arrive at the
    /// disk, and take the CPU, in one burst while commits wait on the log's own sync.
    /// </summary>
    private void CheckpointLoop()
    {
        while (true)
        {
            _checkpointDue.Wait();
            if (Volatile.Read(ref _stopping))
            {
                return;
            }
            int documents;
            lock (_gate)
            {
                documents = _closed.Sum(c => c.Documents.Count);
            }
            var pace = TimeSpan.FromTicks(Math.Min(TimeSpan.FromMilliseconds(20).Ticks, _checkpointInterval.Ticks / 3 / Math.Max(1, documents)));
            Checkpoint(pace);
        }
    }

    /// <summary>Makes everything committed to a document so far durable in its own files (and moves its WAL into its database).</summary>
    private void SyncDocument(string docId)
    {
        try
        {
            SqliteDocumentStore.Checkpoint(_catalog.DatabasePath(docId));
        }
        catch (Microsoft.Data.Sqlite.SqliteException) when (!File.Exists(_catalog.DatabasePath(docId)))
        {
            // Deleted meanwhile: nothing to keep.
        }
    }

    private static List<(long Sequence, string Path)> Segments(string dir) =>
        [.. Directory.EnumerateFiles(dir, "*.log")
            .Select(p => (Sequence: long.TryParse(Path.GetFileNameWithoutExtension(p), out var n) ? n : -1, Path: p))
            .Where(s => s.Sequence >= 0)
            .OrderBy(s => s.Sequence)];

    /// <summary>Refuses appends from now on and waits for the writer and the checkpoint thread to finish; false if it was stopped already.</summary>
    private bool StopWriting()
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return false;
            }
            _stopping = true;
            while (_writing)
            {
                Monitor.Wait(_gate);
            }
        }
        _checkpointTimer?.Dispose();
        _checkpointDue.Release();
        _checkpointer?.Join();
        return true;
    }

    /// <summary>Stops the writer after what is queued, then checkpoints everything: a clean stop leaves no log behind.</summary>
    public void Dispose()
    {
        if (!StopWriting())
        {
            return;
        }
        if (_current is { } current)
        {
            current.Handle.Dispose();
            lock (_gate)
            {
                _closed.Add(current);
            }
            _current = null;
        }
        DropSpare();
        Checkpoint();
    }

    /// <summary>For tests: stops the writer and leaves every file as a killed process would, checkpointing nothing.</summary>
    internal void Abandon()
    {
        StopWriting();
        _current?.Handle.Dispose();
        _current = null;
        if (_spare is { } spare)
        {
            spare.GetAwaiter().GetResult().Handle.Dispose();
        }
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
