namespace CollabServer;

/// <summary>Every log message of the server, with stable event ids.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Document {DocId} loaded at version {Version} ({Length} code units) in {Elapsed} ms.")]
    public static partial void DocumentLoaded(ILogger logger, string docId, int version, int length, double elapsed);

    [LoggerMessage(2, LogLevel.Error, "Document {DocId} failed to load.")]
    public static partial void DocumentLoadFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(3, LogLevel.Error, "Document {DocId} failed to commit {Count} ops; they were rejected.")]
    public static partial void CommitFailed(ILogger logger, string docId, int count, Exception exception);

    [LoggerMessage(4, LogLevel.Debug, "Document {DocId} shut down after being idle.")]
    public static partial void DocumentIdle(ILogger logger, string docId);

    [LoggerMessage(5, LogLevel.Warning, "Connection {ConnectionId} fell {Limit} messages behind and was closed.")]
    public static partial void OutboxOverflow(ILogger logger, string connectionId, int limit);

    [LoggerMessage(6, LogLevel.Error, "Document {DocId}: unexpected error in the actor loop.")]
    public static partial void ActorFault(ILogger logger, string docId, Exception exception);

    [LoggerMessage(7, LogLevel.Information, "Document {DocId} deleted.")]
    public static partial void DocumentDeleted(ILogger logger, string docId);

    [LoggerMessage(8, LogLevel.Debug, "Connection {ConnectionId}: sending failed.")]
    public static partial void SendFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(10, LogLevel.Warning, "Document {DocId}: the snapshot at shutdown failed; the next load replays the log instead.")]
    public static partial void SnapshotFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(11, LogLevel.Error, "Document {DocId}: commit listener {Listener} failed.")]
    public static partial void CommitListenerFailed(ILogger logger, string docId, string listener, Exception exception);

    [LoggerMessage(12, LogLevel.Warning, "NO AUTHENTICATION: Collab:Auth:SigningKey is not set, so anyone who reaches this server can read, change and delete every document. It answers only clients on this machine (loopback). Set Collab:Auth:SigningKey to require tokens, or Collab:Auth:AllowAnonymous=true to serve everyone without them.")]
    public static partial void OpenOnLoopback(ILogger logger);

    [LoggerMessage(13, LogLevel.Warning, "NO AUTHENTICATION and Collab:Auth:AllowAnonymous=true: anyone who reaches this server can read, change and delete every document.")]
    public static partial void OpenToEveryone(ILogger logger);

    [LoggerMessage(14, LogLevel.Debug, "Refused {Method} from connection {ConnectionId}: {Code}: {Sentence}")]
    public static partial void Refused(ILogger logger, string method, string connectionId, string code, string sentence);

    [LoggerMessage(15, LogLevel.Error, "Document {DocId}: its database is damaged and was set aside (quarantined); it is unavailable until an admin deletes it.")]
    public static partial void DocumentQuarantined(ILogger logger, string docId, Exception exception);

    [LoggerMessage(16, LogLevel.Error, "Hub method {Method} failed.")]
    public static partial void HubFault(ILogger logger, string method, Exception exception);

    [LoggerMessage(17, LogLevel.Information, "Document {DocId}: ops up to version {Version} passed the retention period and were folded into a snapshot.")]
    public static partial void RetentionFolded(ILogger logger, string docId, int version);

    [LoggerMessage(18, LogLevel.Warning, "Document {DocId}: the retention pass failed; it is tried again next pass.")]
    public static partial void RetentionFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(9, LogLevel.Information, "Data directory: {DataDir}; sync {Sync}; commit log {CommitLog}.")]
    public static partial void Started(ILogger logger, string dataDir, SyncMode sync, string commitLog);

    [LoggerMessage(19, LogLevel.Debug, "Document {DocId}: claimed with epoch {Epoch}.")]
    public static partial void LeaseClaimed(ILogger logger, string docId, long epoch);

    [LoggerMessage(20, LogLevel.Warning, "Document {DocId}: the lease of epoch {Epoch} was lost; its members join again.")]
    public static partial void LeaseLost(ILogger logger, string docId, long epoch);

    [LoggerMessage(21, LogLevel.Warning, "Redis: {Message}")]
    public static partial void RedisFailed(ILogger logger, string message);

    [LoggerMessage(22, LogLevel.Information, "Document {DocId}: moved to node {Node}.")]
    public static partial void DocumentMoved(ILogger logger, string docId, string node);

    [LoggerMessage(23, LogLevel.Information, "Draining: moving {Count} documents to {Nodes} other nodes.")]
    public static partial void Draining(ILogger logger, int count, int nodes);

    [LoggerMessage(24, LogLevel.Information, "Cluster node {NodeId} at {NodeUrl}, Redis {Redis}, lease TTL {Ttl}.")]
    public static partial void ClusterNode(ILogger logger, string nodeId, string nodeUrl, string redis, TimeSpan ttl);

    [LoggerMessage(25, LogLevel.Warning, "Document {DocId}: connection {ConnectionId} closed, and leaving the document failed.")]
    public static partial void LeaveFailed(ILogger logger, string docId, string connectionId, Exception exception);

    [LoggerMessage(40, LogLevel.Information, "Node log: read {Batches} batches, replayed {Ops} ops into {Documents} documents ({Torn} segments ended in a torn record) in {Ms:F0} ms.")]
    public static partial void LogRecovered(ILogger logger, int batches, int ops, int documents, int torn, double ms);

    [LoggerMessage(41, LogLevel.Critical, "The node log could not be written: no batch is acknowledged until the server restarts.")]
    public static partial void LogFailed(ILogger logger, Exception error);

    [LoggerMessage(42, LogLevel.Error, "A node log checkpoint failed; its segments stay until the next one.")]
    public static partial void CheckpointFailed(ILogger logger, Exception error);

    [LoggerMessage(43, LogLevel.Error, "Node log: document {DocId} could not be read to replay its log into it.")]
    public static partial void RecoverySkippedDamaged(ILogger logger, string docId, Exception error);

    [LoggerMessage(50, LogLevel.Information, "PostgreSQL {Database} is the durable tier (schema {Found} -> {Schema}).")]
    public static partial void PostgresReady(ILogger logger, string database, int found, int schema);

    [LoggerMessage(51, LogLevel.Warning, "PostgreSQL {Database} cannot be reached yet ({Reason}); waiting.")]
    public static partial void PostgresWaiting(ILogger logger, string database, string reason);

    [LoggerMessage(52, LogLevel.Error, "Document {DocId}: PostgreSQL did not take a batch; the document's actor steps down and clients resubmit.")]
    public static partial void PostgresAppendFailed(ILogger logger, string docId, Exception exception);

    [LoggerMessage(53, LogLevel.Warning, "PostgreSQL refused a round of {Batches} batches; each is written alone.")]
    public static partial void PostgresRoundSplit(ILogger logger, int batches, Exception exception);
}
