using Collab.Messages;
using MessagePack;
using MessagePack.Formatters;

namespace Collab.Ot;

/// <summary>
/// Reads and writes a <see cref="Delta"/> as a MessagePack array of maps with quill's keys
/// (<c>insert</c>, <c>retain</c>, <c>delete</c>, <c>attributes</c>); an embed is a map. Numbers
/// are read as doubles from any integer or float, and written as integers when JavaScript holds
/// them exactly, else as float64. Anything else becomes <see cref="Delta.Malformed"/> (see
/// <see cref="DeltaJsonConverter"/>).
/// </summary>
public sealed class DeltaFormatter : IMessagePackFormatter<Delta?>
{
    public void Serialize(ref MessagePackWriter writer, Delta? value, MessagePackSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNil();
            return;
        }
        writer.WriteArrayHeader(value.Count);
        foreach (var op in value.Ops)
        {
            writer.WriteMapHeader(op.Attributes is null ? 1 : 2);
            switch (op.Kind)
            {
                case DeltaOpKind.Insert when op.Text is not null:
                    writer.Write("insert");
                    writer.Write(op.Text);
                    break;
                case DeltaOpKind.Insert:
                    writer.Write("insert");
                    op.Embed!.WriteTo(ref writer);
                    break;
                case DeltaOpKind.Retain:
                    writer.Write("retain");
                    writer.Write(op.Count);
                    break;
                default:
                    writer.Write("delete");
                    writer.Write(op.Count);
                    break;
            }
            if (op.Attributes is { } attributes)
            {
                writer.Write("attributes");
                writer.WriteMapHeader(attributes.Count);
                foreach (var (key, attribute) in attributes)
                {
                    writer.Write(key);
                    switch (attribute.Kind)
                    {
                        case AttributeValueKind.Null:
                            writer.WriteNil();
                            break;
                        case AttributeValueKind.Boolean:
                            writer.Write(attribute.Boolean);
                            break;
                        case AttributeValueKind.Number:
                            DeltaEmbed.WriteNumber(ref writer, attribute.Number);
                            break;
                        default:
                            writer.Write(attribute.String);
                            break;
                    }
                }
            }
        }
    }

    public Delta? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.NextMessagePackType != MessagePackType.Array)
        {
            reader.Skip();
            return Delta.Malformed("a delta must be an array of ops");
        }
        var count = reader.ReadArrayHeader();
        var builder = new Delta.Builder();
        string? error = null;
        for (var i = 0; i < count; i++)
        {
            if (error is not null)
            {
                reader.Skip();
                continue;
            }
            var start = reader;
            var op = ReadOp(ref reader, out error);
            if (error is null)
            {
                builder.Push(op);
            }
            else
            {
                // Reading stopped inside the op: skip all of it from its start.
                reader = start;
                reader.Skip();
                error = $"op {i}: {error}";
            }
        }
        return error is null ? builder.Build() : Delta.Malformed(error);
    }

    // Reads one op map; on an error it stops where it is and the op is default.
    private static DeltaOp ReadOp(ref MessagePackReader reader, out string? error)
    {
        if (reader.NextMessagePackType != MessagePackType.Map)
        {
            error = "an op must be a map";
            return default;
        }
        var entries = reader.ReadMapHeader();
        error = null;
        string? text = null;
        DeltaEmbed? embed = null;
        long retain = 0, delete = 0;
        var kinds = 0;
        AttributeMap? attributes = null;
        var hasAttributes = false;
        for (var e = 0; e < entries; e++)
        {
            if (reader.NextMessagePackType != MessagePackType.String || !StrictUtf8.TryReadString(ref reader, out var key))
            {
                error = "an op's keys must be strings";
                return default;
            }
            switch (key)
            {
                case "insert":
                    kinds++;
                    if (reader.NextMessagePackType == MessagePackType.String)
                    {
                        if (!StrictUtf8.TryReadString(ref reader, out text))
                        {
                            error = "an insert is not valid UTF-8";
                        }
                        else if (text!.Length == 0)
                        {
                            error = "an insert must be a non-empty string or an embed map";
                        }
                    }
                    else
                    {
                        error = DeltaEmbed.TryRead(ref reader, out embed);
                    }
                    break;
                case "retain":
                    kinds++;
                    error = reader.NextMessagePackType == MessagePackType.Map
                        ? "a retain of an object (an embed's change) is not supported"
                        : ReadCount(ref reader, "retain", out retain);
                    break;
                case "delete":
                    kinds++;
                    error = ReadCount(ref reader, "delete", out delete);
                    break;
                case "attributes":
                    hasAttributes = true;
                    error = ReadAttributes(ref reader, out attributes);
                    break;
                default:
                    error = "an op has only insert, retain or delete, and attributes";
                    break;
            }
            if (error is not null)
            {
                return default;
            }
        }
        return DeltaOp.FromFields(kinds, text, embed, retain, delete, hasAttributes, attributes, out error);
    }

    private static string? ReadCount(ref MessagePackReader reader, string name, out long count)
    {
        count = 0;
        if (reader.NextMessagePackType is not (MessagePackType.Integer or MessagePackType.Float)
            || !DeltaEmbed.TryReadNumber(ref reader, out var n) || n != Math.Floor(n) || n < 1)
        {
            return $"a {name} must be a positive integer";
        }
        if (n > int.MaxValue)
        {
            return $"a {name} is out of range";
        }
        count = (long)n;
        return null;
    }

    private static string? ReadAttributes(ref MessagePackReader reader, out AttributeMap? attributes)
    {
        attributes = null;
        if (reader.NextMessagePackType != MessagePackType.Map)
        {
            return "attributes must be a map";
        }
        var count = reader.ReadMapHeader();
        var entries = new List<KeyValuePair<string, AttributeValue>>(Math.Min(count, AttributeMap.MaxKeys));
        for (var i = 0; i < count; i++)
        {
            if (reader.NextMessagePackType != MessagePackType.String || !StrictUtf8.TryReadString(ref reader, out var key))
            {
                return "an attribute name must be a string of valid UTF-8";
            }
            AttributeValue value;
            switch (reader.NextMessagePackType)
            {
                case MessagePackType.String:
                    if (!StrictUtf8.TryReadString(ref reader, out var text))
                    {
                        return "an attribute is not valid UTF-8";
                    }
                    value = text!;
                    break;
                case MessagePackType.Integer:
                case MessagePackType.Float:
                    if (!DeltaEmbed.TryReadNumber(ref reader, out var number))
                    {
                        return $"the value of attribute \"{key}\" is out of range";
                    }
                    value = number;
                    break;
                case MessagePackType.Boolean:
                    value = reader.ReadBoolean();
                    break;
                case MessagePackType.Nil:
                    reader.ReadNil();
                    value = AttributeValue.Null;
                    break;
                default:
                    return $"attribute \"{key}\" must be a string, a number, a boolean or nil (nested maps are refused)";
            }
            entries.Add(new(key!, value));
        }
        return DeltaJsonConverter.TryCreate(entries, out attributes);
    }
}
