using Collab.Messages;
using CollabServer.Hubs;

namespace CollabServer.Documents;

/// <summary>Something for a document's loop to do. Each item completes exactly once: with a result or with an error.</summary>
internal abstract class Work
{
    /// <summary>Runs on the document's loop.</summary>
    public abstract void Run(DocumentActor actor);

    public abstract void Fail(Exception error);
}

/// <summary>A call whose body runs on the loop and whose result the caller awaits.</summary>
internal sealed class CallWork<T>(Func<DocumentActor, T> body) : Work
{
    private readonly TaskCompletionSource<T> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Task => _result.Task;

    public override void Run(DocumentActor actor) => _result.TrySetResult(body(actor));

    public override void Fail(Exception error) => _result.TrySetException(error);
}

/// <summary>A submitted op; sequenced in batches rather than run one by one.</summary>
internal sealed class SubmitWork(ClientConnection? connection, SubmitRequest request) : Work
{
    private readonly TaskCompletionSource<SubmitResult> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The author's connection, or null for an op the server makes (REST).</summary>
    public ClientConnection? Connection { get; } = connection;

    public SubmitRequest Request { get; } = request;

    public Task<SubmitResult> Task => _result.Task;

    public override void Run(DocumentActor actor) => throw new InvalidOperationException("Submits are sequenced, not run.");

    public void Complete(int version) => _result.TrySetResult(new SubmitResult { Version = version });

    public override void Fail(Exception error) => _result.TrySetException(error);
}

/// <summary>Asks an actor whether it has been idle long enough to shut down.</summary>
internal sealed class IdleCheck(TimeSpan idleTimeout) : Work
{
    public override void Run(DocumentActor actor) => actor.StopIfIdle(idleTimeout);

    public override void Fail(Exception error)
    {
    }
}

/// <summary>The actor closed before it got to this work; the registry retries it on the document's next actor.</summary>
internal sealed class ActorClosedException : Exception
{
    public static readonly ActorClosedException Instance = new();

    private ActorClosedException()
        : base("The document actor closed.")
    {
    }
}

/// <summary>A commit finished off the loop; the loop acks and broadcasts it.</summary>
internal sealed class CommitDone(CommitPipeline.Commit commit) : Work
{
    public override void Run(DocumentActor actor) => actor.CompleteCommit(commit);

    public override void Fail(Exception error)
    {
    }
}

/// <summary>Asks the loop to shut down once what it holds is committed.</summary>
internal sealed class StopWork : Work
{
    public override void Run(DocumentActor actor) => actor.RequestStop();

    public override void Fail(Exception error)
    {
    }
}

/// <summary>This node lost the document's lease: its members are sent to the new owner and the actor closes.</summary>
internal sealed class LeaseLostWork : Work
{
    public override void Run(DocumentActor actor) => actor.Relinquish("moved");

    public override void Fail(Exception error)
    {
    }
}
