using System.Buffers;
using System.Text.Json;
using Collab.Messages;
using Collab.Ot;
using MessagePack;

namespace Collab.Protocol.Tests;

/// <summary>
/// The edges of <see cref="Delta"/> that the oracle's random cases do not aim at: canonical form
/// by hand, the wire forms and their limits, validation, and the laws on longer documents.
/// </summary>
public sealed class DeltaTests
{
    private static readonly MessagePackSerializerOptions s_hubOptions =
        MessagePackSerializerOptions.Standard.WithResolver(StrictUtf8Resolver.Instance).WithSecurity(MessagePackSecurity.UntrustedData);

    private static readonly AttributeMap s_bold = AttributeMap.Of("bold", true);
    private static readonly AttributeMap s_italic = AttributeMap.Of("italic", true);

    private static Delta Parse(string json) => JsonSerializer.Deserialize<Delta>(json)!;

    private static Delta Valid(string json)
    {
        var delta = Parse(json);
        Assert.Null(delta.Error);
        return delta;
    }

    private static string? ErrorOf(string json) => Parse(json).Error;

    private delegate void Write(ref MessagePackWriter writer);

    private static Delta FromMessagePack(Write write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        write(ref writer);
        writer.Flush();
        return MessagePackSerializer.Deserialize<Delta>(buffer.WrittenMemory, s_hubOptions);
    }

    [Fact]
    public void TheWireFormIsQuillsJson()
    {
        const string Wire = """[{"insert":"a","attributes":{"bold":true}},{"retain":3},{"delete":2}]""";
        var delta = Valid(Wire);
        Assert.Equal([DeltaOp.Insert("a", s_bold), DeltaOp.Retain(3), DeltaOp.Delete(2)], delta.Ops.ToArray());
        Assert.Equal(Wire, JsonSerializer.Serialize(delta));
        Assert.Equal(Wire, delta.ToString());
        Assert.Equal(5, delta.BaseLength);
    }

    [Fact]
    public void CanonicalFormIsWhatQuillsPushGives()
    {
        var delta = new Delta.Builder()
            .Insert("a", s_bold).Insert("b", s_bold) // merged
            .Insert("c") // other attributes: not merged
            .Retain(2).Retain(3) // merged
            .Retain(1, s_bold).Retain(1, AttributeMap.Of("bold", true)) // merged: equal maps
            .Delete(1).Insert("d").Delete(2).Insert("e") // inserts before the delete, merged; deletes merged
            .Insert(DeltaEmbed.Parse("""{"image":"x"}""")).Insert(DeltaEmbed.Parse("""{"image":"x"}""")) // embeds never merge
            .Insert("") // dropped
            .Retain(0).Delete(0) // dropped
            .Insert("f", AttributeMap.Create([])) // empty attributes are none
            .Retain(4) // trailing plain retain: chopped
            .Build();
        Assert.Equal(
            """[{"insert":"ab","attributes":{"bold":true}},{"insert":"c"},{"retain":5},{"retain":2,"attributes":{"bold":true}},{"insert":"de"},{"insert":{"image":"x"}},{"insert":{"image":"x"}},{"insert":"f"},{"delete":3}]""",
            delta.ToString());
        Assert.Equal(14, delta.BaseLength);
    }

    [Fact]
    public void AnInsertAfterALoneDeleteGoesFirst() =>
        Assert.Equal("""[{"insert":"a"},{"delete":2}]""", new Delta.Builder().Delete(2).Insert("a").Build().ToString());

    [Fact]
    public void ATrailingRetainWithAttributesStays()
    {
        var delta = new Delta.Builder().Retain(2).Retain(3, s_italic).Build();
        Assert.Equal("""[{"retain":2},{"retain":3,"attributes":{"italic":true}}]""", delta.ToString());
        Assert.Equal(5, delta.BaseLength);
    }

