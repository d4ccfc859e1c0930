using System.Diagnostics;

namespace CollabLoad;

/// <summary>
/// The ops one writer submitted to one document: when each was submitted and how many members
/// have yet to apply it. The writer appends (one thread at a time); members mark arrivals.
/// </summary>
/// <remarks>
/// Matching needs no op ids: a writer has at most one op in flight and never composes, so every
/// other member receives that writer's ops as separate messages in submission order, and the
/// n-th op a member applies from a client is that client's n-th op. Every op inserts at least
/// one character, so no op becomes a no-op under transformation (which would raise no event).
/// Storage is chunked so appending never moves what members are reading.
/// </remarks>
public sealed class OpLog
{
    private const int ChunkBits = 12;
    private const int ChunkSize = 1 << ChunkBits;
    private const int MaxChunks = 256;

    private readonly long[]?[] _submitted = new long[]?[MaxChunks];
    private readonly int[]?[] _remaining = new int[]?[MaxChunks];
    private int _count;

    /// <summary>Ops appended so far.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Whether the log has room for another op (about a million per writer).</summary>
    public bool HasRoom => Count < MaxChunks * ChunkSize;

    /// <summary>Records an op submitted at <paramref name="submitted"/> that <paramref name="receivers"/> members must apply.</summary>
    public void Append(long submitted, int receivers)
    {
        var index = _count;
        var chunk = index >> ChunkBits;
        if (_submitted[chunk] is null)
        {
            _submitted[chunk] = new long[ChunkSize];
            _remaining[chunk] = new int[ChunkSize];
        }
        _submitted[chunk]![index & (ChunkSize - 1)] = submitted;
        _remaining[chunk]![index & (ChunkSize - 1)] = receivers;
        Volatile.Write(ref _count, index + 1);
    }

    /// <summary>One member applied op <paramref name="sequence"/>; reports it to <paramref name="counters"/> when it was the last.</summary>
    public void Arrive(int sequence, RunCounters counters)
    {
        // The writer appends right after handing the op to the client library, microseconds
        // before any member can have it back from the server; wait out that window if needed.
        var spin = new SpinWait();
        var started = Stopwatch.GetTimestamp();
        while (sequence >= Count)
        {
            if (Stopwatch.GetElapsedTime(started) > TimeSpan.FromSeconds(1))
            {
                counters.Error($"a member applied op #{sequence} of a writer that logged only {Count}");
                return;
            }
            spin.SpinOnce();
        }
        var chunk = sequence >> ChunkBits;
        var offset = sequence & (ChunkSize - 1);
        if (Interlocked.Decrement(ref _remaining[chunk]![offset]) == 0)
        {
            counters.OnDelivered(_submitted[chunk]![offset]);
        }
    }

    /// <summary>Ops not yet applied by every member.</summary>
    public int Undelivered()
    {
        var count = Count;
        var undelivered = 0;
        for (var i = 0; i < count; i++)
        {
            if (Volatile.Read(ref _remaining[i >> ChunkBits]![i & (ChunkSize - 1)]) > 0)
            {
                undelivered++;
            }
        }
        return undelivered;
    }
}
