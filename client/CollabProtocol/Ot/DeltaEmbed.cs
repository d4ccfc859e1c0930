using System.Text;
using System.Text.Json;
using Collab.Messages;
using MessagePack;

namespace Collab.Ot;

/// <summary>
/// An embed (an image, a formula…): a JSON object that a <see cref="Delta"/> inserts as one
/// position. Kept in canonical JSON (object keys in ordinal order, numbers and strings as
/// JavaScript's <c>JSON.stringify</c> writes them), so two embeds are equal exactly when
/// quill-delta's <c>isEqual</c> finds them equal: key order does not matter, <c>1</c> equals <c>1.0</c>.
/// </summary>
public sealed class DeltaEmbed : IEquatable<DeltaEmbed>
{
    /// <summary>The largest embed, in UTF-8 bytes of its canonical JSON.</summary>
    public const int MaxBytes = 4096;

    /// <summary>The deepest nesting of objects and arrays in an embed, counting the embed itself.</summary>
    public const int MaxDepth = 16;

    private DeltaEmbed(string json) => Json = json;

    /// <summary>The embed as canonical JSON, for example <c>{"image":"https://…"}</c>.</summary>
    public string Json { get; }

    /// <summary>Reads an embed from JSON text; throws <see cref="FormatException"/> saying why it is not one.</summary>
    public static DeltaEmbed Parse(string json)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(json));
        if (!reader.Read())
        {
            throw new FormatException("an embed must be a JSON object");
        }
        try
        {
            var error = TryRead(ref reader, out var embed);
            return error is null && !reader.Read() ? embed! : throw new FormatException(error ?? "an embed must be one JSON object");
        }
        catch (JsonException e)
        {
            throw new FormatException("an embed must be a JSON object: " + e.Message, e);
        }
    }

    /// <summary>Reads the JSON object at the reader's current token; returns why it is not an embed, or null.</summary>
    internal static string? TryRead(ref Utf8JsonReader reader, out DeltaEmbed? embed)
    {
        embed = null;
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            return "an insert must be a non-empty string or an embed object";
        }
        var start = reader;
        var sb = new StringBuilder();
        var error = ReadJson(ref reader, sb, 1);
        if (error is not null)
        {
            // Reading stopped inside the object: skip all of it from its start.
            reader = start;
            reader.Skip();
            return error;
        }
        return Finish(sb, out embed);
    }

    /// <summary>Reads the MessagePack map at the reader's position; returns why it is not an embed, or null.</summary>
    internal static string? TryRead(ref MessagePackReader reader, out DeltaEmbed? embed)
    {
        embed = null;
        if (reader.NextMessagePackType != MessagePackType.Map)
        {
            reader.Skip();
            return "an insert must be a non-empty string or an embed map";
        }
        var start = reader;
        var sb = new StringBuilder();
        var error = ReadMessagePack(ref reader, sb, 1);
        if (error is not null)
        {
            reader = start;
            reader.Skip();
            return error;
        }
        return Finish(sb, out embed);
    }

    private static string? Finish(StringBuilder sb, out DeltaEmbed? embed)
    {
        var json = sb.ToString();
        embed = null;
        if (Encoding.UTF8.GetByteCount(json) > MaxBytes)
        {
            return $"an embed is larger than {MaxBytes} bytes of JSON";
        }
        embed = new DeltaEmbed(json);
        return null;
    }

    // Appends the value at the reader's token as canonical JSON; on an error it stops where it is.
    private static string? ReadJson(ref Utf8JsonReader reader, StringBuilder sb, int depth)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                if (depth > MaxDepth)
                {
                    return $"an embed is nested deeper than {MaxDepth}";
                }
                var members = new List<(string Key, string Value)>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    var key = GetString(ref reader);
                    if (key is null)
                    {
                        return "an embed has a lone surrogate";
                    }
                    reader.Read();
                    var value = new StringBuilder();
                    var error = ReadJson(ref reader, value, depth + 1);
                    if (error is not null)
                    {
                        return error;
                    }
                    members.Add((key, value.ToString()));
                }
                return AppendObject(sb, members);
            case JsonTokenType.StartArray:
                if (depth > MaxDepth)
                {
                    return $"an embed is nested deeper than {MaxDepth}";
                }
                sb.Append('[');
                var first = true;
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    if (!first)
                    {
                        sb.Append(',');
                    }
                    first = false;
                    var error = ReadJson(ref reader, sb, depth + 1);
                    if (error is not null)
                    {
                        return error;
                    }
                }
                sb.Append(']');
                return null;
            case JsonTokenType.String:
                var text = GetString(ref reader);
                if (text is null)
                {
                    return "an embed has a lone surrogate";
                }
                JsJson.AppendString(sb, text);
                return null;
            case JsonTokenType.Number:
                if (!reader.TryGetDouble(out var number) || !double.IsFinite(number))
                {
                    return "an embed has a number out of range";
                }
                sb.Append(JsJson.Number(number));
                return null;
            case JsonTokenType.True:
                sb.Append("true");
                return null;
            case JsonTokenType.False:
                sb.Append("false");
                return null;
            default:
                sb.Append("null");
                return null;
        }
    }

    private static string? GetString(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static string? AppendObject(StringBuilder sb, List<(string Key, string Value)> members)
    {
        members.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));
        sb.Append('{');
        for (var i = 0; i < members.Count; i++)
        {
            if (i > 0)
            {
                if (string.Equals(members[i - 1].Key, members[i].Key, StringComparison.Ordinal))
                {
                    return $"an embed has the key \"{members[i].Key}\" twice";
                }
                sb.Append(',');
            }
            JsJson.AppendString(sb, members[i].Key);
            sb.Append(':').Append(members[i].Value);
        }
        sb.Append('}');
        return null;
    }

    // Appends the value at the reader's position as canonical JSON; on an error it stops where it is.
    private static string? ReadMessagePack(ref MessagePackReader reader, StringBuilder sb, int depth)
    {
        switch (reader.NextMessagePackType)
        {
            case MessagePackType.Map:
            {
                if (depth > MaxDepth)
                {
                    return $"an embed is nested deeper than {MaxDepth}";
                }
                var count = reader.ReadMapHeader();
                var members = new List<(string Key, string Value)>();
                for (var i = 0; i < count; i++)
                {
                    if (reader.NextMessagePackType != MessagePackType.String)
                    {
                        return "an embed's keys must be strings";
                    }
                    if (!StrictUtf8.TryReadString(ref reader, out var key))
                    {
                        return "an embed has invalid UTF-8";
                    }
                    var value = new StringBuilder();
                    var error = ReadMessagePack(ref reader, value, depth + 1);
                    if (error is not null)
                    {
                        return error;
                    }
                    members.Add((key!, value.ToString()));
                }
                return AppendObject(sb, members);
            }
            case MessagePackType.Array:
            {
                if (depth > MaxDepth)
                {
                    return $"an embed is nested deeper than {MaxDepth}";
                }
                var count = reader.ReadArrayHeader();
                sb.Append('[');
                for (var i = 0; i < count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }
                    var error = ReadMessagePack(ref reader, sb, depth + 1);
                    if (error is not null)
                    {
                        return error;
                    }
                }
                sb.Append(']');
                return null;
            }
            case MessagePackType.String:
                if (!StrictUtf8.TryReadString(ref reader, out var text))
                {
                    return "an embed has invalid UTF-8";
                }
                JsJson.AppendString(sb, text!);
                return null;
            case MessagePackType.Integer:
            case MessagePackType.Float:
                if (!TryReadNumber(ref reader, out var number))
                {
                    return "an embed has a number out of range";
                }
                sb.Append(JsJson.Number(number));
                return null;
            case MessagePackType.Boolean:
                sb.Append(reader.ReadBoolean() ? "true" : "false");
                return null;
            case MessagePackType.Nil:
                reader.ReadNil();
                sb.Append("null");
                return null;
            default:
                return "an embed may hold only maps, arrays, strings, numbers, booleans and nil";
        }
    }

    /// <summary>Reads a MessagePack integer or float (the next value must be one) as a double; false when it is not finite.</summary>
    internal static bool TryReadNumber(ref MessagePackReader reader, out double number)
    {
        if (reader.NextMessagePackType == MessagePackType.Float)
        {
            number = reader.ReadDouble();
        }
        else if (reader.NextCode == MessagePackCode.UInt64)
        {
            number = reader.ReadUInt64();
        }
        else
        {
            number = reader.ReadInt64();
        }
        return double.IsFinite(number);
    }

    /// <summary>Writes a number as MessagePack: an integer when it is one JavaScript holds exactly, else a float64.</summary>
    internal static void WriteNumber(ref MessagePackWriter writer, double number)
    {
        if (Math.Floor(number) == number && Math.Abs(number) <= 9007199254740991)
        {
            writer.Write((long)number);
        }
        else
        {
            writer.Write(number);
        }
    }

    /// <summary>Writes the embed as MessagePack: a map with the same keys and values.</summary>
    internal void WriteTo(ref MessagePackWriter writer)
    {
        var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(Json));
        reader.Read();
        WriteValue(ref reader, ref writer);
    }

    private static void WriteValue(ref Utf8JsonReader reader, ref MessagePackWriter writer)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
            case JsonTokenType.StartArray:
            {
                // Count the members first: a MessagePack header comes before them.
                var counter = reader;
                var count = 0;
                var isObject = reader.TokenType == JsonTokenType.StartObject;
                while (counter.Read() && counter.TokenType is not (JsonTokenType.EndObject or JsonTokenType.EndArray))
                {
                    if (counter.TokenType != JsonTokenType.PropertyName)
                    {
                        count++;
                        counter.Skip();
                    }
                }
                if (isObject)
                {
                    writer.WriteMapHeader(count);
                }
                else
                {
                    writer.WriteArrayHeader(count);
                }
                while (reader.Read() && reader.TokenType is not (JsonTokenType.EndObject or JsonTokenType.EndArray))
                {
                    if (reader.TokenType == JsonTokenType.PropertyName)
                    {
                        writer.Write(reader.GetString());
                        continue;
                    }
                    WriteValue(ref reader, ref writer);
                }
                break;
            }
            case JsonTokenType.String:
                writer.Write(reader.GetString());
                break;
            case JsonTokenType.Number:
                WriteNumber(ref writer, reader.GetDouble());
                break;
            case JsonTokenType.True:
                writer.Write(true);
                break;
            case JsonTokenType.False:
                writer.Write(false);
                break;
            default:
                writer.WriteNil();
                break;
        }
    }

    public bool Equals(DeltaEmbed? other) => other is not null && string.Equals(Json, other.Json, StringComparison.Ordinal);

    public override bool Equals(object? obj) => Equals(obj as DeltaEmbed);

    public override int GetHashCode() => string.GetHashCode(Json, StringComparison.Ordinal);

    public override string ToString() => Json;
}