    [Fact]
    public void EmbedsAndNumbersCompareAsQuillDoes()
    {
        Assert.Equal(DeltaEmbed.Parse("""{"video":"v","width":2}"""), DeltaEmbed.Parse("""{ "width": 2.0, "video": "v" }"""));
        Assert.NotEqual(DeltaEmbed.Parse("""{"a":[1,2]}"""), DeltaEmbed.Parse("""{"a":[2,1]}"""));
        Assert.Equal(Valid("""[{"retain":1,"attributes":{"header":1}}]"""), Valid("""[{"retain":1,"attributes":{"header":1.0}}]"""));
        Assert.Equal(Valid("""[{"retain":1,"attributes":{"n":0}}]"""), Valid("""[{"retain":1,"attributes":{"n":-0}}]"""));
        Assert.NotEqual(Valid("""[{"retain":1,"attributes":{"n":1}}]"""), Valid("""[{"retain":1,"attributes":{"n":"1"}}]"""));
        Assert.NotEqual(Valid("""[{"retain":1,"attributes":{"n":true}}]"""), Valid("""[{"retain":1,"attributes":{"n":1}}]"""));
        // Inserts of the same text with equal attributes written in another order merge.
        Assert.Equal(1, Valid("""[{"insert":"a","attributes":{"b":1,"c":2}},{"insert":"b","attributes":{"c":2.0,"b":1}}]""").Count);
    }

    [Theory]
    [InlineData(1.0, "1")]
    [InlineData(-0.0, "0")]
    [InlineData(0.1, "0.1")]
    [InlineData(123.456, "123.456")]
    [InlineData(1e21, "1e+21")]
    [InlineData(1e20, "100000000000000000000")]
    [InlineData(1e-6, "0.000001")]
    [InlineData(1e-7, "1e-7")]
    [InlineData(1.5e300, "1.5e+300")]
    [InlineData(-2.5e-10, "-2.5e-10")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(9007199254740993.0, "9007199254740992")]
    public void NumbersAreWrittenAsJavaScriptWritesThem(double value, string expected) =>
        Assert.Equal(expected, AttributeValue.From(value).ToJson());

    [Fact]
    public void NumbersSurviveJsonAndMessagePack()
    {
        var delta = Valid("""[{"retain":1,"attributes":{"a":1,"b":1.5,"c":-3,"d":1e300,"e":0.1,"f":9007199254740993}},{"insert":{"x":[1,2.5,-7e-9,{"y":null,"z":false}]}}]""");
        var pack = MessagePackSerializer.Serialize(delta, s_hubOptions);
        var back = MessagePackSerializer.Deserialize<Delta>(pack, s_hubOptions);
        Assert.Equal(delta, back);
        Assert.Equal(delta.ToString(), back.ToString());
        Assert.Equal(delta, Parse(JsonSerializer.Serialize(back)));
        // Integers go as MessagePack integers (as a JavaScript client writes them), others as float64.
        Assert.Equal(MessagePackType.Integer, NextTypeAfter(pack, "a"));
        Assert.Equal(MessagePackType.Float, NextTypeAfter(pack, "b"));
    }

    private static MessagePackType NextTypeAfter(byte[] pack, string key)
    {
        var reader = new MessagePackReader(pack);
        reader.ReadArrayHeader();
        reader.ReadMapHeader();
        while (reader.ReadString() != "attributes")
        {
            reader.Skip();
        }
        var count = reader.ReadMapHeader();
        for (var i = 0; i < count; i++)
        {
            if (reader.ReadString() == key)
            {
                return reader.NextMessagePackType;
            }
            reader.Skip();
        }
        throw new InvalidOperationException($"no attribute {key}");
    }

    [Fact]
    public void MessagePackIsAnArrayOfMapsWithQuillsKeys()
    {
        var delta = FromMessagePack((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(4);
            w.WriteMapHeader(2);
            w.Write("attributes");
            w.WriteMapHeader(1);
            w.Write("bold");
            w.Write(true);
            w.Write("insert");
            w.Write("a");
            w.WriteMapHeader(1);
            w.Write("insert");
            w.WriteMapHeader(1);
            w.Write("image");
            w.Write("x.png");
            w.WriteMapHeader(1);
            w.Write("retain");
            w.Write(3.0);
            w.WriteMapHeader(1);
            w.Write("delete");
            w.Write(2);
        });
        Assert.Equal("""[{"insert":"a","attributes":{"bold":true}},{"insert":{"image":"x.png"}},{"retain":3},{"delete":2}]""", delta.ToString());
        var pack = MessagePackSerializer.Serialize(delta, s_hubOptions);
        Assert.Equal(
            """[{"insert":"a","attributes":{"bold":true}},{"insert":{"image":"x.png"}},{"retain":3},{"delete":2}]""",
            MessagePackSerializer.ConvertToJson(pack));
    }

