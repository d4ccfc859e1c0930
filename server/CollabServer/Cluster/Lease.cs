using System.Diagnostics;
using CollabServer.Storage;

namespace CollabServer.Cluster;

/// <summary>
/// This node's ownership of one document: the epoch its claim got, and until when (on this
/// node's monotonic clock) it may still write under it. The owner renews it in the background;
/// the actor only reads <see cref="Fence"/>, which every commit carries into its transaction.
/// </summary>
public sealed class Lease
{
    private long _validUntil;
    private int _ended;

    internal Lease(string docId, long epoch, long validUntil)
    {
        DocId = docId;
        Epoch = epoch;
        _validUntil = validUntil;
    }

    /// <summary>The lease of a single node: epoch 0, never runs out, fences nothing.</summary>
    public static Lease SingleNode(string docId) => new(docId, 0, long.MaxValue);

    public string DocId { get; }

    /// <summary>Raised by every claim; 0 on a single node.</summary>
    public long Epoch { get; }

    /// <summary>What a commit carries (see <see cref="FenceToken"/>).</summary>
    public FenceToken Fence => Epoch == 0 ? FenceToken.None : new FenceToken(Epoch, Ended ? 0 : Volatile.Read(ref _validUntil));

    /// <summary>Whether this node may still write under it: renewed in time, and neither handed over nor lost.</summary>
    public bool IsValid => Volatile.Read(ref _ended) == 0 && Stopwatch.GetTimestamp() < Volatile.Read(ref _validUntil);

    /// <summary>Whether it was handed over, released or lost: this node owns the document no more.</summary>
    public bool Ended => Volatile.Read(ref _ended) != 0;

    internal void Extend(long validUntil)
    {
        Volatile.Write(ref _validUntil, validUntil);
        if (Ended)
        {
            Volatile.Write(ref _validUntil, 0); // ended meanwhile (handed over, released): it stays ended
        }
    }

    /// <summary>Ends it (once): false if it had ended already.</summary>
    internal bool End()
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return false;
        }
        Volatile.Write(ref _validUntil, 0);
        return true;
    }
}
