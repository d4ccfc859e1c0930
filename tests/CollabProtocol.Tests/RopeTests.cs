using System.Text;
using Collab.Ot;

namespace Collab.Protocol.Tests;

public sealed class RopeTests
{
    [Fact]
    public void RandomEditsMatchAStringBuilderAndStayBalanced()
    {
        var rng = new Random(1234);
        var expected = new StringBuilder(new string('x', 50_000));
        var rope = Rope.FromString(expected.ToString());
        for (var i = 0; i < 20_000; i++)
        {
            var pos = rng.Next(expected.Length + 1);
            if (rng.Next(3) == 0 && expected.Length > 0)
            {
                var len = Math.Min(rng.Next(1, 40), expected.Length - pos);
                expected.Remove(pos, len);
                rope = rope.Delete(pos, len);
            }
            else
            {
                var text = new string((char)('a' + rng.Next(26)), rng.Next(1, 30));
                expected.Insert(pos, text);
                rope = rope.Insert(pos, text);
            }
        }
        Assert.Equal(expected.ToString(), rope.ToString());
        Assert.Equal(expected.Length, rope.Length);
        for (var i = 0; i < 1000; i++)
        {
            var pos = rng.Next(expected.Length);
            Assert.Equal(expected[pos], rope[pos]);
        }
        // A balanced tree of n leaves of at least a few hundred units each is shallow.
        var leaves = Math.Max(1, rope.Length / 128);
        Assert.True(rope.Height <= 2 * Math.Log2(leaves) + 4, $"height {rope.Height} for {rope.Length} units");
    }

    [Fact]
    public void SubstringAndChunksCoverTheText()
    {
        var text = string.Concat(Enumerable.Range(0, 5000).Select(i => (i % 10).ToString()));
        var rope = Rope.FromString(text);
        Assert.Equal(text.Substring(1234, 2345), rope.Substring(1234, 2345));
        Assert.Equal(text, string.Concat(rope.Chunks().Select(c => c.ToString())));
        Assert.Throws<ArgumentOutOfRangeException>(() => rope.Substring(4999, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => rope.Insert(5001, "x"));
    }

    [Fact]
    public void OldVersionsAreUnchangedByEdits()
    {
        var v1 = Rope.FromString("hello world");
        var v2 = v1.Insert(5, ",").Delete(0, 1);
        Assert.Equal("hello world", v1.ToString());
        Assert.Equal("ello, world", v2.ToString());
    }
}
