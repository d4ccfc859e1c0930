using Collab.Client.Internal;
using Collab.Ot;

namespace Collab.Client.Tests.Sync;

/// <summary>The engine's rich-text type (<see cref="RichTextType"/>): the laws the engine relies on, over seeded random deltas.</summary>
public sealed class RichTextTypeTests
{
    private static readonly RichTextType s_type = RichTextType.Instance;

    [Fact]
    public void AtATieTheOpThatWinsTiesInsertsFirst()
    {
        var doc = Delta.Document("ab");
        var a = new Delta.Builder().Retain(1).Insert("A").Build();
        var b = new Delta.Builder().Retain(1).Insert("B").Build();
        Assert.Equal("aABb", s_type.Apply(s_type.Apply(doc, b), s_type.Transform(a, b, aWinsTies: true)).PlainText());
        Assert.Equal("aBAb", s_type.Apply(s_type.Apply(doc, b), s_type.Transform(a, b, aWinsTies: false)).PlainText());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TransformedPairsConvergeAndPositionsMapBackInside(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 200; i++)
        {
            var doc = RandomDocument(rng);
            var a = RandomChange(rng, doc);
            var b = RandomChange(rng, doc);
            var left = s_type.Apply(s_type.Apply(doc, a), s_type.Transform(b, a, aWinsTies: false));
            var right = s_type.Apply(s_type.Apply(doc, b), s_type.Transform(a, b, aWinsTies: true));
            Assert.True(left.Equals(right), $"seed {seed} case {i}: {doc} with {a} and {b}: {left} vs {right}");
            var after = s_type.Apply(doc, a);
            var position = rng.Next(after.Length + 1);
            var back = s_type.TransformPositionBack(a, position);
            Assert.InRange(back, 0, doc.Length);
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(5)]
    public void MergeLeadsBothSidesToOneDocumentAndDeletesNothingOfTheServers(int seed)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 200; i++)
        {
            var server = RandomDocument(rng);
            var local = RandomDocument(rng);
            var (restore, toLocal) = s_type.Merge(server, local);
            var fromServer = s_type.Apply(server, restore);
            Assert.True(fromServer.Equals(s_type.Apply(local, toLocal)), $"seed {seed} case {i}: {server} and {local}");
            Assert.DoesNotContain(restore.Ops.ToArray(), o => o.IsDelete);
            Assert.DoesNotContain(toLocal.Ops.ToArray(), o => o.IsDelete);
        }
    }

    [Theory]
    [InlineData(6, 3)]
    [InlineData(7, 1)]
    public void SplitPartsEachInsertAtMostTheLimitAndComposeToTheOp(int seed, int maxInsert)
    {
        var rng = new Random(seed);
        for (var i = 0; i < 200; i++)
        {
            var doc = RandomDocument(rng);
            var op = RandomChange(rng, doc);
            var parts = s_type.Split(op, maxInsert);
            var composed = parts.Aggregate(doc, s_type.Apply);
            Assert.True(composed.Equals(s_type.Apply(doc, op)), $"seed {seed} case {i}: {op} split into {string.Join(" ", parts)}");
            foreach (var part in parts)
            {
                Assert.True(part.Ops.ToArray().Where(o => o.IsInsert).Sum(o => o.Length) <= Math.Max(maxInsert, 2), $"{part} inserts more than {maxInsert}");
            }
        }
    }

    private static Delta RandomDocument(Random rng)
    {
        var builder = new Delta.Builder();
        for (var n = rng.Next(0, 4); n > 0; n--)
        {
            builder.Insert(Word(rng), rng.Next(2) == 0 ? AttributeMap.Of("bold", true) : null);
        }
        return builder.Build();
    }

    private static Delta RandomChange(Random rng, Delta doc)
    {
        var builder = new Delta.Builder();
        var left = doc.Length;
        while (left > 0 && rng.Next(4) != 0)
        {
            var n = rng.Next(1, left + 1);
            switch (rng.Next(3))
            {
                case 0: builder.Retain(n); break;
                case 1: builder.Retain(n, AttributeMap.Of(rng.Next(2) == 0 ? "italic" : "bold", rng.Next(3) == 0 ? AttributeValue.Null : AttributeValue.From(true))); break;
                default: builder.Delete(n); break;
            }
            left -= n;
            if (rng.Next(2) == 0)
            {
                builder.Insert(Word(rng), rng.Next(2) == 0 ? AttributeMap.Of("underline", true) : null);
            }
        }
        if (rng.Next(2) == 0)
        {
            builder.Insert(Word(rng));
        }
        return builder.Build();
    }

    private static string Word(Random rng) => new([.. Enumerable.Range(0, rng.Next(1, 5)).Select(_ => (char)('a' + rng.Next(26)))]);
}