    [Theory]
    [InlineData("{}", "a delta must be an array of ops")]
    [InlineData("[1]", "op 0: an op must be an object")]
    [InlineData("""[{"retain":1},{"insert":""}]""", "op 1: an insert must be a non-empty string or an embed object")]
    [InlineData("""[{"insert":5}]""", "op 0: an insert must be a non-empty string or an embed object")]
    [InlineData("""[{"retain":{"image":{"x":1}}}]""", "op 0: a retain of an object (an embed's change) is not supported")]
    [InlineData("""[{"retain":0}]""", "op 0: a retain must be a positive integer")]
    [InlineData("""[{"retain":1.5}]""", "op 0: a retain must be a positive integer")]
    [InlineData("""[{"delete":-1}]""", "op 0: a delete must be a positive integer")]
    [InlineData("""[{"delete":"1"}]""", "op 0: a delete must be a positive integer")]
    [InlineData("""[{"delete":3000000000}]""", "op 0: a delete is out of range")]
    [InlineData("""[{"insert":"a","retain":1}]""", "op 0: an op must have exactly one of insert, retain and delete")]
    [InlineData("""[{"attributes":{"bold":true}}]""", "op 0: an op must have exactly one of insert, retain and delete")]
    [InlineData("""[{"delete":1,"attributes":{"bold":true}}]""", "op 0: a delete has no attributes")]
    [InlineData("""[{"insert":"a","color":"red"}]""", "op 0: an op has only insert, retain or delete, and attributes")]
    [InlineData("""[{"insert":"a","attributes":null}]""", "op 0: attributes must be an object")]
    [InlineData("""[{"insert":"a","attributes":{"font":{"size":3}}}]""", "op 0: attribute \"font\" must be a string, a number, a boolean or null (nested objects are refused)")]
    [InlineData("""[{"insert":"a","attributes":{"list":[1]}}]""", "op 0: attribute \"list\" must be a string, a number, a boolean or null (nested objects are refused)")]
    [InlineData("""[{"insert":"a","attributes":{"b":1,"b":2}}]""", "op 0: an attribute is given twice")]
    [InlineData("""[{"insert":"a","attributes":{"__proto__":true}}]""", "op 0: \"__proto__\" cannot be an attribute name")]
    [InlineData("""[{"insert":"a","attributes":{"toString":true}}]""", "op 0: \"toString\" cannot be an attribute name")]
    [InlineData("""[{"insert":"\ud83d"}]""", "op 0: an insert has a lone surrogate or is not valid UTF-8")]
    [InlineData("""[{"insert":{"image":"\udc00"}}]""", "op 0: an embed has a lone surrogate")]
    [InlineData("""[{"insert":{"a":1,"a":2}}]""", "op 0: an embed has the key \"a\" twice")]
    public void MalformedJsonIsRefusedWithAReason(string json, string reason)
    {
        var delta = Parse(json);
        Assert.Equal(reason, delta.Error);
        Assert.True(delta.IsNoop);
        Assert.Equal(reason, delta.Validate(Delta.Empty));
    }

    [Fact]
    public void AnErrorInsideAnOpStillReadsTheRestOfTheMessage()
    {
        var wrapped = JsonSerializer.Deserialize<Wrapper>("""{"op":[{"insert":{"a":[1,{"b":"\ud800"}]}},{"delete":1}],"after":7}""", JsonSerializerOptions.Web)!;
        Assert.Equal("op 0: an embed has a lone surrogate", wrapped.Op!.Error);
        Assert.Equal(7, wrapped.After);
        wrapped = JsonSerializer.Deserialize<Wrapper>("""{"op":[{"insert":"a","attributes":{"x":{"deep":[1,{"y":2}]}}},{"insert":"b"}],"after":8}""", JsonSerializerOptions.Web)!;
        Assert.StartsWith("op 0: attribute \"x\" must be", wrapped.Op!.Error);
        Assert.Equal(8, wrapped.After);
    }

    private sealed record Wrapper(Delta? Op, int After);

    /// <summary><c>[{"insert":"a","attributes":{ATTRIBUTES}}]</c></summary>
    private static string InsertWith(string attributes) => "[{\"insert\":\"a\",\"attributes\":{" + attributes + "}}]";

    /// <summary><c>[{"insert":EMBED}]</c></summary>
    private static string EmbedOf(string embed) => "[{\"insert\":" + embed + "}]";

