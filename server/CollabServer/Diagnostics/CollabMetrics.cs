using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using CollabServer.Hubs;
using CollabServer.Storage;

namespace CollabServer.Diagnostics;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics, meter <c>CollabServer</c>, created through
/// the host's <see cref="IMeterFactory"/> so each host has its own), exported at <c>/metrics</c>
/// in Prometheus text format by OpenTelemetry's exporter as <c>collab_*</c>, next to the
/// process's CPU time and memory (<c>process_cpu_time_seconds_total</c>, <c>process_memory_usage_bytes</c>).
/// </summary>
public sealed class CollabMetrics : ICommitListener, IDisposable
{
    public const string MeterName = "CollabServer";

    private readonly Meter _meter;
    private readonly Counter<long> _opsCommitted;
    private readonly Counter<long> _opsDelivered;
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _commitSeconds;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _limitsRefused;
    private readonly Counter<long> _leaseClaims;
    private readonly Counter<long> _renewFailures;
    private readonly Counter<long> _redirects;
    private readonly Counter<long> _moves;
    private readonly Counter<long> _fencedCommits;
    private readonly Histogram<double> _logSyncSeconds;
    private readonly Counter<long> _logBatches;
    private readonly Histogram<double> _checkpointSeconds;
    private readonly Histogram<double> _postgresSeconds;
    private readonly Counter<long> _postgresFailures;
    private readonly Counter<long> _postgresBatches;

    /// <summary>Open connections, for the gauges.</summary>
    public ConcurrentDictionary<string, ClientConnection> Connections { get; } = new();

