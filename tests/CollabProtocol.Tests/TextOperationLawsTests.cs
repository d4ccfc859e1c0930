using Collab.Ot;
using FsCheck;
using FsCheck.Xunit;
using Collab.Testing;

namespace Collab.Protocol.Tests;

/// <summary>
/// The algebraic laws of the op type, each over many seeded random documents and ops (FsCheck
/// picks the seeds). A failure prints the document and the ops.
/// </summary>
public sealed class TextOperationLawsTests
{
    // Convergence (TP1): b then transform(a, b) == a then transform(b, a), with opposite tie winners.
    [Property(MaxTest = 2000)]
    public bool TransformConverges(int seed)
    {
        var rng = new Random(seed);
        var doc = OpGen.Text(rng);
        var a = OpGen.Op(rng, doc);
        var b = OpGen.Op(rng, doc);
        var left = TextOperation.Transform(a, b, aWinsTies: true).Apply(b.Apply(doc));
        var right = TextOperation.Transform(b, a, aWinsTies: false).Apply(a.Apply(doc));
        return left == right || Fail($"doc={Show(doc)} a={a} b={b}: {Show(left)} != {Show(right)}");
    }

    [Property(MaxTest = 2000)]
    public bool ComposeEqualsApplyingInSequence(int seed)
    {
        var rng = new Random(seed);
        var doc = OpGen.Text(rng);
        var a = OpGen.Op(rng, doc);
        var b = OpGen.Op(rng, a.Apply(doc));
        var sequence = b.Apply(a.Apply(doc));
        var composed = TextOperation.Compose(a, b);
        return (composed.Apply(doc) == sequence && IsCanonical(composed)) || Fail($"doc={Show(doc)} a={a} b={b} composed={composed}");
    }

    [Property(MaxTest = 200)]
    public bool ComposeIsAssociative(int seed)
    {
        var rng = new Random(seed);
        var doc = OpGen.Text(rng);
        var a = OpGen.Op(rng, doc);
        var b = OpGen.Op(rng, a.Apply(doc));
        var c = OpGen.Op(rng, b.Apply(a.Apply(doc)));
        var left = TextOperation.Compose(TextOperation.Compose(a, b), c);
        var right = TextOperation.Compose(a, TextOperation.Compose(b, c));
        return left.Equals(right) || Fail($"doc={Show(doc)} a={a} b={b} c={c}: {left} != {right}");
    }

    [Property(MaxTest = 2000)]
    public bool CanonicalizingKeepsMeaningAndIsCanonical(int seed)
    {
        var rng = new Random(seed);
        var doc = OpGen.Text(rng);
        var op = OpGen.Op(rng, doc);
        var scrambled = OpGen.Scramble(rng, op, doc.Length);
        var canonical = TextOperation.Create(scrambled);
        return (IsCanonical(canonical) && canonical.Apply(doc) == OpGen.ApplyNaive(doc, scrambled) && canonical.Equals(op))
            || Fail($"doc={Show(doc)} op={op} canonical={canonical}");
    }

    [Property(MaxTest = 1000)]
    public bool InvertUndoes(int seed)
    {
        var rng = new Random(seed);
        var doc = OpGen.Text(rng);
        var op = OpGen.Op(rng, doc);
        var undone = op.Invert(Rope.FromString(doc)).Apply(op.Apply(doc));
        return undone == doc || Fail($"doc={Show(doc)} op={op}");
    }

    [Property(MaxTest = 1000)]
    public bool GeneratedOpsAreValidAndRopeAgreesWithString(int seed)
    {
        var rng = new Random(seed);
        var doc = OpGen.Text(rng, 40);
        var rope = Rope.FromString(doc);
        var op = OpGen.Op(rng, doc);
        return (op.Validate(rope) is null && op.Apply(rope).ToString() == op.Apply(doc)) || Fail($"doc={Show(doc)} op={op}");
    }

    internal static bool IsCanonical(TextOperation op)
    {
        var c = op.Components;
        for (var i = 0; i < c.Length; i++)
        {
            if (c[i].Length == 0)
            {
                return false;
            }
            if (i > 0 && (c[i].IsInsert == c[i - 1].IsInsert && c[i].IsRetain == c[i - 1].IsRetain && c[i].IsDelete == c[i - 1].IsDelete))
            {
                return false;
            }
            if (i > 0 && c[i].IsInsert && c[i - 1].IsDelete)
            {
                return false;
            }
        }
        return c.Length == 0 || !c[^1].IsRetain;
    }

    private static string Show(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    private static bool Fail(string message) => throw new Xunit.Sdk.XunitException(message);
}
