using Collab.Ot;

namespace CollabServer.Documents;

/// <summary>What an op costs to hold and to write, in bytes, estimated from its shape (what memory and write budgets count).</summary>
internal static class OpSize
{
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
