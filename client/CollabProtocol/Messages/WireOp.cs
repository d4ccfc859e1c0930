using System.Text.Json;
using System.Text.Json.Serialization;
using Collab.Ot;
using MessagePack;
using MessagePack.Formatters;

namespace Collab.Messages;

/// <summary>
/// The <c>op</c> of a <c>Submit</c> or an <c>Op</c> message: a text document's
/// <see cref="TextOperation"/> (an array of numbers and strings) or a rich-text document's
/// <see cref="Ot.Delta"/> (an array of objects), told apart by the shape of the array on the wire
/// (PROTOCOL §1). An empty array reads as the empty text op, which changes nothing in a document of
/// either type.
/// </summary>
[JsonConverter(typeof(WireOpJsonConverter))]
[MessagePackFormatter(typeof(WireOpFormatter))]
public sealed class WireOp
{
    public WireOp(TextOperation text) => Text = text;

    public WireOp(Delta delta) => Delta = delta;

    /// <summary>The op of a text document, or null.</summary>
    public TextOperation? Text { get; }

    /// <summary>The op of a rich-text document, or null.</summary>
    public Delta? Delta { get; }

    public override string ToString() => Delta?.ToString() ?? Text!.ToString();

    internal static WireOp? Of(TextOperation? text) => text is null ? null : new(text);

    internal static WireOp? Of(Delta? delta) => delta is null ? null : new(delta);
}

/// <summary>Reads a <see cref="WireOp"/> by peeking at its first element; each type's own converter reads the rest.</summary>
public sealed class WireOpJsonConverter : JsonConverter<WireOp>
{
    private static readonly TextOperationJsonConverter s_text = new();
    private static readonly DeltaJsonConverter s_delta = new();

    public override WireOp Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var peek = reader;
        if (peek.TokenType == JsonTokenType.StartArray && peek.Read() && peek.TokenType == JsonTokenType.StartObject)
        {
            return new WireOp(s_delta.Read(ref reader, typeof(Delta), options));
        }
        return new WireOp(s_text.Read(ref reader, typeof(TextOperation), options));
    }

    public override void Write(Utf8JsonWriter writer, WireOp value, JsonSerializerOptions options)
    {
        if (value.Delta is { } delta)
        {
            s_delta.Write(writer, delta, options);
        }
        else
        {
            s_text.Write(writer, value.Text!, options);
        }
    }
}

/// <summary>The MessagePack form of <see cref="WireOpJsonConverter"/>: an array whose first element is a map is a delta.</summary>
public sealed class WireOpFormatter : IMessagePackFormatter<WireOp?>
{
    private static readonly TextOperationFormatter s_text = new();
    private static readonly DeltaFormatter s_delta = new();

    public void Serialize(ref MessagePackWriter writer, WireOp? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
        }
        else if (value.Delta is { } delta)
        {
            s_delta.Serialize(ref writer, delta, options);
        }
        else
        {
            s_text.Serialize(ref writer, value.Text, options);
        }
    }

    public WireOp? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.NextMessagePackType == MessagePackType.Array)
        {
            var peek = reader.CreatePeekReader();
            if (peek.ReadArrayHeader() > 0 && peek.NextMessagePackType == MessagePackType.Map)
            {
                return WireOp.Of(s_delta.Deserialize(ref reader, options));
            }
        }
        return WireOp.Of(s_text.Deserialize(ref reader, options));
    }
}