    [Fact]
    public void TheLimitsAreEnforced()
    {
        var key64 = new string('k', 64);
        Assert.Null(ErrorOf(InsertWith($"\"{key64}\":1")));
        Assert.Equal("op 0: an attribute name is longer than 64 characters", ErrorOf(InsertWith($"\"{key64}k\":1")));

        // A value's JSON: 1 022 characters and two quotes is 1 024 bytes; escapes count as written.
        Assert.Null(ErrorOf(InsertWith($"\"link\":\"{new string('x', 1022)}\"")));
        Assert.Equal("op 0: the value of attribute \"link\" is larger than 1024 bytes", ErrorOf(InsertWith($"\"link\":\"{new string('x', 1023)}\"")));
        Assert.Equal("op 0: the value of attribute \"link\" is larger than 1024 bytes", ErrorOf(InsertWith($"\"link\":\"{new string('é', 512)}\"")));
        Assert.Equal("op 0: the value of attribute \"q\" is larger than 1024 bytes", ErrorOf(InsertWith($"\"q\":\"{string.Concat(Enumerable.Repeat("\\n", 512))}\"")));

        // An embed's canonical JSON: {"i":"…"} is 8 bytes around the text.
        Assert.Null(ErrorOf(EmbedOf($"{{\"i\":\"{new string('x', 4088)}\"}}")));
        Assert.Equal("op 0: an embed is larger than 4096 bytes of JSON", ErrorOf(EmbedOf($"{{\"i\":\"{new string('x', 4089)}\"}}")));
        // Whitespace on the wire does not count.
        Assert.Null(ErrorOf(EmbedOf($"{{ \"i\" :  \"{new string('x', 4088)}\"  }}")));
        Assert.Equal("op 0: an embed is nested deeper than 16", ErrorOf(EmbedOf(string.Concat(Enumerable.Repeat("{\"a\":", 17)) + "1" + new string('}', 17))));
        Assert.Null(ErrorOf(EmbedOf(string.Concat(Enumerable.Repeat("{\"a\":", 16)) + "1" + new string('}', 16))));

        // At most 32 keys: checked by Validate, since composing can join two maps of 32.
        var keys32 = string.Join(',', Enumerable.Range(0, 32).Select(i => $"\"k{i}\":true"));
        var doc = Delta.Document("abc");
        Assert.Null(Valid(InsertWith(keys32)).Validate(doc));
        Assert.Equal("op 0 has more than 32 attributes", Valid(InsertWith(keys32 + ",\"k32\":1")).Validate(doc));
    }

    [Fact]
    public void MessagePackHasTheSameLimitsAndReasons()
    {
        Assert.Equal("op 0: attribute \"font\" must be a string, a number, a boolean or nil (nested maps are refused)", FromMessagePack((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteMapHeader(2);
            w.Write("insert");
            w.Write("a");
            w.Write("attributes");
            w.WriteMapHeader(1);
            w.Write("font");
            w.WriteMapHeader(0);
        }).Error);
        Assert.Equal("op 0: an embed is larger than 4096 bytes of JSON", FromMessagePack((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteMapHeader(1);
            w.Write("insert");
            w.WriteMapHeader(1);
            w.Write("i");
            w.Write(new string('x', 4089));
        }).Error);
        Assert.Equal("op 1: a retain of an object (an embed's change) is not supported", FromMessagePack((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(2);
            w.WriteMapHeader(1);
            w.Write("insert");
            w.Write("a");
            w.WriteMapHeader(1);
            w.Write("retain");
            w.WriteMapHeader(1);
            w.Write("image");
            w.Write("x");
        }).Error);
        Assert.Equal("op 0: an insert is not valid UTF-8", FromMessagePack((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteMapHeader(1);
            w.Write("insert");
            w.WriteString([0xED, 0xA0, 0xBD]);
        }).Error);
        Assert.Equal("a delta must be an array of ops", FromMessagePack((ref MessagePackWriter w) => w.WriteNil()).Error);
        Assert.Equal("op 0: a delete must be a positive integer", FromMessagePack((ref MessagePackWriter w) =>
        {
            w.WriteArrayHeader(1);
            w.WriteMapHeader(1);
            w.Write("delete");
            w.Write(double.NaN);
        }).Error);
    }

