using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Collab.Ot;

/// <summary>
/// Reads and writes a <see cref="Delta"/> as quill's JSON:
/// <c>[{"insert":"a","attributes":{"bold":true}},{"insert":{"image":"…"}},{"retain":3},{"delete":2}]</c>.
/// Anything else becomes <see cref="Delta.Malformed"/> rather than an exception, so a bad delta
/// gets the protocol's <c>invalid_op</c> instead of a binding failure.
/// </summary>
public sealed class DeltaJsonConverter : JsonConverter<Delta>
{
    // For ToString, to be read: JavaScriptEncoder.Default would escape every non-ASCII character.
    private static readonly JsonWriterOptions s_compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public override Delta Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return Delta.Malformed("a delta must be an array of ops");
        }
        var builder = new Delta.Builder();
        string? error = null;
        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (error is not null)
            {
                reader.Skip();
                continue;
            }
            var op = ReadOp(ref reader, out error);
            if (error is null)
            {
                builder.Push(op);
            }
            else
            {
                error = $"op {index}: {error}";
            }
            index++;
        }
        return error is null ? builder.Build() : Delta.Malformed(error);
    }

    // Reads one op object (the reader at its first token, left at its last); on an error the op is default.
    private static DeltaOp ReadOp(ref Utf8JsonReader reader, out string? error)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            error = "an op must be an object";
            return default;
        }
        var start = reader;
        error = null;
        string? text = null;
        DeltaEmbed? embed = null;
        long retain = 0, delete = 0;
        var kinds = 0;
        AttributeMap? attributes = null;
        var hasAttributes = false;
        while (error is null && reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = reader.ValueTextEquals("insert"u8) ? 1 : reader.ValueTextEquals("retain"u8) ? 2
                : reader.ValueTextEquals("delete"u8) ? 3 : reader.ValueTextEquals("attributes"u8) ? 4 : 0;
            reader.Read();
            switch (key)
            {
                case 1:
                    kinds++;
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        text = GetString(ref reader);
                        error = text is null ? "an insert has a lone surrogate or is not valid UTF-8"
                            : text.Length == 0 ? "an insert must be a non-empty string or an embed object" : null;
                    }
                    else
                    {
                        error = DeltaEmbed.TryRead(ref reader, out embed);
                    }
                    break;
                case 2:
                    kinds++;
                    error = ReadCount(ref reader, "retain", out retain);
                    break;
                case 3:
                    kinds++;
                    error = ReadCount(ref reader, "delete", out delete);
                    break;
                case 4:
                    hasAttributes = true;
                    error = ReadAttributes(ref reader, out attributes);
                    break;
                default:
                    reader.Skip();
                    error = "an op has only insert, retain or delete, and attributes";
                    break;
            }
        }
        if (error is not null)
        {
            reader = start;
            reader.Skip();
            return default;
        }
        return DeltaOp.FromFields(kinds, text, embed, retain, delete, hasAttributes, attributes, out error);
    }

    private static string? ReadCount(ref Utf8JsonReader reader, string name, out long count)
    {
        count = 0;
        if (reader.TokenType == JsonTokenType.StartObject && name == "retain")
        {
            reader.Skip();
            return "a retain of an object (an embed's change) is not supported";
        }
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out var n) || n != Math.Floor(n) || n < 1)
        {
            reader.Skip();
            return $"a {name} must be a positive integer";
        }
        if (n > int.MaxValue)
        {
            return $"a {name} is out of range";
        }
        count = (long)n;
        return null;
    }

    private static string? ReadAttributes(ref Utf8JsonReader reader, out AttributeMap? attributes)
    {
        attributes = null;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return "attributes must be an object";
        }
        var entries = new List<KeyValuePair<string, AttributeValue>>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var key = GetString(ref reader);
            reader.Read();
            if (key is null)
            {
                return "an attribute name has a lone surrogate";
            }
            AttributeValue value;
            switch (reader.TokenType)
            {
                case JsonTokenType.String:
                    var text = GetString(ref reader);
                    if (text is null)
                    {
                        return "an attribute has a lone surrogate";
                    }
                    value = text;
                    break;
                case JsonTokenType.Number:
                    if (!reader.TryGetDouble(out var number) || !double.IsFinite(number))
                    {
                        return $"the value of attribute \"{key}\" is out of range";
                    }
                    value = number;
                    break;
                case JsonTokenType.True:
                    value = true;
                    break;
                case JsonTokenType.False:
                    value = false;
                    break;
                case JsonTokenType.Null:
                    value = AttributeValue.Null;
                    break;
                default:
                    return $"attribute \"{key}\" must be a string, a number, a boolean or null (nested objects are refused)";
            }
            entries.Add(new(key, value));
        }
        return TryCreate(entries, out attributes);
    }

    internal static string? TryCreate(List<KeyValuePair<string, AttributeValue>> entries, out AttributeMap? attributes)
    {
        try
        {
            attributes = AttributeMap.Create(entries);
        }
        catch (ArgumentException)
        {
            attributes = null;
            return "an attribute is given twice";
        }
        return attributes?.LimitError();
    }

    private static string? GetString(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString();
        }
        catch (InvalidOperationException)
        {
            // System.Text.Json refuses escaped lone surrogates such as "\ud83d" and invalid UTF-8.
            return null;
        }
    }

    public override void Write(Utf8JsonWriter writer, Delta value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var op in value.Ops)
        {
            WriteOp(writer, op);
        }
        writer.WriteEndArray();
    }

    private static void WriteOp(Utf8JsonWriter writer, DeltaOp op)
    {
        writer.WriteStartObject();
        switch (op.Kind)
        {
            case DeltaOpKind.Insert when op.Text is not null:
                writer.WriteString("insert"u8, op.Text);
                break;
            case DeltaOpKind.Insert:
                writer.WritePropertyName("insert"u8);
                writer.WriteRawValue(op.Embed!.Json, skipInputValidation: true);
                break;
            case DeltaOpKind.Retain:
                writer.WriteNumber("retain"u8, op.Count);
                break;
            default:
                writer.WriteNumber("delete"u8, op.Count);
                break;
        }
        if (op.Attributes is { } attributes)
        {
            writer.WritePropertyName("attributes"u8);
            writer.WriteStartObject();
            foreach (var (key, value) in attributes)
            {
                writer.WritePropertyName(key);
                switch (value.Kind)
                {
                    case AttributeValueKind.Null:
                        writer.WriteNullValue();
                        break;
                    case AttributeValueKind.Boolean:
                        writer.WriteBooleanValue(value.Boolean);
                        break;
                    case AttributeValueKind.Number:
                        writer.WriteRawValue(JsJson.Number(value.Number), skipInputValidation: true);
                        break;
                    default:
                        writer.WriteStringValue(value.String);
                        break;
                }
            }
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
    }

    internal static string ToJson(Delta delta)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, s_compact))
        {
            new DeltaJsonConverter().Write(writer, delta, JsonSerializerOptions.Default);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    internal static string OpToJson(DeltaOp op)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, s_compact))
        {
            WriteOp(writer, op);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
