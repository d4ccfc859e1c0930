namespace CollabServer.Documents;

/// <summary>
/// Messages waiting, in arrival order, behind one that needs every sequenced op committed
/// (<see cref="Work.NeedsCommitted"/>): the loop goes on taking commit completions meanwhile and
/// runs them once the pipeline is idle, so nothing blocks the loop on a commit. Used only on the
/// actor's loop.
/// </summary>
internal sealed class ParkedWork
{
    private readonly Queue<Work> _waiting = new();

    public bool IsEmpty => _waiting.Count == 0;

    /// <summary>
    /// Parks <paramref name="work"/> if it must wait: something waits already (arrival order is
    /// kept), or it needs every op committed while <paramref name="committing"/>. False: run it now.
    /// </summary>
    public bool Park(Work work, bool committing)
    {
        if (_waiting.Count == 0 && !(work.NeedsCommitted && committing))
        {
            return false;
        }
        _waiting.Enqueue(work);
        return true;
    }

    /// <summary>
    /// Runs parked work in order as far as it can: a message that needs every op committed waits
    /// (with all after it) until <paramref name="idle"/>. Once <paramref name="closed"/>, the rest
    /// goes back to the registry, which hands it to the next actor.
    /// </summary>
    public void RunReady(Func<bool> idle, Func<bool> closed, Action<Work> run)
    {
        while (_waiting.TryPeek(out var next) && (!next.NeedsCommitted || idle() || closed()))
        {
            _waiting.Dequeue();
            if (closed())
            {
                next.Fail(ActorClosedException.Instance);
                continue;
            }
            run(next);
        }
    }

    /// <summary>The actor is ending: every parked message goes back to the registry.</summary>
    public void FailAll()
    {
        while (_waiting.TryDequeue(out var parked))
        {
            parked.Fail(ActorClosedException.Instance);
        }
    }
}