    public CollabMetrics(IMeterFactory meterFactory)
    {
        _meter = meterFactory.Create(MeterName);
        _opsCommitted = _meter.CreateCounter<long>("collab.ops_committed", description: "Ops committed to document logs.");
        _opsDelivered = _meter.CreateCounter<long>("collab.ops_delivered", description: "Op messages queued to members (one per member per op).");
        _batchSize = _meter.CreateHistogram<int>("collab.commit_batch_size", description: "Ops per group commit.",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] });
        _commitSeconds = _meter.CreateHistogram<double>("collab.commit_duration", unit: "s", description: "Time to commit one batch, fsync included.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _errors = _meter.CreateCounter<long>("collab.errors", description: "Requests answered with an error, by protocol code.");
        _limitsRefused = _meter.CreateCounter<long>("collab.limits.refused", description: "Requests refused by a resource limit, by limit (docs/SECURITY.md).");
        _leaseClaims = _meter.CreateCounter<long>("collab.cluster.lease_claims", description: "Owner leases this node claimed.");
        _renewFailures = _meter.CreateCounter<long>("collab.cluster.renew_failures", description: "Lease renewals that failed (Redis away) or found the lease lost.");
        _redirects = _meter.CreateCounter<long>("collab.cluster.redirects", description: "Joins answered with a redirect, and REST calls forwarded, to the owner.");
        _moves = _meter.CreateCounter<long>("collab.cluster.moves", description: "Documents handed to another node (live moves and draining).");
        _fencedCommits = _meter.CreateCounter<long>("collab.cluster.fenced_commits", description: "Commits refused because the lease was lost or had run out.");
        _logSyncSeconds = _meter.CreateHistogram<double>("collab.log.sync_duration", unit: "s", description: "Time to write and sync one group of batches to the node log (one fdatasync).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _logBatches = _meter.CreateCounter<long>("collab.log.batches", description: "Document batches made durable by the node log.");
        _postgresSeconds = _meter.CreateHistogram<double>("collab.postgres.commit_duration", unit: "s", description: "Time for PostgreSQL to commit one round of document batches, one transaction (with synchronous standbys: until a quorum has it).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1] });
        _postgresBatches = _meter.CreateCounter<long>("collab.postgres.batches", description: "Document batches written to PostgreSQL (a round of them is one transaction).");
        _postgresFailures = _meter.CreateCounter<long>("collab.postgres.failures", description: "Batches PostgreSQL did not take, by reason (fenced: a newer owner's epoch; unavailable: it could not be reached).");
        _checkpointSeconds = _meter.CreateHistogram<double>("collab.log.checkpoint_duration", unit: "s", description: "Time to sync the documents of closed node log segments and delete them.");
        _meter.CreateObservableGauge("collab.connections", () => Connections.Count, description: "Open hub connections.");
        _meter.CreateObservableGauge("collab.outbox_depth", () => Connections.Values.Sum(c => (long)c.QueuedMessages), description: "Messages waiting in connection outboxes.");
    }

    /// <summary>Adds the gauges that read the live documents.</summary>
    public void ObserveDocuments(Func<int> activeDocuments, Func<int> members, Func<long> opWindowBytes)
    {
        _meter.CreateObservableGauge("collab.documents.op_window_bytes", opWindowBytes, description: "Estimated bytes of recent ops the live documents hold in memory (Collab:OpWindowBytes bounds each).");
        _meter.CreateObservableGauge("collab.documents_active", activeDocuments, description: "Document actors alive on this node.");
        _meter.CreateObservableGauge("collab.members", members, description: "Members joined to live documents.");
    }

    /// <summary>Adds the continuous backup's gauges (only when it is on): <c>collab_backup_lag_seconds</c> and <c>collab_backup_lag_bytes</c>.</summary>
    public void ObserveBackup(Func<double> lagSeconds, Func<long> lagBytes)
    {
        _meter.CreateObservableGauge("collab.backup.lag", lagSeconds, unit: "s", description: "Age of the oldest committed op not yet shipped to the backup (0 when all are).");
        _meter.CreateObservableGauge("collab.backup.lag_bytes", lagBytes, description: "About how many bytes of committed ops are not yet shipped to the backup.");
    }

    /// <summary>Counts a durable commit: it listens after each one like any <see cref="ICommitListener"/>.</summary>
    public void Committed(CommittedBatch batch)
    {
        _opsCommitted.Add(batch.Ops.Count);
        _batchSize.Record(batch.Ops.Count);
        _commitSeconds.Record(batch.Duration.TotalSeconds);
    }

    /// <summary>Adds the gauge of documents this node owns (in a cluster).</summary>
    public void ObserveOwnership(Func<int> owned) =>
        _meter.CreateObservableGauge("collab.cluster.documents_owned", owned, description: "Documents whose owner lease this node holds.");

    public void LeaseClaimed() => _leaseClaims.Add(1);

    public void RenewFailed(int leases) => _renewFailures.Add(leases);

    public void Redirected() => _redirects.Add(1);

    public void Moved() => _moves.Add(1);

    public void FencedCommit() => _fencedCommits.Add(1);

    /// <summary>One round of <paramref name="batches"/> document batches written to PostgreSQL in one transaction, with each batch's error (fenced, or PostgreSQL away) or null.</summary>
    public void PostgresCommitted(int batches, TimeSpan duration, IReadOnlyList<Exception?> errors)
    {
        _postgresSeconds.Record(duration.TotalSeconds);
        _postgresBatches.Add(batches);
        foreach (var error in errors)
        {
            if (error is not null)
            {
                _postgresFailures.Add(1, new KeyValuePair<string, object?>("reason", error is Storage.FencedException ? "fenced" : "unavailable"));
            }
        }
    }

    /// <summary>One write and sync of the node log, carrying <paramref name="batches"/> document batches.</summary>
    public void LogSynced(int batches, TimeSpan duration)
    {
        _logBatches.Add(batches);
        _logSyncSeconds.Record(duration.TotalSeconds);
    }

    /// <summary>A checkpoint of the node log that synced <paramref name="documents"/> documents' files.</summary>
    public void LogCheckpointed(int documents, TimeSpan duration) => _checkpointSeconds.Record(duration.TotalSeconds, new KeyValuePair<string, object?>("documents", documents > 100 ? "100+" : documents > 10 ? "11-100" : "1-10"));

    public void Delivered(int messages) => _opsDelivered.Add(messages);

    /// <summary>A request a limit refused (<c>collab_limits_refused_total{limit}</c>): <paramref name="limit"/> names it (joins, user_size, presence_map, write_bytes, document_write_bytes, rest_requests, history_reads, ...).</summary>
    public void LimitRefused(string limit) => _limitsRefused.Add(1, new KeyValuePair<string, object?>("limit", limit));

    public void Error(string code) => _errors.Add(1, new KeyValuePair<string, object?>("code", code));

    public void Dispose() => _meter.Dispose();
}
