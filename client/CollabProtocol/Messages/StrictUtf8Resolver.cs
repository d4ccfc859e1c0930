using System.Buffers;
using System.Text;
using System.Text.Unicode;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;

namespace Collab.Messages;

/// <summary>
/// The standard MessagePack resolver, except that every <see cref="string"/> is read strictly:
/// invalid UTF-8, including an encoded surrogate such as <c>ED A0 BD</c>, never becomes a string
/// with U+FFFD in it (PROTOCOL §2, §5). It reads as <see cref="StrictUtf8.Invalid"/>, a lone
/// surrogate that no well-formed UTF-8 can produce, which the server's own checks then refuse
/// with the protocol's code like any ill-formed text (<c>invalid_doc_id</c> for a document id,
/// <c>invalid_op</c> for a clientId or user). Operations are read by
/// <see cref="Ot.TextOperationFormatter"/> and rich-text deltas by <see cref="Ot.DeltaFormatter"/>,
/// which turn bad UTF-8 into <c>invalid_op</c>.
/// </summary>
public sealed class StrictUtf8Resolver : IFormatterResolver
{
    /// <summary>The resolver: strict strings, everything else from <see cref="StandardResolver"/>.</summary>
    public static readonly StrictUtf8Resolver Instance = new();

    private StrictUtf8Resolver()
    {
    }

    public IMessagePackFormatter<T>? GetFormatter<T>() =>
        typeof(T) == typeof(string)
            ? (IMessagePackFormatter<T>)(object)StrictStringFormatter.Instance
            : StandardResolver.Instance.GetFormatter<T>();
}

/// <summary>Reads a MessagePack string (or nil), invalid UTF-8 as <see cref="StrictUtf8.Invalid"/>; writes as usual.</summary>
public sealed class StrictStringFormatter : IMessagePackFormatter<string?>
{
    public static readonly StrictStringFormatter Instance = new();

    public void Serialize(ref MessagePackWriter writer, string? value, MessagePackSerializerOptions options) =>
        writer.Write(value);

    public string? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil())
        {
            return null;
        }
        return StrictUtf8.TryReadString(ref reader, out var value) ? value : StrictUtf8.Invalid;
    }
}

/// <summary>Strict UTF-8 decoding of MessagePack strings.</summary>
public static class StrictUtf8
{
    /// <summary>What a string of invalid UTF-8 reads as: a lone low surrogate, ill-formed text that every check of the protocol refuses.</summary>
    public const string Invalid = "\uDFFF";

    /// <summary>
    /// Reads a MessagePack string (the next value must be one) from its raw bytes. Returns false,
    /// having consumed it, when the bytes are not well-formed UTF-8: an invalid sequence, an
    /// overlong form, or an encoded surrogate (<c>ED A0..BF xx</c>), none of which can come from
    /// a well-formed UTF-16 string.
    /// </summary>
    public static bool TryReadString(ref MessagePackReader reader, out string? value)
    {
        var sequence = reader.ReadStringSequence();
        if (sequence is not { } bytes)
        {
            value = null;
            return true;
        }
        if (bytes.IsSingleSegment)
        {
            return TryDecode(bytes.FirstSpan, out value);
        }
        var copy = ArrayPool<byte>.Shared.Rent(checked((int)bytes.Length));
        try
        {
            bytes.CopyTo(copy);
            return TryDecode(copy.AsSpan(0, (int)bytes.Length), out value);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    private static bool TryDecode(ReadOnlySpan<byte> bytes, out string? value)
    {
        // Utf8.IsValid follows the Unicode standard: surrogates and overlong forms are invalid.
        if (!Utf8.IsValid(bytes))
        {
            value = null;
            return false;
        }
        value = Encoding.UTF8.GetString(bytes);
        return true;
    }
}
