using Microsoft.Extensions.Options;

namespace CollabServer;

/// <summary>
/// Checks the <c>Collab:</c> settings when the server starts, so that a wrong one stops it with a
/// sentence naming the setting instead of failing later, on some request.
/// </summary>
internal sealed class CollabOptionsValidator : IValidateOptions<CollabOptions>
{
    public ValidateOptionsResult Validate(string? name, CollabOptions o)
    {
        var failures = new List<string>();
        void Require(bool ok, string setting, object? value, string rule)
        {
            if (!ok)
            {
                failures.Add($"Collab:{setting} {rule} (it is {value ?? "not set"}).");
            }
        }
        var second = TimeSpan.FromSeconds(1);
        Require(!string.IsNullOrWhiteSpace(o.DataDir), nameof(o.DataDir), o.DataDir, "must name a directory");
        Require(o.IdleTimeout >= TimeSpan.Zero, nameof(o.IdleTimeout), o.IdleTimeout, "must not be negative (zero closes at once)");
        Require(o.DatabaseIdleTimeout >= TimeSpan.Zero, nameof(o.DatabaseIdleTimeout), o.DatabaseIdleTimeout, "must not be negative (zero closes at once)");
        Require(o.LogSegmentBytes >= 64 * 1024, nameof(o.LogSegmentBytes), o.LogSegmentBytes, "must be at least 65536");
        Require(o.LogCheckpointInterval >= TimeSpan.FromMilliseconds(100), nameof(o.LogCheckpointInterval), o.LogCheckpointInterval, "must be at least 100 ms");
        Require(o.SnapshotInterval >= 1, nameof(o.SnapshotInterval), o.SnapshotInterval, "must be at least 1");
        Require(o.OpWindow >= 1, nameof(o.OpWindow), o.OpWindow, "must be at least 1");
        Require(o.MaxBatch >= 1, nameof(o.MaxBatch), o.MaxBatch, "must be at least 1");
        Require(o.MaxResumeOps >= 0, nameof(o.MaxResumeOps), o.MaxResumeOps, "must not be negative");
        Require(o.MaxMessageBytes >= 1024, nameof(o.MaxMessageBytes), o.MaxMessageBytes, "must be at least 1024");
        Require(o.MaxDocumentLength >= 1, nameof(o.MaxDocumentLength), o.MaxDocumentLength, "must be at least 1");
        Require(o.OpsPerSecond > 0, nameof(o.OpsPerSecond), o.OpsPerSecond, "must be above zero");
        Require(o.OpsBurst >= 1, nameof(o.OpsBurst), o.OpsBurst, "must be at least 1");
        Require(o.MinThreads >= 1, nameof(o.MinThreads), o.MinThreads, "must be at least 1");
        Require(o.OutboundQueueLimit >= 1, nameof(o.OutboundQueueLimit), o.OutboundQueueLimit, "must be at least 1");
        Require(o.MaxDocumentsPerConnection >= 1, nameof(o.MaxDocumentsPerConnection), o.MaxDocumentsPerConnection, "must be at least 1");
        Require(o.DocumentsCreatedPerMinute >= 0, nameof(o.DocumentsCreatedPerMinute), o.DocumentsCreatedPerMinute, "must not be negative (zero: only PUT creates documents)");
        Require(o.MaxTransformOps >= 1, nameof(o.MaxTransformOps), o.MaxTransformOps, "must be at least 1");
        Require(o.PresencePerSecond > 0, nameof(o.PresencePerSecond), o.PresencePerSecond, "must be above zero");
        Require(o.PresenceBurst >= 1, nameof(o.PresenceBurst), o.PresenceBurst, "must be at least 1");
        Require(o.MaxSelectionRanges >= 1, nameof(o.MaxSelectionRanges), o.MaxSelectionRanges, "must be at least 1");
        Require(o.MaxConnections is null or >= 1, nameof(o.MaxConnections), o.MaxConnections, "must be at least 1 (or unset: the open-file limit less FileHeadroom)");
        Require(o.FileHeadroom >= 64, nameof(o.FileHeadroom), o.FileHeadroom, "must be at least 64");
        Require(o.JoinsPerSecond > 0, nameof(o.JoinsPerSecond), o.JoinsPerSecond, "must be above zero");
        Require(o.JoinsBurst >= 1, nameof(o.JoinsBurst), o.JoinsBurst, "must be at least 1");
        Require(o.MaxUserNameLength >= 1, nameof(o.MaxUserNameLength), o.MaxUserNameLength, "must be at least 1");
        Require(o.MaxUserColorLength >= 1, nameof(o.MaxUserColorLength), o.MaxUserColorLength, "must be at least 1");
        Require(o.OpWindowBytes >= 64 * 1024, nameof(o.OpWindowBytes), o.OpWindowBytes, "must be at least 65536");
        Require(o.PresenceMapBudget >= 1000, nameof(o.PresenceMapBudget), o.PresenceMapBudget, "must be at least 1000");
        Require(o.WriteBytesPerSecond >= 1, nameof(o.WriteBytesPerSecond), o.WriteBytesPerSecond, "must be at least 1");
        Require(o.WriteBytesBurst >= o.MaxMessageBytes, nameof(o.WriteBytesBurst), o.WriteBytesBurst, "must be at least MaxMessageBytes (one largest op)");
        Require(o.DocumentWriteBytesPerSecond >= 1, nameof(o.DocumentWriteBytesPerSecond), o.DocumentWriteBytesPerSecond, "must be at least 1");
        Require(o.DocumentWriteBytesBurst >= o.MaxMessageBytes, nameof(o.DocumentWriteBytesBurst), o.DocumentWriteBytesBurst, "must be at least MaxMessageBytes (one largest op)");
        Require(o.MaxRestBodyBytes >= 1024, nameof(o.MaxRestBodyBytes), o.MaxRestBodyBytes, "must be at least 1024");
        Require(o.MaxListPage >= 1, nameof(o.MaxListPage), o.MaxListPage, "must be at least 1");
        if (!string.IsNullOrEmpty(o.Redis))
        {
            Require(o.LeaseTtl >= second, nameof(o.LeaseTtl), o.LeaseTtl, "must be at least 1 s");
            Require(o.NodeId is { } id && Collab.DocumentId.IsValid(id) && !id.Contains(':'), nameof(o.NodeId), o.NodeId, "must be set in a cluster (Collab:Redis): 1 to 128 of A-Z a-z 0-9 . _ -");
            Require(Uri.TryCreate(o.NodeUrl, UriKind.Absolute, out var url) && url.Scheme is "http" or "https", nameof(o.NodeUrl), o.NodeUrl,
                "must be set in a cluster (Collab:Redis): the http(s) base URL clients reach this node at");
        }
        Require(o.History.SnapshotSpacing >= 0, "History:SnapshotSpacing", o.History.SnapshotSpacing, "must not be negative");
        Require(o.History.GroupGap >= TimeSpan.Zero, "History:GroupGap", o.History.GroupGap, "must not be negative");
        Require(o.History.Retention >= TimeSpan.Zero, "History:Retention", o.History.Retention, "must not be negative (zero keeps everything)");
        if (o.History.Retention > TimeSpan.Zero)
        {
            Require(o.History.RetentionCheckInterval >= second, "History:RetentionCheckInterval", o.History.RetentionCheckInterval, "must be at least 1 s");
        }
        if (!string.IsNullOrEmpty(o.Backup.Dir))
        {
            Require(o.Backup.Interval > TimeSpan.Zero, "Backup:Interval", o.Backup.Interval, "must be above zero");
            Require(o.Backup.MaxBatchBytes >= 1024, "Backup:MaxBatchBytes", o.Backup.MaxBatchBytes, "must be at least 1024");
        }
        var rest = o.Rest;
        Require(rest.RequestsPerSecond > 0, "Rest:" + nameof(rest.RequestsPerSecond), rest.RequestsPerSecond, "must be above zero");
        Require(rest.RequestsBurst >= 1, "Rest:" + nameof(rest.RequestsBurst), rest.RequestsBurst, "must be at least 1");
        Require(rest.DocumentsCreatedPerMinute >= 0, "Rest:" + nameof(rest.DocumentsCreatedPerMinute), rest.DocumentsCreatedPerMinute, "must not be negative (zero: PUT only writes documents that exist)");
        Require(rest.PastReads >= 1, "Rest:" + nameof(rest.PastReads), rest.PastReads, "must be at least 1");
        Require(rest.PastReadQueue >= 0, "Rest:" + nameof(rest.PastReadQueue), rest.PastReadQueue, "must not be negative");
        Require(rest.PastReadsPerSubject >= 1, "Rest:" + nameof(rest.PastReadsPerSubject), rest.PastReadsPerSubject, "must be at least 1");
        Require(rest.PastReadQueuePerSubject >= 0, "Rest:" + nameof(rest.PastReadQueuePerSubject), rest.PastReadQueuePerSubject, "must not be negative");
        Require(rest.PastReadBytes >= 1024 * 1024, "Rest:" + nameof(rest.PastReadBytes), rest.PastReadBytes, "must be at least 1048576");
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
