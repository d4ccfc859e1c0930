using CollabServer.Cluster;
using CollabServer.Diagnostics;
using CollabServer.Storage;

namespace CollabServer.Documents;

/// <summary>
/// What every document actor of a node works with, made once by the registry: the settings, the
/// storage in its writer's role, the commit log, who owns which document, the metrics, and the listeners told of
/// every durable commit.
/// </summary>
internal sealed class ActorServices(CollabOptions options, IDocumentStorage storage, ICommitLog commitLog, IDocumentOwnership ownership, CollabMetrics metrics, IEnumerable<ICommitListener> listeners, ILogger logger, IDocumentRedirects redirects)
{
    private readonly ICommitListener[] _listeners = [.. listeners];

    public CollabOptions Options { get; } = options;

    public IDocumentStorage Storage { get; } = storage;

    /// <summary>Where renamed documents went: recorded by a delete with <c>movedTo</c>, removed when the document is made again.</summary>
    public IDocumentRedirects Redirects { get; } = redirects;

    /// <summary>Where a committed batch is made durable before it is acknowledged.</summary>
    public ICommitLog CommitLog { get; } = commitLog;

    public IDocumentOwnership Ownership { get; } = ownership;

    public CollabMetrics Metrics { get; } = metrics;

    public ILogger Logger { get; } = logger;

    /// <summary>Tells every <see cref="ICommitListener"/> about a durable commit (on the document's loop).</summary>
    public void Committed(CommittedBatch batch) => Tell(batch.DocId, listener => listener.Committed(batch));

    /// <summary>Tells every <see cref="ICommitListener"/> that a document's files were deleted.</summary>
    public void Deleted(string docId) => Tell(docId, listener => listener.Deleted(docId));

    /// <summary>A listener that throws is logged and the others are told all the same.</summary>
    private void Tell(string docId, Action<ICommitListener> tell)
    {
        foreach (var listener in _listeners)
        {
            try
            {
                tell(listener);
            }
            catch (Exception ex)
            {
                Log.CommitListenerFailed(Logger, docId, listener.GetType().Name, ex);
            }
        }
    }
}
