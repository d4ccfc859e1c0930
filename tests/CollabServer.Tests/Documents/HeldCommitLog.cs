using System.Collections.Concurrent;
using CollabServer.Storage;

namespace CollabServer.Tests.Documents;

/// <summary>A commit log that keeps every appended batch waiting until the test releases it, durable or failed.</summary>
internal sealed class HeldCommitLog : ICommitLog
{
    private readonly ConcurrentQueue<(LogBatch Batch, Action<Exception?> Durable)> _held = new();

    public bool DurableOnStoreCommit => false;

    /// <summary>Batches appended and not released yet.</summary>
    public int Waiting => _held.Count;

    /// <summary>Every batch ever appended, in order.</summary>
    public ConcurrentQueue<LogBatch> Appended { get; } = new();

    public void Append(LogBatch batch, Action<Exception?> durable)
    {
        Appended.Enqueue(batch);
        _held.Enqueue((batch, durable));
    }

    public void Recover(IDocumentStorage storage)
    {
    }

    /// <summary>Reports every waiting batch durable, or failed with <paramref name="error"/>.</summary>
    public void Release(Exception? error = null)
    {
        while (_held.TryDequeue(out var held))
        {
            held.Durable(error);
        }
    }
}
