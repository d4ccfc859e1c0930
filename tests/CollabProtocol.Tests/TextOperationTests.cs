using System.Text.Json;
using Collab.Ot;
using MessagePack;

namespace Collab.Protocol.Tests;

public sealed class TextOperationTests
{
    private static TextOperation Parse(string json) => JsonSerializer.Deserialize<TextOperation>(json)!;

    [Theory]
    [InlineData("[5, \" brave\"]", "hello brave world")]
    [InlineData("[-6]", "world")]
    [InlineData("[6, \"W\", -1]", "hello World")]
    [InlineData("[]", "hello world")]
    public void ProtocolExamplesApply(string op, string expected)
    {
        Assert.Equal(expected, Parse(op).Apply("hello world"));
        Assert.Equal(expected, Parse(op).Apply(Rope.FromString("hello world")).ToString());
    }

    [Theory]
    [InlineData("[0, 2, 3, -1, -1, \"a\", \"b\", 4]", "[5,\"ab\",-2]")]
    [InlineData("[-2, \"x\"]", "[\"x\",-2]")]
    [InlineData("[3]", "[]")]
    [InlineData("[1, \"a\", -1, \"b\"]", "[1,\"ab\",-1]")]
    public void NonCanonicalOpsAreCanonicalized(string input, string canonical) =>
        Assert.Equal(canonical, Parse(input).ToString());

    [Theory]
    [InlineData("[1.5]", "component 0")]
    [InlineData("[\"\"]", "empty string")]
    [InlineData("[true]", "component 0")]
    [InlineData("[null]", "component 0")]
    [InlineData("[[1]]", "component 0")]
    [InlineData("{\"a\":1}", "array")]
    [InlineData("\"abc\"", "array")]
    [InlineData("[99999999999]", "component 0")]
    public void MalformedJsonBecomesAnErrorNotAnException(string json, string reason)
    {
        var op = Parse(json);
        Assert.NotNull(op.Error);
        Assert.Contains(reason, op.Error);
    }

    [Fact]
    public void MalformedMessagePackBecomesAnError()
    {
        var bytes = MessagePackSerializer.Serialize(new object[] { 1, 2.5 });
        var op = MessagePackSerializer.Deserialize<TextOperation>(bytes);
        Assert.Contains("component 1", op!.Error);
        var good = MessagePackSerializer.Deserialize<TextOperation>(MessagePackSerializer.Serialize(new object[] { 2, "x", -1 }));
        Assert.Null(good!.Error);
        Assert.Equal("[2,\"x\",-1]", good.ToString());
    }

    // Strict UTF-8 in both readers: never decoded as U+FFFD.
    [Theory]
    [InlineData(new byte[] { 0xED, 0xA0, 0xBD })]       // "\ud83d" as a lenient encoder writes it
    [InlineData(new byte[] { 0x61, 0xC3, 0x28 })]       // invalid continuation
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98 })]       // truncated
    [InlineData(new byte[] { 0xC0, 0xAF })]             // overlong
    public void InvalidUtf8InAnInsertIsMalformedInBothReaders(byte[] bad)
    {
        byte[] msgpack = [0x92, 0x01, (byte)(0xA0 | bad.Length), .. bad];
        var fromMessagePack = MessagePackSerializer.Deserialize<TextOperation>(msgpack)!;
        Assert.Equal("component 1 is not valid UTF-8", fromMessagePack.Error);

        byte[] json = [.. "[1,\""u8, .. bad, .. "\"]"u8];
        var fromJson = JsonSerializer.Deserialize<TextOperation>(json)!;
        Assert.Equal("component 1 has a lone surrogate or is not valid UTF-8", fromJson.Error);
    }

    [Fact]
    public void WellFormedUtf8InsertsStillReadInMessagePack()
    {
        var op = TextOperation.Create([OpComponent.Retain(1), OpComponent.Insert("é😀\u0000\uFFFF")]);
        Assert.Equal(op, MessagePackSerializer.Deserialize<TextOperation>(MessagePackSerializer.Serialize(op)));
    }

    [Fact]
    public void ConcurrentInsertsAtOnePlacePutTheLaterOpFirst()
    {
        // b reached the server first; a arrives later and wins the tie: its text goes left.
        var a = TextOperation.Insert(2, "A");
        var b = TextOperation.Insert(2, "B");
        var server = TextOperation.Transform(a, b, aWinsTies: true).Apply(b.Apply("xxxx"));
        var client = TextOperation.Transform(b, a, aWinsTies: false).Apply(a.Apply("xxxx"));
        Assert.Equal("xxABxx", server);
        Assert.Equal(server, client);
    }

    [Theory]
    [InlineData("hello", "[6]", "past the end")]
    [InlineData("hello", "[-6]", "past the end")]
    [InlineData("a😀b", "[2, \"x\"]", "splits a surrogate pair")]
    [InlineData("a😀b", "[1, -1]", "splits a surrogate pair")]
    [InlineData("ab", "[1, \"\\ud83d\"]", "lone surrogate")]
    [InlineData("ab", "[\"\\ude00x\"]", "lone surrogate")]
    public void InvalidOpsAreRejectedWithAReason(string doc, string op, string reason)
    {
        var problem = Parse(op).Validate(Rope.FromString(doc));
        Assert.NotNull(problem);
        Assert.Contains(reason, problem);
    }

    [Fact]
    public void HugeCountsSaturateInsteadOfWrapping()
    {
        var op = Parse("[2147483647, 2147483647, \"x\"]");
        Assert.Equal(int.MaxValue, op.BaseLength);
        Assert.NotNull(op.Validate(Rope.FromString("abc")));
    }

    [Fact]
    public void TransformPositionFollowsInsertsAndDeletes()
    {
        var op = Parse("[2, \"abc\", 3, -2]");
        Assert.Equal(1, op.TransformPosition(1));
        Assert.Equal(2, op.TransformPosition(2));
        Assert.Equal(5, op.TransformPosition(2, stickToEnd: true));
        Assert.Equal(7, op.TransformPosition(4));
        Assert.Equal(8, op.TransformPosition(6));
        Assert.Equal(8, op.TransformPosition(7));
        Assert.Equal(9, op.TransformPosition(8));
    }

    [Fact]
    public void DiffNeverSplitsASurrogatePair()
    {
        var from = "x😀y";
        var to = "x😁y";
        var op = TextOperation.Diff(from, to);
        Assert.Null(op.Validate(Rope.FromString(from)));
        Assert.Equal(to, op.Apply(from));
    }
}
