using Collab.Client.Internal;
using Collab.Ot;

namespace Collab.Client.Tests.Internal;

/// <summary>
/// The client's mutable text against the immutable reference: every random op applied to a
/// <see cref="TextBuffer"/> leaves the same text as <see cref="TextOperation.Apply(string)"/>, and
/// validating and inverting say exactly what they say on a <see cref="Rope"/>. Fixed seeds; a
/// failure prints the seed, the step and the op.
/// </summary>
public class TextBufferTests
{
    // Letters plus a surrogate pair, so ops can split pairs and chunk boundaries can fall inside one.
    private static readonly string[] s_pieces = ["a", "b", "c", "\n", " ", "\U0001F600"];

    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 40)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void RandomOpsLeaveTheSameTextAsApplyingThemToAString(int seed)
    {
        var random = new Random(seed);
        var expected = RandomText(random, random.Next(4) == 0 ? 0 : random.Next(6000));
        var buffer = new TextBuffer();
        buffer.Reset(expected);
        for (var step = 0; step < 300; step++)
        {
            var op = RandomOp(random, expected.Length);
            var when = $"seed {seed}, step {step}, op {op}";
            buffer.Apply(op);
            expected = op.Apply(expected);
            Assert.True(expected == buffer.ToString(), when);
            Assert.Equal(expected.Length, buffer.Length);
            CheckShape(buffer, when);
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void ValidateInvertSubstringAndIndexAgreeWithTheRope(int seed)
    {
        var random = new Random(seed);
        var text = RandomText(random, random.Next(5000));
        var buffer = new TextBuffer();
        buffer.Reset(text);
        for (var step = 0; step < 200; step++)
        {
            var rope = Rope.FromString(text);
            var op = RandomOp(random, text.Length + (random.Next(10) == 0 ? 1 : 0));
            var when = $"seed {seed}, step {step}, op {op}";
            Assert.True(op.Validate(rope) == buffer.Validate(op), when);
            if (op.BaseLength <= text.Length)
            {
                Assert.True(op.Invert(rope).Equals(buffer.Invert(op)), when);
            }
            if (text.Length > 0)
            {
                var index = random.Next(text.Length);
                Assert.Equal(text[index], buffer[index]);
                var start = random.Next(text.Length + 1);
                var length = random.Next(text.Length - start + 1);
                Assert.Equal(text.Substring(start, length), buffer.Substring(start, length));
            }
            if (op.Validate(rope) is null)
            {
                buffer.Apply(op);
                text = op.Apply(text);
            }
        }
        Assert.Equal(text, buffer.ToString());
    }

    [Fact]
    public void AnOpPastTheEndThrowsAndChangesNothing()
    {
        var buffer = new TextBuffer();
        buffer.Reset("abc");
        var op = new TextOperation.Builder().Retain(2).Insert("x").Delete(2).Build();
        var thrown = Assert.Throws<ArgumentException>(() => buffer.Apply(op));
        Assert.Equal("Operation base length 4 exceeds document length 3.", thrown.Message);
        Assert.Equal("abc", buffer.ToString());
        Assert.Equal(
            "the operation retains or deletes 4 code units, past the end of the document (length 3)",
            buffer.Validate(op));
    }

    [Fact]
    public void TypingInTheMiddleOfALargeTextKeepsFewChunks()
    {
        var random = new Random(3);
        var expected = RandomText(random, 100_000);
        var buffer = new TextBuffer();
        buffer.Reset(expected);
        var position = expected.Length / 2;
        var builder = new System.Text.StringBuilder(expected);
        for (var i = 0; i < 5000; i++)
        {
            // Type three characters, delete one behind: the text grows where the cursor is.
            buffer.Insert(position, "xyz");
            builder.Insert(position, "xyz");
            position += 3;
            buffer.Delete(position - 1, 1);
            builder.Remove(position - 1, 1);
            position--;
        }
        Assert.Equal(builder.ToString(), buffer.ToString());
        CheckShape(buffer, "after typing");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void GrowingALargeTextSplitsNodesAndShrinkingItMergesThem(int seed)
    {
        // 400 000 code units are two levels of nodes; growing to three times that splits the root,
        // and deleting nearly all of it merges and refills nodes until the root holds the chunks.
        var random = new Random(seed);
        var builder = new System.Text.StringBuilder(RandomText(random, 400_000));
        var buffer = new TextBuffer();
        buffer.Reset(builder.ToString());
        CheckShape(buffer, $"seed {seed}, reset");
        var highest = buffer.Height;
        for (var step = 0; builder.Length < 1_200_000; step++)
        {
            var position = random.Next(builder.Length + 1);
            var text = RandomText(random, random.Next(1, 4000));
            buffer.Insert(position, text);
            builder.Insert(position, text);
            if (random.Next(4) == 0)
            {
                var start = random.Next(builder.Length);
                var length = random.Next(1, Math.Min(builder.Length - start, 3000) + 1);
                buffer.Delete(start, length);
                builder.Remove(start, length);
            }
            CheckShape(buffer, $"seed {seed}, growing, step {step}");
            highest = Math.Max(highest, buffer.Height);
        }
        Assert.Equal(builder.ToString(), buffer.ToString());
        Assert.True(highest >= 3, $"height only reached {highest}");
        for (var step = 0; builder.Length > 500; step++)
        {
            var start = random.Next(builder.Length);
            var length = random.Next(1, Math.Min(builder.Length - start, 40_000) + 1);
            buffer.Delete(start, length);
            builder.Remove(start, length);
            if (random.Next(4) == 0)
            {
                var position = random.Next(builder.Length + 1);
                var text = RandomText(random, random.Next(1, 100));
                buffer.Insert(position, text);
                builder.Insert(position, text);
            }
            CheckShape(buffer, $"seed {seed}, shrinking, step {step}");
        }
        Assert.Equal(builder.ToString(), buffer.ToString());
        Assert.Equal(1, buffer.Height);
    }

    [Fact]
    public void DeletingEverythingAndStartingAgainWorks()
    {
        var buffer = new TextBuffer();
        buffer.Reset(new string('q', 5000));
        buffer.Delete(0, 5000);
        Assert.Equal(0, buffer.Length);
        Assert.Equal("", buffer.ToString());
        Assert.Equal(0, buffer.ChunkCount);
        buffer.Insert(0, "hello");
        buffer.Insert(5, " world");
        Assert.Equal("hello world", buffer.ToString());
    }

    /// <summary>The tree is balanced and small chunks are merged: O(log n) per lookup, O(n / chunk) chunks.</summary>
    private static void CheckShape(TextBuffer buffer, string when)
    {
        Assert.True(buffer.CheckTree() is null, $"{when}: {buffer.CheckTree()}");
        var chunks = buffer.ChunkCount;
        // A B+tree whose nodes below the root have at least MinChildren children and whose inner
        // root has at least two holds at least 2 * MinChildren^(height - 1) chunks when it is
        // more than one node high.
        var bound = chunks == 0 ? 0 : 1 + Math.Log(Math.Max(chunks / 2.0, 1), TextBuffer.MinChildren);
        Assert.True(buffer.Height <= bound + 1e-9, $"{when}: height {buffer.Height} for {chunks} chunks");
        // No two chunks under a quarter full are adjacent, so at most 2 * (length / quarter) + 1.
        Assert.True(chunks <= 8 * buffer.Length / TextBuffer.ChunkSize + 1, $"{when}: {chunks} chunks for length {buffer.Length}");
    }

    private static string RandomText(Random random, int length)
    {
        var builder = new System.Text.StringBuilder(length + 2);
        while (builder.Length < length)
        {
            builder.Append(s_pieces[random.Next(s_pieces.Length)]);
        }
        return builder.ToString();
    }

    /// <summary>A random op on a text of <paramref name="length"/>: some small edits, sometimes a large insert or a delete across many chunks.</summary>
    private static TextOperation RandomOp(Random random, int length)
    {
        var builder = new TextOperation.Builder();
        var pos = 0;
        var components = random.Next(1, 6);
        for (var i = 0; i < components; i++)
        {
            switch (random.Next(3))
            {
                case 0 when pos < length:
                    var retain = random.Next(1, length - pos + 1);
                    builder.Retain(retain);
                    pos += retain;
                    break;
                case 1 when pos < length:
                    var max = random.Next(8) == 0 ? length - pos : Math.Min(length - pos, 20);
                    var delete = random.Next(1, max + 1);
                    builder.Delete(delete);
                    pos += delete;
                    break;
                default:
                    builder.Insert(RandomText(random, random.Next(8) == 0 ? random.Next(1, 4000) : random.Next(1, 6)));
                    break;
            }
        }
        return builder.Build();
    }
}
