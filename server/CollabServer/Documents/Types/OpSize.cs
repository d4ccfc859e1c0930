using Collab.Ot;

namespace CollabServer.Documents.Types;

/// <summary>What an op costs to hold and to write, in bytes, estimated from its shape (what memory and write budgets count).</summary>
internal static class OpSize
{
    /// <summary>A submitted op, whichever its type.</summary>
    public static long Of(Collab.Messages.WireOp op) => op.Delta is { } delta ? OfJson(delta.ToString()) : Of(op.Text!);

    /// <summary>An op held as JSON (a delta): two bytes a character and a fixed cost per op; attributes and embeds cost what they take to write.</summary>
    public static long OfJson(string json) => 64 + 2L * json.Length;

    /// <summary>The op's inserted text (two bytes a code unit) and a fixed cost per component and per op.</summary>
    public static long Of(TextOperation op)
    {
        long bytes = 64;
        foreach (var c in op.Components)
        {
            bytes += c.IsInsert ? 24 + 2L * c.Text!.Length : 16;
        }
        return bytes;
    }
}
