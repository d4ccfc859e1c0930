using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabServer.Backup;

/// <summary>
/// Continuous backup (<c>Collab:Backup:Dir</c>): ships every document's committed ops to the backup
/// folder in checksummed batch files (<see cref="BackupFormat"/>), at most
/// <see cref="BackupOptions.Interval"/> after their commit or as soon as
/// <see cref="BackupOptions.MaxBatchBytes"/> are pending. The commit path only queues the batch it
/// is told about; one background writer does all the file work.
/// <para>
/// Each document's folder holds its versions 1..n without gaps or duplicates. The writer knows n
/// from the folder's file names, so after a restart it goes on where the backup ends: at start it
/// compares every document's database with its folder and ships what is missing (ops committed but
/// not shipped before a crash, or before backup was turned on), read from the database; a batch
/// that does not follow on the folder is completed from the database the same way, and versions
/// the folder already has are skipped. A deleted document's folder is moved to
/// <c>{Dir}/deleted/{id}.{unix ms}/</c> (kept, never read by rebuild), after its last ops are shipped.
/// </para>
/// </summary>
public sealed class BackupShipper : ICommitListener, IHostedService, IDisposable
{
    private abstract record Item(string DocId);

    private sealed record Ops(string DocId, IReadOnlyList<StoredOp> Batch, long Bytes) : Item(DocId);

    private sealed record Deletion(string DocId) : Item(DocId);

    private readonly BackupOptions _options;
    private readonly DocumentCatalog _catalog;
    private readonly ILogger<BackupShipper> _logger;
    private readonly Channel<Item> _queue = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<string, int> _shipped = new(StringComparer.Ordinal); // the last version in the backup, per document (each document written by one thread at a time)
    private readonly Dictionary<string, List<StoredOp>> _pending = new(StringComparer.Ordinal); // writer only
    private long _pendingBytes; // writer only
    private long _queuedBytes;
    private long _oldestQueued; // Stopwatch timestamp of the oldest op queued since the writer last drained, 0 if none
    private long _oldestPending; // the same for what the writer holds
    private Task? _writer;

    public BackupShipper(IOptions<CollabOptions> options, DocumentCatalog catalog, ILogger<BackupShipper> logger)
    {
        _options = options.Value.Backup;
        _catalog = catalog;
        _logger = logger;
        Dir = Path.GetFullPath(_options.Dir ?? throw new InvalidOperationException("Collab:Backup:Dir is not set."));
    }

    /// <summary>The backup folder.</summary>
    public string Dir { get; }

    /// <summary>Seconds since the oldest committed op that is not yet shipped was committed; 0 when all are shipped.</summary>
    public double LagSeconds
    {
        get
        {
            var oldest = Min(Volatile.Read(ref _oldestQueued), Volatile.Read(ref _oldestPending));
            return oldest == 0 ? 0 : Stopwatch.GetElapsedTime(oldest).TotalSeconds;
        }
    }

    /// <summary>About how many bytes of records are committed but not yet shipped.</summary>
    public long LagBytes => Volatile.Read(ref _queuedBytes);

    /// <summary>Batches written since start.</summary>
    public long BatchesWritten => Volatile.Read(ref _batches);

    private long _batches;

    private static long Min(long a, long b) => a == 0 ? b : b == 0 ? a : Math.Min(a, b);

    /// <inheritdoc/>
    public void Committed(CommittedBatch batch)
    {
        var bytes = EstimateBytes(batch.Ops);
        Interlocked.Add(ref _queuedBytes, bytes);
        Interlocked.CompareExchange(ref _oldestQueued, Stopwatch.GetTimestamp(), 0);
        _queue.Writer.TryWrite(new Ops(batch.DocId, batch.Ops, bytes));
    }