    [Fact]
    public void ValidateChecksLengthSurrogatePairsAndNulls()
    {
        var doc = Valid("""[{"insert":"a😀"},{"insert":{"image":"x"}},{"insert":"b","attributes":{"bold":true}}]""");
        Assert.True(doc.IsDocument);
        Assert.Equal(5, doc.Length);
        Assert.Equal("a😀b", doc.PlainText());
        Assert.Null(Valid("""[{"retain":5}]""").Validate(doc));
        Assert.Equal("the delta retains or deletes 6 positions, past the end of the document (length 5)", Valid("""[{"retain":6}]""").Validate(doc));
        Assert.Equal("the delta retains or deletes 6 positions, past the end of the document (length 5)", Valid("""[{"retain":4},{"delete":2}]""").Validate(doc));
        Assert.Equal("position 2 splits a surrogate pair", Valid("""[{"retain":2},{"insert":"x"}]""").Validate(doc));
        Assert.Equal("position 2 splits a surrogate pair", Valid("""[{"retain":1},{"delete":1}]""").Validate(doc));
        Assert.Equal("position 2 splits a surrogate pair", Valid("""[{"retain":2,"attributes":{"bold":true}}]""").Validate(doc));
        Assert.Null(Valid("""[{"retain":3,"attributes":{"bold":null}},{"delete":1},{"insert":"c"}]""").Validate(doc));
        Assert.Equal("op 1 inserts with a null attribute (null removes an attribute only on a retain)", Valid("""[{"retain":1},{"insert":"c","attributes":{"bold":null}}]""").Validate(doc));
        Assert.Equal("the base is not a document (a delta of inserts only)", Delta.Empty.Validate(Valid("""[{"delete":1}]""")));
        Assert.Throws<ArgumentException>(() => Valid("""[{"retain":1},{"delete":1}]""").Apply(doc));
    }

    [Fact]
    public void ApplyComposesOntoTheDocument()
    {
        var doc = Valid("""[{"insert":"Hello world\n"}]""");
        var change = Valid("""[{"retain":6,"attributes":{"bold":true}},{"delete":5},{"insert":"there","attributes":{"italic":true}},{"retain":1,"attributes":{"header":1}}]""");
        var after = change.Apply(doc);
        Assert.Equal("""[{"insert":"Hello ","attributes":{"bold":true}},{"insert":"there","attributes":{"italic":true}},{"insert":"\n","attributes":{"header":1}}]""", after.ToString());
        Assert.Equal(doc, change.Invert(doc).Apply(after));
        Assert.Equal(change.ChangeLength, after.Length - doc.Length);
    }

    [Fact]
    public void TheReadmeExampleHolds()
    {
        var doc = Valid("""[{"insert":"Hello world\n"}]""");
        var bold = Valid("""[{"retain":5,"attributes":{"bold":true}}]""");
        var edit = Valid("""[{"retain":6},{"insert":"dear "}]""");
        var after = bold.Transform(edit, priority: true).Apply(bold.Apply(doc));
        Assert.Equal("""[{"insert":"Hello","attributes":{"bold":true}},{"insert":" dear world\n"}]""", after.ToString());
        Assert.Equal(after, edit.Transform(bold, priority: false).Apply(edit.Apply(doc)));
    }

    [Fact]
    public void TransformFollowsQuillsPriority()
    {
        var a = Valid("""[{"insert":"A"}]""");
        var b = Valid("""[{"insert":"B"}]""");
        Assert.Equal("""[{"retain":1},{"insert":"B"}]""", a.Transform(b, priority: true).ToString());
        Assert.Equal("""[{"insert":"B"}]""", a.Transform(b, priority: false).ToString());
        var boldA = Valid("""[{"retain":2,"attributes":{"bold":true,"color":"red"}}]""");
        var boldB = Valid("""[{"retain":2,"attributes":{"bold":null,"italic":true}}]""");
        Assert.Equal("""[{"retain":2,"attributes":{"italic":true}}]""", boldA.Transform(boldB, priority: true).ToString());
        Assert.Equal(boldB, boldA.Transform(boldB, priority: false));
        Assert.Equal(2, a.TransformPosition(1));
        Assert.Equal(0, a.TransformPosition(0, priority: true));
        Assert.Equal(1, a.TransformPosition(0, priority: false));
    }

    [Fact]
    public void ARetainOfAnEmbedThatIsNotThereIsNotAnEmbed() =>
        Assert.Throws<ArgumentException>(() => Valid("""[{"retain":3}]""").Invert(Delta.Document("ab")));

