using System.Collections.Concurrent;
using System.Diagnostics;
using CollabServer.Diagnostics;

namespace CollabServer.Storage.Postgres;

/// <summary>
/// The commit log in PostgreSQL (<c>Collab:Postgres</c>): each document batch is one statement,
/// hence one transaction, and the batch is acknowledged once PostgreSQL has committed it (with
/// synchronous standbys, once a quorum has). The document's own SQLite file is then only the
/// node's working copy: it is written first, unsynced, and brought up to date from PostgreSQL
/// when the document is loaded (<see cref="PostgresStorage"/>). Many documents committing at once
/// share PostgreSQL's own group commit; nothing here waits for another document.
/// </summary>
public sealed class PostgresCommitLog(PostgresDatabase database, CollabMetrics metrics, ILogger<PostgresCommitLog> logger) : ICommitLog
{
    /// <summary>The newest version of each document this node knows is durable in PostgreSQL.</summary>
    private readonly ConcurrentDictionary<string, int> _durable = new(StringComparer.Ordinal);

    public bool DurableOnStoreCommit => false;

    public void Append(LogBatch batch, Action<Exception?> durable) => _ = AppendAsync(batch, durable);

    private async Task AppendAsync(LogBatch batch, Action<Exception?> durable)
    {
        var started = Stopwatch.GetTimestamp();
        Exception? error;
        try
        {
            error = await database.AppendAsync(batch).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (PostgresDatabase.IsUnavailable(ex))
            {
                database.ClearPool(); // the next batches get fresh connections
            }
            error = new CommitLogException($"PostgreSQL did not take the batch of '{batch.DocId}': {ex.Message}", ex);
        }
        metrics.PostgresCommitted(Stopwatch.GetElapsedTime(started), error);
        if (error is null)
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
        durable(error);
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