    /// <inheritdoc/>
    void ICommitListener.Deleted(string docId) => _queue.Writer.TryWrite(new Deletion(docId));

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.Combine(Dir, "docs"));
        _writer = Task.Run(RunAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    /// <summary>Ships everything committed so far, then stops.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        if (_writer is not null)
        {
            await _writer.WaitAsync(cancellationToken);
        }
    }

    private async Task RunAsync()
    {
        try
        {
            CatchUp();
        }
        catch (Exception ex)
        {
            BackupLog.CatchUpFailed(_logger, ex);
        }
        var reader = _queue.Reader;
        var done = false;
        while (!done)
        {
            Drain(reader);
            done = reader.Completion.IsCompleted;
            var due = _oldestPending != 0 && Stopwatch.GetElapsedTime(_oldestPending) >= FlushAge;
            if (done || due || _pendingBytes >= _options.MaxBatchBytes)
            {
                if (!FlushAll() && !done)
                {
                    await Task.Delay(TimeSpan.FromSeconds(1)); // the backup folder failed: try again soon, not in a loop
                }
                continue;
            }
            var wait = reader.WaitToReadAsync().AsTask();
            if (_oldestPending != 0)
            {
                var left = FlushAge - Stopwatch.GetElapsedTime(_oldestPending);
                await Task.WhenAny(wait, Task.Delay(left > TimeSpan.Zero ? left : TimeSpan.Zero));
            }
            else
            {
                await wait;
            }
        }
    }

    /// <summary>
    /// A batch is started when its oldest op is this old: three quarters of the interval, so that
    /// writing it (fsyncs on a network mount) fits in the last quarter and every op is in the
    /// backup within <see cref="BackupOptions.Interval"/> of its commit.
    /// </summary>
    private TimeSpan FlushAge => _options.Interval * 0.75;

    private void Drain(ChannelReader<Item> reader)
    {
        var queuedSince = Interlocked.Exchange(ref _oldestQueued, 0);
        var any = false;
        while (reader.TryRead(out var item))
        {
            any = true;
            switch (item)
            {
                case Ops ops:
                    if (!_pending.TryGetValue(ops.DocId, out var list))
                    {
                        _pending[ops.DocId] = list = [];
                    }
                    list.AddRange(ops.Batch);
                    _pendingBytes += ops.Bytes;
                    break;
                case Deletion deleted:
                    // Its last ops go to the folder that is set aside; a new document of that id starts afresh.
                    Flush(deleted.DocId);
                    Archive(deleted.DocId);
                    break;
            }
        }
        if (any && queuedSince != 0)
        {
            Volatile.Write(ref _oldestPending, Min(_oldestPending, queuedSince));
        }
    }

    /// <summary>
    /// Ships every document's pending ops, up to <see cref="Parallelism"/> documents at a time (each
    /// batch costs two fsyncs, which on a busy disk or a network mount take milliseconds; in
    /// parallel they overlap). False if some failed: they stay pending, and so does the lag.
    /// </summary>
    private bool FlushAll()
    {
        var work = _pending.ToList();
        _pending.Clear();
        var failed = new ConcurrentBag<KeyValuePair<string, List<StoredOp>>>();
        Parallel.ForEach(work, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, item =>
        {
            if (!TryShip(item.Key, item.Value))
            {
                failed.Add(item);
            }
        });
        foreach (var (docId, ops) in failed)
        {
            _pending[docId] = ops;
        }
        if (_pending.Count > 0)
        {
            return false;
        }
        _pendingBytes = 0;
        Volatile.Write(ref _oldestPending, 0);
        return true;
    }

    /// <summary>Documents whose batches are written at the same time.</summary>
    private const int Parallelism = 16;

    /// <summary>Ships one document's pending ops (before it is deleted); on failure they stay pending.</summary>
    private void Flush(string docId)
    {
        if (_pending.Remove(docId, out var ops) && !TryShip(docId, ops))
        {
            _pending[docId] = ops;
        }
    }

    /// <summary>Ships a document's ops; false on failure (the backup folder unreachable): the caller keeps them to try again.</summary>
    private bool TryShip(string docId, List<StoredOp> ops)
    {
        if (ops.Count == 0)
        {
            return true;
        }
        var bytes = EstimateBytes(ops);
        try
        {
            var shipped = Shipped(docId);
            if (ops[0].Version == 1 && shipped > 0)
            {
                // Version 1 again: the document was deleted and created anew without this writer being told (a crash in between).
                Archive(docId);
                shipped = 0;
            }
            var rows = new List<OpRow>(ops.Count);
            if (ops[0].Version > shipped + 1)
            {
                // Ops this writer never saw (committed before a restart): the database has them.
                rows.AddRange(_catalog.ReadOpRows(docId, shipped, ops[0].Version - shipped - 1));
            }
            foreach (var op in ops)
            {
                if (op.Version > shipped)
                {
                    rows.Add(new OpRow(op.Version, op.ClientId, op.OpId, op.CreatedAtMs, op.Json));
                }
            }
            Ship(docId, shipped, rows);
            Interlocked.Add(ref _queuedBytes, -bytes);
            return true;
        }
        catch (Exception ex)
        {
            BackupLog.ShipFailed(_logger, docId, ex);
            return false;
        }
    }

    /// <summary>About how many bytes <paramref name="ops"/> take as records (for the lag figure).</summary>
    private static long EstimateBytes(IReadOnlyList<StoredOp> ops)
    {
        long bytes = 0;
        foreach (var op in ops)
        {
            bytes += 32 + op.ClientId.Length + op.Json.Length;
        }
        return bytes;
    }

    /// <summary>Writes <paramref name="rows"/> that follow version <paramref name="shipped"/>, in files of at most MaxBatchBytes.</summary>
    private void Ship(string docId, int shipped, List<OpRow> rows)
    {
        if (rows.Count == 0)
        {
            return;
        }
        if (rows[0].Version != shipped + 1 || rows.Where((r, i) => r.Version != shipped + 1 + i).Any())
        {
            BackupLog.Gap(_logger, docId, shipped, rows[0].Version);
        }
        var dir = BackupFormat.DocDir(Dir, docId);
        var start = 0;
        while (start < rows.Count)
        {
            long size = BackupFormat.HeaderLength;
            var end = start;
            while (end < rows.Count && (end == start || size + BackupFormat.RecordLength(rows[end]) <= _options.MaxBatchBytes))
            {
                size += BackupFormat.RecordLength(rows[end]);
                end++;
            }
            BackupFormat.WriteDurably(dir, rows.GetRange(start, end - start));
            Interlocked.Increment(ref _batches);
            _shipped[docId] = rows[end - 1].Version;
            start = end;
        }
    }

    /// <summary>
    /// The last version of a document in the backup (0 when none), for any thread: retention keeps
    /// every op after it, since the backup still needs them.
    /// </summary>
    public int ShippedThrough(string docId) =>
        _shipped.TryGetValue(docId, out var shipped) ? shipped : LastInFolder(BackupFormat.DocDir(Dir, docId));

    private static int LastInFolder(string dir) => BackupFormat.ListBatches(dir) is { Count: > 0 } batches ? batches[^1].Last : 0;

    /// <summary>The last version in a document's backup folder (read from its file names the first time).</summary>
    private int Shipped(string docId)
    {
        if (!_shipped.TryGetValue(docId, out var shipped))
        {
            var dir = BackupFormat.DocDir(Dir, docId);
            shipped = LastInFolder(dir);
            // A batch cut short by a crash before its rename: never part of the backup.
            if (Directory.Exists(dir))
            {
                foreach (var leftover in Directory.EnumerateFiles(dir, "*" + BackupFormat.TempExtension))
                {
                    File.Delete(leftover);
                }
            }
            _shipped[docId] = shipped;
        }
        return shipped;
    }

    /// <summary>Moves a document's folder to <c>deleted/</c>.</summary>
    private void Archive(string docId)
    {
        try
        {
            var dir = BackupFormat.DocDir(Dir, docId);
            if (Directory.Exists(dir))
            {
                var deleted = Path.Combine(Dir, "deleted");
                Directory.CreateDirectory(deleted);
                Directory.Move(dir, Path.Combine(deleted, $"{docId}.{DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()}"));
                BackupFormat.SyncDirectory(Path.GetDirectoryName(dir)!);
                BackupFormat.SyncDirectory(deleted);
            }
        }
        catch (Exception ex)
        {
            BackupLog.ShipFailed(_logger, docId, ex);
        }
        _shipped[docId] = 0;
    }

    /// <summary>At start: ships what each document's database has beyond its backup folder.</summary>
    private void CatchUp()
    {
        foreach (var docId in _catalog.ListIds())
        {
            if (_catalog.IsQuarantined(docId) || _catalog.ReadSummary(docId) is not { } summary)
            {
                continue;
            }
            try
            {
                var shipped = Shipped(docId);
                if (summary.Version < shipped)
                {
                    BackupLog.BackupAhead(_logger, docId, summary.Version, shipped);
                    continue;
                }
                while (shipped < summary.Version)
                {
                    var rows = _catalog.ReadOpRows(docId, shipped, 10_000);
                    if (rows.Count == 0)
                    {
                        break;
                    }
                    Ship(docId, shipped, rows);
                    shipped = rows[^1].Version;
                }
            }
            catch (Exception ex)
            {
                BackupLog.ShipFailed(_logger, docId, ex);
            }
        }
    }

    public void Dispose() => _queue.Writer.TryComplete();
}

internal static partial class BackupLog
{
    [LoggerMessage(40, LogLevel.Error, "Backup of document {DocId} failed; its ops stay pending and are tried again.")]
    public static partial void ShipFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(41, LogLevel.Error, "Backup: catching up with the data directory failed.")]
    public static partial void CatchUpFailed(ILogger logger, Exception exception);

    [LoggerMessage(42, LogLevel.Error, "Backup of document {DocId}: after version {Shipped} comes {Next}; rebuild will report the gap.")]
    public static partial void Gap(ILogger logger, string docId, int shipped, int next);

    [LoggerMessage(43, LogLevel.Warning, "Backup of document {DocId}: its database is at version {Version} but its backup at {Shipped}; left alone.")]
    public static partial void BackupAhead(ILogger logger, string docId, int version, int shipped);
}