    [Fact]
    public void DiffRebuildsTheOtherDocument()
    {
        var rng = new Random(7);
        string[] words = ["the ", "cat ", "sat\n", "😀", "on ", "a ", "mat", "\n\n", "é"];
        AttributeMap?[] styles = [null, s_bold, s_italic, AttributeMap.Of("link", "https://x"), AttributeMap.Of("header", 1)];
        Delta Random(int n)
        {
            var builder = new Delta.Builder();
            for (var i = 0; i < n; i++)
            {
                if (rng.Next(10) == 0)
                {
                    builder.Insert(DeltaEmbed.Parse($$"""{"image":"{{rng.Next(3)}}.png"}"""), styles[rng.Next(styles.Length)]);
                }
                else
                {
                    builder.Insert(words[rng.Next(words.Length)], styles[rng.Next(styles.Length)]);
                }
            }
            return builder.Build();
        }
        for (var i = 0; i < 300; i++)
        {
            var a = Random(rng.Next(200));
            var b = rng.Next(2) == 0 ? Random(rng.Next(200)) : a.Compose(Random(rng.Next(5)));
            var diff = a.Diff(b);
            Assert.True(diff.Validate(a) is null, $"{a} -> {b}: {diff} is invalid: {diff.Validate(a)}");
            Assert.True(diff.Apply(a).Equals(b), $"{a} -> {b}: {diff} gives {diff.Apply(a)}");
            Assert.Equal(a, b.Diff(a).Apply(b));
        }
        Assert.True(Delta.Document("same").Diff(Delta.Document("same")).IsNoop);
        Assert.Throws<ArgumentException>(() => Delta.Document("a").Diff(Valid("""[{"delete":1}]""")));
    }

    [Fact]
    public async Task ABoundedDiffStopsEarlyAndStillRebuildsTheOtherDocument()
    {
        var rng = new Random(3);
        string Text(int n) => new(Enumerable.Range(0, n).Select(_ => (char)('a' + rng.Next(26))).ToArray());
        // Unrelated texts of 100 000 characters: about 140 s unbounded.
        var a = Delta.Document(Text(100_000));
        var b = Delta.Document(Text(100_000));
        // It takes well under a second; the bound is only far from what no budget would take.
        var bounded = await Task.Run(() => a.Diff(b, maxSteps: 1_000_000)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(b, bounded.Apply(a));

        // Within the budget, exactly the unbounded (quill's) diff.
        for (var i = 0; i < 50; i++)
        {
            var x = Delta.Document(Text(rng.Next(300)));
            var at = rng.Next(x.Length + 1);
            var edit = new Delta.Builder().Retain(at).Insert("xyz").Delete(rng.Next(Math.Min(10, x.Length - at) + 1)).Build();
            var y = rng.Next(2) == 0 ? Delta.Document(Text(rng.Next(300))) : edit.Apply(x);
            Assert.Equal(x.Diff(y), x.Diff(y, maxSteps: 10_000_000));
            Assert.Equal(y, x.Diff(y, maxSteps: rng.Next(100)).Apply(x));
        }
    }

    [Fact]
    public void ComposeIsAssociativeAndInvertUndoes()
    {
        var doc = Valid("""[{"insert":"ab😀"},{"insert":{"image":"x"},"attributes":{"width":"2"}},{"insert":"cd\n","attributes":{"bold":true}}]""");
        var a = Valid("""[{"retain":1},{"insert":"X","attributes":{"italic":true}},{"delete":3},{"retain":2,"attributes":{"bold":null,"color":"red"}}]""");
        var afterA = a.Apply(doc);
        var b = Valid("""[{"delete":1},{"retain":2,"attributes":{"italic":null}},{"insert":{"image":"y"}}]""");
        var afterB = b.Apply(afterA);
        var c = Valid("""[{"retain":3},{"insert":"Z"},{"delete":1}]""");
        Assert.Equal(a.Compose(b).Compose(c), a.Compose(b.Compose(c)));
        Assert.Equal(c.Apply(afterB), a.Compose(b).Compose(c).Apply(doc));
        Assert.Equal(doc, a.Invert(doc).Apply(afterA));
        Assert.Equal(afterA, b.Invert(afterA).Apply(afterB));
        Assert.Equal(doc, a.Compose(b).Invert(doc).Apply(afterB));
    }
}
