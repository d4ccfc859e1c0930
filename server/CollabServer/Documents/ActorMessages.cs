using Collab.Messages;
using CollabServer.Storage;
using CollabServer.Documents.Types;

namespace CollabServer.Documents;

// The closed set of messages a document actor takes, all handled in DocumentActor.Handle. A
// request's answer is awaited by its sender; a signal has none. Each completes exactly once: with
// an answer or with an error.

/// <summary>Something for a document's loop to do.</summary>
internal abstract class Work
{
    /// <summary>Completes the message with an error (the actor refused it or closed).</summary>
    public abstract void Fail(Exception error);

    /// <summary>
    /// Whether it must find every op sequenced before it committed (it writes or reads the store,
    /// or replaces the whole text). Until then the loop parks it, and whatever comes after it, and
    /// goes on committing: it never waits for a commit itself.
    /// </summary>
    public virtual bool NeedsCommitted => false;
}

/// <summary>A message whose answer the sender awaits.</summary>
internal abstract class Request<T> : Work
{
    private readonly TaskCompletionSource<T> _answer = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _answer.Task;

    public void Answer(T value) => _answer.TrySetResult(value);

    public override void Fail(Exception error) => _answer.TrySetException(error);

    /// <summary>Answers with what <paramref name="other"/> comes to, once it completes (its error, if it fails).</summary>
    public void AnswerWhen<TOther>(Task<TOther> other, Func<TOther, T> answer) =>
        other.ContinueWith(
            done =>
            {
                if (done.IsCompletedSuccessfully)
                {
                    Answer(answer(done.Result));
                }
                else
                {
                    Fail(done.Exception!.InnerException!);
                }
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
}

/// <summary>A message that needs no answer; an error is dropped.</summary>
internal abstract class Signal : Work
{
    public override void Fail(Exception error)
    {
    }
}

/// <summary>A member joins (PROTOCOL §3 Join).</summary>
internal sealed class JoinDocument(IMemberConnection connection, JoinRequest request, bool readOnly) : Request<JoinResult>
{
    public IMemberConnection Connection { get; } = connection;

    public JoinRequest Request { get; } = request;

    public bool ReadOnly { get; } = readOnly;
}

/// <summary>A member leaves; false if it was not one.</summary>
internal sealed class LeaveDocument(string connectionId) : Request<bool>
{
    public string ConnectionId { get; } = connectionId;
}

/// <summary>A member's presence; false if it is not a member.</summary>
internal sealed class UpdatePresence(string connectionId, PresenceRequest request) : Request<bool>
{
    public string ConnectionId { get; } = connectionId;

    public PresenceRequest Request { get; } = request;
}

/// <summary>A submitted op; sequenced in batches, answered once committed.</summary>
internal sealed class SubmitWork(IMemberConnection? connection, SubmitRequest request) : Request<SubmitResult>
{
    /// <summary>The author's connection, or null for an op the server makes (REST).</summary>
    public IMemberConnection? Connection { get; } = connection;

    /// <summary>For an op the server makes: what it is and for whom (history).</summary>
    public OpAuthorship? ServerWrite { get; init; }

    /// <summary>For an op the server makes: the op itself (a member's comes in <see cref="Request"/>, in its type's wire form).</summary>
    public DocOp? ServerOp { get; init; }

    public SubmitRequest Request { get; } = request;

    public void Complete(int version) => Answer(new SubmitResult { Version = version });
}

/// <summary>The content and version; null if the document does not exist.</summary>
internal sealed class ReadText : Request<(int Version, DocContent Content)?>;

/// <summary>The document as listed; null if it does not exist.</summary>
internal sealed class ReadSummary : Request<DocumentSummary?>;

/// <summary>Committed ops after <see cref="From"/>, at most <see cref="Limit"/>; null if the document does not exist.</summary>
internal sealed class ReadOps(int from, int limit) : Request<List<OpMessage>?>
{
    public override bool NeedsCommitted => true;

    public int From { get; } = from;

    public int Limit { get; } = limit;
}

/// <summary>Makes the document's content <see cref="Content"/> with one op of the server's; answers the version after it.</summary>
internal sealed class ReplaceText(Func<DocContent> content, OpAuthorship? by = null) : Request<int>
{
    /// <summary>Makes a text document's text <paramref name="text"/>.</summary>
    public ReplaceText(string text, OpAuthorship? by = null)
        : this(() => TextType.FromText(text), by)
    {
    }

    public override bool NeedsCommitted => true;

    /// <summary>The content to write, made on the actor's loop (a refusal of it fails this request only).</summary>
    public Func<DocContent> Content { get; } = content;

    /// <summary>What the write is (a REST edit, a restore) and on whose behalf, for history; null records nothing.</summary>
    public OpAuthorship? By { get; } = by;
}

/// <summary>
/// Deletes the document; false if it did not exist. With <see cref="Version"/>, only if its head
/// is that version (else <c>conflict</c>); with <see cref="MovedTo"/>, records that it was renamed
/// to that id and tells the members so (Reset <c>renamed</c>).
/// </summary>
internal sealed class DeleteDocument(int? version = null, string? movedTo = null) : Request<bool>
{
    public int? Version { get; } = version;

    public string? MovedTo { get; } = movedTo;

    public override bool NeedsCommitted => true;
}

/// <summary>Loads the document on this node (claiming it in a cluster when nobody holds it).</summary>
internal sealed class LoadDocument : Request<bool>;

/// <summary>Hands the document to node <see cref="NodeId"/>; false if this node no longer owned it.</summary>
internal sealed class MoveDocument(string nodeId) : Request<bool>
{
    public override bool NeedsCommitted => true;

    public string NodeId { get; } = nodeId;
}

/// <summary>Retention: writes the fold planned off the loop, fenced like a commit; false if it does not apply (any more).</summary>
internal sealed class FoldHistory(FoldPlan plan) : Request<bool>
{
    public override bool NeedsCommitted => true;

    public FoldPlan Plan { get; } = plan;
}

/// <summary>Retention: deletes up to a thousand folded ops at or below <see cref="Boundary"/>; answers how many went (0: done).</summary>
internal sealed class DeleteFolded(int boundary) : Request<int>
{
    public override bool NeedsCommitted => true;

    public int Boundary { get; } = boundary;
}

/// <summary>Asks an actor whether it has been idle long enough to shut down.</summary>
internal sealed class IdleCheck(TimeSpan idleTimeout) : Signal
{
    public TimeSpan IdleTimeout { get; } = idleTimeout;
}

/// <summary>A commit finished off the loop; the loop acks and broadcasts it.</summary>
internal sealed class CommitDone(CommitPipeline.Commit commit) : Signal
{
    public CommitPipeline.Commit Commit { get; } = commit;
}

/// <summary>Asks the loop to shut down once what it holds is committed.</summary>
internal sealed class StopWork : Signal;

/// <summary>This node lost the document's lease: its members are sent to the new owner and the actor closes.</summary>
internal sealed class LeaseLostWork : Signal;

/// <summary>The actor closed before it got to this message; the registry gives it (anew) to the document's next actor.</summary>
internal sealed class ActorClosedException : Exception
{
    public static readonly ActorClosedException Instance = new();

    private ActorClosedException()
        : base("The document actor closed.")
    {
    }
}
