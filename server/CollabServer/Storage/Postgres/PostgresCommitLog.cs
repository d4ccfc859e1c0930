using System.Collections.Concurrent;
using System.Diagnostics;
using CollabServer.Diagnostics;
using Npgsql;

namespace CollabServer.Storage.Postgres;

/// <summary>
/// The commit log in PostgreSQL (<c>Collab:Postgres</c>): a batch is acknowledged once PostgreSQL
/// has committed it (with synchronous standbys, once a quorum has). Batches of different documents
/// that arrive while a round is being written go together in the next round: one statement, one
/// transaction, one WAL flush, each document's batch fenced and written all or nothing on its own
/// (the node log's group commit, with PostgreSQL as the disk). The document's own SQLite file is
/// then only the node's working copy: written first, unsynced, and brought up to date from
/// PostgreSQL when the document is loaded (<see cref="PostgresStorage"/>).
/// </summary>
public sealed class PostgresCommitLog(PostgresDatabase database, CollabMetrics metrics, ILogger<PostgresCommitLog> logger) : ICommitLog
{
    /// <summary>Most batches in one round (one statement); more wait for the next.</summary>
    private const int MaxRound = 512;

    /// <summary>The newest version of each document this node knows is durable in PostgreSQL.</summary>
    private readonly ConcurrentDictionary<string, int> _durable = new(StringComparer.Ordinal);

    private readonly Lock _gate = new();
    private List<(LogBatch Batch, Action<Exception?> Durable)> _waiting = [];
    private int _writers;

    /// <summary>Rounds written at once: while one waits for its WAL flush, the next is sent (PostgreSQL flushes them together when it can).</summary>
    private const int MaxWriters = 2;

    public bool DurableOnStoreCommit => false;

    /// <summary>
    /// Queues the batch for the next round, and starts a writer if fewer than
    /// <see cref="MaxWriters"/> are writing. The writers are asynchronous: a round waiting for
    /// PostgreSQL holds no thread, and while one is being written the next gathers.
    /// </summary>
    public void Append(LogBatch batch, Action<Exception?> durable)
    {
        lock (_gate)
        {
            _waiting.Add((batch, durable));
            if (_writers == MaxWriters)
            {
                return; // it goes in the next round
            }
            _writers++;
        }
        ThreadPool.UnsafeQueueUserWorkItem(_ => _ = WriteRoundsAsync(), null);
    }

    /// <summary>Writes rounds until nothing waits.</summary>
    private async Task WriteRoundsAsync()
    {
        while (true)
        {
            List<(LogBatch Batch, Action<Exception?> Durable)> round;
            lock (_gate)
            {
                if (_waiting.Count == 0)
                {
                    _writers--;
                    return;
                }
                if (_waiting.Count <= MaxRound)
                {
                    round = _waiting;
                    _waiting = [];
                }
                else
                {
                    round = _waiting[..MaxRound];
                    _waiting.RemoveRange(0, MaxRound);
                }
            }
            // In id order: two nodes' rounds (a deposed owner's and its successor's) lock rows in the same order.
            round.Sort((a, b) => string.CompareOrdinal(a.Batch.DocId, b.Batch.DocId));
            await WriteAsync(round).ConfigureAwait(false);
        }
    }

    private async Task WriteAsync(List<(LogBatch Batch, Action<Exception?> Durable)> round)
    {
        var started = Stopwatch.GetTimestamp();
        Exception?[] errors;
        try
        {
            errors = await database.AppendAsync(round.ConvertAll(r => r.Batch)).ConfigureAwait(false);
        }
        catch (PostgresException ex) when (round.Count > 1)
        {
            // PostgreSQL refused the statement (not a lost connection): one batch may be the cause
            // (a value it cannot store); each is tried alone, so it does not sink the others.
            Log.PostgresRoundSplit(logger, round.Count, ex);
            foreach (var one in round)
            {
                await WriteAsync([one]).ConfigureAwait(false);
            }
            return;
        }
        catch (Exception ex)
        {
            if (PostgresDatabase.IsUnavailable(ex))
            {
                database.ClearPool(); // the next rounds get fresh connections
            }
            var error = new CommitLogException($"PostgreSQL did not take a round of {round.Count} batches: {ex.Message}", ex);
            errors = [.. round.Select(_ => (Exception?)error)];
        }
        metrics.PostgresCommitted(round.Count, Stopwatch.GetElapsedTime(started), errors);
        for (var i = 0; i < round.Count; i++)
        {
            var (batch, durable) = round[i];
            if (errors[i] is not { } error)
            {
                _durable[batch.DocId] = batch.Ops[^1].Version;
            }
            else
            {
                // What this node wrote after the last durable version is suspect; the next load replaces it.
                _durable.TryRemove(batch.DocId, out _);
                if (error is not FencedException)
                {
                    Log.PostgresAppendFailed(logger, batch.DocId, error);
                }
            }
            try
            {
                durable(errors[i]);
            }
            catch (Exception ex)
            {
                Log.PostgresAppendFailed(logger, batch.DocId, ex); // never leaves the other batches of the round unanswered
            }
        }
    }

    /// <summary>The newest version of the document known durable in PostgreSQL, if this node knows one.</summary>
    internal int? DurableVersion(string docId) => _durable.TryGetValue(docId, out var v) ? v : null;

    /// <summary>Notes that the document is durable up to <paramref name="version"/> (its copy was just brought up to date), or forgets it (null).</summary>
    internal void SetDurable(string docId, int? version)
    {
        if (version is { } v)
        {
            _durable[docId] = v;
        }
        else
        {
            _durable.TryRemove(docId, out _);
        }
    }

    /// <summary>Creates or upgrades the schema before the node serves anything, waiting a while for PostgreSQL to come up.</summary>
    public void Recover(IDocumentStorage storage)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var found = database.Migrate();
                Log.PostgresReady(logger, database.Description, found, PostgresDatabase.SchemaVersion);
                return;
            }
            catch (Exception ex) when (PostgresDatabase.IsUnavailable(ex) && deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                Log.PostgresWaiting(logger, database.Description, ex.Message);
                Thread.Sleep(1000);
            }
        }
    }
}
