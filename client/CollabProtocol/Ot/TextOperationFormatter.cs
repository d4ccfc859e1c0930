using Collab.Messages;
using MessagePack;
using MessagePack.Formatters;

namespace Collab.Ot;

/// <summary>
/// Reads and writes an operation as a MessagePack array of integers and strings; anything else
/// becomes <see cref="TextOperation.Malformed"/> (see <see cref="TextOperationJsonConverter"/>).
/// </summary>
public sealed class TextOperationFormatter : IMessagePackFormatter<TextOperation?>
{
    public void Serialize(ref MessagePackWriter writer, TextOperation? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }
        writer.WriteArrayHeader(value.Count);
        foreach (var c in value.Components)
        {
            if (c.IsInsert)
            {
                writer.Write(c.Text);
            }
            else
            {
                writer.Write(c.Count);
            }
        }
    }

    public TextOperation? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil())
        {
            return TextOperation.Malformed("an operation must be an array of components");
        }
        if (reader.NextMessagePackType != MessagePackType.Array)
        {
            reader.Skip();
            return TextOperation.Malformed("an operation must be an array of components");
        }
        var count = reader.ReadArrayHeader();
        var builder = new TextOperation.Builder();
        string? error = null;
        for (var i = 0; i < count; i++)
        {
            if (error is not null)
            {
                reader.Skip();
                continue;
            }
            switch (reader.NextMessagePackType)
            {
                case MessagePackType.Integer:
                    var n = reader.ReadInt64();
                    if (n is > int.MaxValue or < -int.MaxValue)
                    {
                        error = $"component {i} is out of range";
                    }
                    else
                    {
                        TextOperationJsonConverter.AddCount(builder, (int)n);
                    }
                    break;
                case MessagePackType.String:
                    // Read from the raw bytes: the default decoder turns invalid UTF-8 and
                    // encoded surrogates into U+FFFD, silently changing the text.
                    if (!StrictUtf8.TryReadString(ref reader, out var text))
                    {
                        error = $"component {i} is not valid UTF-8";
                    }
                    else if (text!.Length == 0)
                    {
                        error = $"component {i} is an empty string";
                    }
                    else
                    {
                        builder.Insert(text);
                    }
                    break;
                default:
                    reader.Skip();
                    error = $"component {i} is neither an integer nor a non-empty string";
                    break;
            }
        }
        return error is null ? builder.Build() : TextOperation.Malformed(error);
    }
}
