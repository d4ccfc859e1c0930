using System.Text.Json;
using System.Text.Json.Serialization;

namespace Collab.Ot;

/// <summary>
/// Reads and writes an operation as a JSON array of integers and strings. Anything else becomes
/// <see cref="TextOperation.Malformed"/> rather than an exception, so a bad op gets the
/// protocol's <c>invalid_op</c> instead of a binding failure.
/// </summary>
public sealed class TextOperationJsonConverter : JsonConverter<TextOperation>
{
    public override TextOperation Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return TextOperation.Malformed("an operation must be an array of components");
        }
        var builder = new TextOperation.Builder();
        string? error = null;
        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (error is not null)
            {
                reader.Skip();
                continue;
            }
            switch (reader.TokenType)
            {
                case JsonTokenType.Number when reader.TryGetInt32(out var n):
                    AddCount(builder, n);
                    break;
                case JsonTokenType.String:
                    var text = ReadString(ref reader);
                    if (text is null)
                    {
                        error = $"component {index} has a lone surrogate or is not valid UTF-8";
                    }
                    else if (text.Length == 0)
                    {
                        error = $"component {index} is an empty string";
                    }
                    else
                    {
                        builder.Insert(text);
                    }
                    break;
                default:
                    reader.Skip();
                    error = $"component {index} is neither an integer nor a non-empty string";
                    break;
            }
            index++;
        }
        return error is null ? builder.Build() : TextOperation.Malformed(error);
    }

    private static string? ReadString(ref Utf8JsonReader reader)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            // System.Text.Json refuses escaped lone surrogates such as "\ud83d" and invalid UTF-8.
            return null;
        }
    }

    internal static void AddCount(TextOperation.Builder builder, int n)
    {
        if (n > 0)
        {
            builder.Retain(n);
        }
        else if (n < 0)
        {
            builder.Delete(n == int.MinValue ? int.MaxValue : -n);
        }
    }

    public override void Write(Utf8JsonWriter writer, TextOperation value, JsonSerializerOptions options)
    {
        writer.WriteStartArray();
        foreach (var c in value.Components)
        {
            if (c.IsInsert)
            {
                writer.WriteStringValue(c.Text);
            }
            else
            {
                writer.WriteNumberValue(c.Count);
            }
        }
        writer.WriteEndArray();
    }
}
