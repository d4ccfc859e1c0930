using Collab.Ot;
using FsCheck;
using FsCheck.Xunit;

namespace Collab.Protocol.Tests;

/// <summary>
/// The laws a rich-text delta keeps, each over seeded random documents and changes with
/// attributes, embeds and surrogate pairs (FsCheck picks the seeds). Every change here is valid
/// on its document (no null attribute on an insert), so the laws hold exactly. A failure prints
/// the document and the deltas.
/// </summary>
public sealed class DeltaLawsTests
{
    private static readonly string[] s_pieces = ["a", "bc", " ", "\n", "é", "😀", "x😀y", "the cat"];
    private static readonly AttributeMap?[] s_styles =
    [
        null, AttributeMap.Of("bold", true), AttributeMap.Of("italic", true), AttributeMap.Of("header", 1),
        AttributeMap.Create([new("bold", true), new("color", "red")]), AttributeMap.Of("link", "https://example.com"),
    ];
    private static readonly AttributeMap?[] s_formats =
    [
        null, AttributeMap.Of("bold", AttributeValue.Null), AttributeMap.Of("bold", true), AttributeMap.Of("color", "blue"),
        AttributeMap.Create([new("italic", AttributeValue.Null), new("header", 2)]),
    ];

    private static void Insert(Random rng, Delta.Builder builder)
    {
        var style = s_styles[rng.Next(s_styles.Length)];
        if (rng.Next(8) == 0)
        {
            builder.Insert(DeltaEmbed.Parse($$"""{"image":"{{rng.Next(2)}}.png"}"""), style);
        }
        else
        {
            builder.Insert(s_pieces[rng.Next(s_pieces.Length)], style);
        }
    }

    private static Delta Document(Random rng)
    {
        var builder = new Delta.Builder();
        for (var i = rng.Next(8); i > 0; i--)
        {
            Insert(rng, builder);
        }
        return builder.Build();
    }

    /// <summary>A change valid on <paramref name="doc"/>: cuts never fall inside a surrogate pair.</summary>
    private static Delta Change(Random rng, Delta doc)
    {
        var text = string.Concat(doc.Ops.ToArray().Select(op => op.Text ?? "\0"));
        var builder = new Delta.Builder();
        var pos = 0;
        for (var step = 1 + rng.Next(5); step > 0; step--)
        {
            var left = text.Length - pos;
            var r = rng.Next(10);
            if (r < 3 || left == 0)
            {
                Insert(rng, builder);
                continue;
            }
            var n = 1 + rng.Next(Math.Min(left, 5));
            if (pos + n < text.Length && char.IsLowSurrogate(text[pos + n]))
            {
                n++;
            }
            if (r < 7)
            {
                builder.Retain(n, s_formats[rng.Next(s_formats.Length)]);
            }
            else
            {
                builder.Delete(n);
            }
            pos += n;
        }
        var change = builder.Build();
        Assert.True(change.Validate(doc) is null, $"generated {change} on {doc}: {change.Validate(doc)}");
        return change;
    }

    // Convergence (TP1): a then a.transform(b) equals b then b.transform(a), with opposite priorities.
    [Property(MaxTest = 2000)]
    public bool TransformConverges(int seed)
    {
        var rng = new Random(seed);
        var doc = Document(rng);
        var a = Change(rng, doc);
        var b = Change(rng, doc);
        var left = a.Transform(b, priority: true).Apply(a.Apply(doc));
        var right = b.Transform(a, priority: false).Apply(b.Apply(doc));
        return left.Equals(right) || Fail($"doc={doc} a={a} b={b}: {left} != {right}");
    }

    [Property(MaxTest = 2000)]
    public bool ComposeEqualsApplyingInSequence(int seed)
    {
        var rng = new Random(seed);
        var doc = Document(rng);
        var a = Change(rng, doc);
        var afterA = a.Apply(doc);
        var b = Change(rng, afterA);
        var composed = a.Compose(b);
        return composed.Apply(doc).Equals(b.Apply(afterA)) || Fail($"doc={doc} a={a} b={b} composed={composed}");
    }

    [Property(MaxTest = 1000)]
    public bool ComposeIsAssociative(int seed)
    {
        var rng = new Random(seed);
        var doc = Document(rng);
        var a = Change(rng, doc);
        var b = Change(rng, a.Apply(doc));
        var c = Change(rng, b.Apply(a.Apply(doc)));
        return a.Compose(b).Compose(c).Equals(a.Compose(b.Compose(c))) || Fail($"doc={doc} a={a} b={b} c={c}");
    }

    [Property(MaxTest = 2000)]
    public bool InvertUndoes(int seed)
    {
        var rng = new Random(seed);
        var doc = Document(rng);
        var a = Change(rng, doc);
        var undone = a.Invert(doc).Apply(a.Apply(doc));
        return undone.Equals(doc) || Fail($"doc={doc} a={a}: {undone}");
    }

    [Property(MaxTest = 2000)]
    public bool DiffRebuildsAndTransformPositionStaysInTheDocument(int seed)
    {
        var rng = new Random(seed);
        var doc = Document(rng);
        var other = rng.Next(2) == 0 ? Document(rng) : Change(rng, doc).Apply(doc);
        var diff = doc.Diff(other);
        var a = Change(rng, doc);
        var after = a.Apply(doc);
        var index = rng.Next(doc.Length + 1);
        var moved = a.TransformPosition(index, rng.Next(2) == 0);
        return (diff.Apply(doc).Equals(other) && moved >= 0 && moved <= after.Length)
            || Fail($"doc={doc} other={other} diff={diff} a={a} index={index} moved={moved}");
    }

    private static bool Fail(string message) => throw new Xunit.Sdk.XunitException(message);
}
