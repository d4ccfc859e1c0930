using System.Text;
using Collab.Ot;

namespace Collab.Testing;

/// <summary>Seeded random documents and operations, surrogate-aware, for property tests and the shared vectors.</summary>
public static class OpGen
{
    private static readonly string[] s_pieces = ["a", "b", "c", " ", "\n", "xy", "é", "😀", "中", "🚀z"];

    public static string Text(Random rng, int maxPieces = 12)
    {
        var sb = new StringBuilder();
        var n = rng.Next(maxPieces + 1);
        for (var i = 0; i < n; i++)
        {
            sb.Append(s_pieces[rng.Next(s_pieces.Length)]);
        }
        return sb.ToString();
    }

    /// <summary>A random valid op on <paramref name="doc"/>, never splitting a surrogate pair.</summary>
    public static TextOperation Op(Random rng, string doc)
    {
        var builder = new TextOperation.Builder();
        var pos = 0;
        while (pos < doc.Length)
        {
            var step = NextBoundary(doc, pos, 1 + rng.Next(Math.Min(4, doc.Length - pos)));
            switch (rng.Next(4))
            {
                case 0:
                    builder.Insert(Text(rng, 2));
                    break;
                case 1:
                    builder.Delete(step - pos);
                    pos = step;
                    break;
                default:
                    builder.Retain(step - pos);
                    pos = step;
                    break;
            }
            if (rng.Next(6) == 0)
            {
                break;
            }
        }
        if (rng.Next(3) == 0)
        {
            builder.Insert(Text(rng, 2));
        }
        return builder.Build();
    }

    /// <summary>Components in a deliberately non-canonical form (split, zero-length, delete before insert).</summary>
    public static List<OpComponent> Scramble(Random rng, TextOperation op, int docLength)
    {
        var result = new List<OpComponent>();
        foreach (var c in op.Components)
        {
            if (c.IsInsert && c.Text!.Length > 1 && rng.Next(2) == 0)
            {
                var cut = NextBoundary(c.Text, 0, 1);
                if (cut < c.Text.Length)
                {
                    result.Add(OpComponent.Insert(c.Text[..cut]));
                    result.Add(OpComponent.Insert(c.Text[cut..]));
                    continue;
                }
            }
            if (!c.IsInsert && c.Length > 1 && rng.Next(2) == 0)
            {
                var first = 1 + rng.Next(c.Length - 1);
                result.Add(c.IsRetain ? OpComponent.Retain(first) : OpComponent.Delete(first));
                result.Add(c.IsRetain ? OpComponent.Retain(c.Length - first) : OpComponent.Delete(c.Length - first));
                continue;
            }
            result.Add(c);
        }
        // Swap an insert that follows a delete: same effect, non-canonical order.
        for (var i = 0; i + 1 < result.Count; i++)
        {
            if (result[i].IsInsert && result[i + 1].IsDelete && rng.Next(2) == 0)
            {
                (result[i], result[i + 1]) = (result[i + 1], result[i]);
                i++;
            }
        }
        var rest = docLength - op.BaseLength;
        if (rest > 0 && rng.Next(2) == 0)
        {
            result.Add(OpComponent.Retain(1 + rng.Next(rest)));
        }
        return result;
    }

    private static int NextBoundary(string s, int pos, int count)
    {
        var end = Math.Min(s.Length, pos + count);
        if (end < s.Length && char.IsLowSurrogate(s[end]))
        {
            end++;
        }
        return end;
    }

    /// <summary>Applies components one by one, the naive way, to check canonicalization does not change meaning.</summary>
    public static string ApplyNaive(string doc, IEnumerable<OpComponent> components)
    {
        var sb = new StringBuilder();
        var pos = 0;
        foreach (var c in components)
        {
            if (c.IsInsert)
            {
                sb.Append(c.Text);
            }
            else if (c.IsRetain)
            {
                sb.Append(doc, pos, c.Count);
                pos += c.Count;
            }
            else
            {
                pos += c.Length;
            }
        }
        return sb.Append(doc, pos, doc.Length - pos).ToString();
    }
}
