using System.Buffers;
using System.Globalization;
using System.Text;
using MessagePack;

namespace CollabServer.Tests.Robustness;

/// <summary>
/// A value tree that can be written in either hub protocol, including what real serializers
/// refuse to write: lone surrogates, invalid UTF-8, integers no 64-bit type holds, any nesting.
/// </summary>
public abstract record FuzzValue
{
    public sealed record Nil : FuzzValue;
    public sealed record Bool(bool Value) : FuzzValue;
    public sealed record Int(long Value) : FuzzValue;
    public sealed record UInt(ulong Value) : FuzzValue;
    public sealed record Float(double Value) : FuzzValue;
    /// <summary>A JSON number literal beyond every integer type (MessagePack writes it as ulong.MaxValue).</summary>
    public sealed record BigNum(string Digits) : FuzzValue;
    /// <summary>A string of UTF-16 code units; lone surrogates go as JSON escapes, or as WTF-8 bytes (invalid UTF-8) in MessagePack.</summary>
    public sealed record Str(string Value) : FuzzValue;
    /// <summary>A string whose bytes are written as they are (usually invalid UTF-8).</summary>
    public sealed record RawStr(byte[] Bytes) : FuzzValue;
    public sealed record Bin(byte[] Bytes) : FuzzValue;
    public sealed record Arr(List<FuzzValue> Items) : FuzzValue;
    public sealed record Map(List<KeyValuePair<FuzzValue, FuzzValue>> Entries) : FuzzValue;

    public static FuzzValue S(string s) => new Str(s);
    public static FuzzValue I(long n) => new Int(n);
    public static FuzzValue A(params FuzzValue[] items) => new Arr([.. items]);

    public static FuzzValue M(params (string Key, FuzzValue Value)[] entries) =>
        new Map([.. entries.Select(e => new KeyValuePair<FuzzValue, FuzzValue>(new Str(e.Key), e.Value))]);

    // ---------------- JSON ----------------

    public byte[] ToJson()
    {
        var buffer = new List<byte>();
        WriteJson(buffer, this);
        return [.. buffer];
    }

    private static void WriteJson(List<byte> o, FuzzValue v)
    {
        // Iterative over arrays/maps nested in arrays would be nicer, but depth is bounded by the generator (≤ 3 000).
        switch (v)
        {
            case Nil:
                Ascii(o, "null");
                break;
            case Bool b:
                Ascii(o, b.Value ? "true" : "false");
                break;
            case Int i:
                Ascii(o, i.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case UInt u:
                Ascii(o, u.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case Float f:
                Ascii(o, double.IsFinite(f.Value) ? f.Value.ToString("R", CultureInfo.InvariantCulture) : "1e400");
                break;
            case BigNum n:
                Ascii(o, n.Digits);
                break;
            case Str s:
                o.Add((byte)'"');
                foreach (var c in s.Value)
                {
                    if (c is '"' or '\\' || c < 0x20 || char.IsSurrogate(c))
                    {
                        Ascii(o, $"\\u{(int)c:x4}");
                    }
                    else
                    {
                        o.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                    }
                }
                o.Add((byte)'"');
                break;
            case RawStr r:
                o.Add((byte)'"');
                o.AddRange(r.Bytes);
                o.Add((byte)'"');
                break;
            case Bin bin:
                WriteJson(o, new Str(Convert.ToBase64String(bin.Bytes)));
                break;
            case Arr a:
                o.Add((byte)'[');
                for (var k = 0; k < a.Items.Count; k++)
                {
                    if (k > 0)
                    {
                        o.Add((byte)',');
                    }
                    WriteJson(o, a.Items[k]);
                }
                o.Add((byte)']');
                break;
            case Map m:
                o.Add((byte)'{');
                for (var k = 0; k < m.Entries.Count; k++)
                {
                    if (k > 0)
                    {
                        o.Add((byte)',');
                    }
                    var key = m.Entries[k].Key;
                    WriteJson(o, key is Str or RawStr ? key : new Str(Encoding.UTF8.GetString(key.ToJson())));
                    o.Add((byte)':');
                    WriteJson(o, m.Entries[k].Value);
                }
                o.Add((byte)'}');
                break;
        }
    }

    private static void Ascii(List<byte> o, string s)
    {
        foreach (var c in s)
        {
            o.Add((byte)c);
        }
    }

    // ---------------- MessagePack ----------------

    public byte[] ToMessagePack()
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        WriteMessagePack(ref writer, this);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteMessagePack(ref MessagePackWriter w, FuzzValue v)
    {
        switch (v)
        {
            case Nil:
                w.WriteNil();
                break;
            case Bool b:
                w.Write(b.Value);
                break;
            case Int i:
                w.Write(i.Value);
                break;
            case UInt u:
                w.Write(u.Value);
                break;
            case Float f:
                w.Write(f.Value);
                break;
            case BigNum:
                w.Write(ulong.MaxValue);
                break;
            case Str s:
                var bytes = Wtf8(s.Value);
                w.WriteStringHeader(bytes.Length);
                w.WriteRaw(bytes);
                break;
            case RawStr r:
                w.WriteStringHeader(r.Bytes.Length);
                w.WriteRaw(r.Bytes);
                break;
            case Bin bin:
                w.Write(bin.Bytes);
                break;
            case Arr a:
                w.WriteArrayHeader(a.Items.Count);
                foreach (var item in a.Items)
                {
                    WriteMessagePack(ref w, item);
                }
                break;
            case Map m:
                w.WriteMapHeader(m.Entries.Count);
                foreach (var (key, value) in m.Entries)
                {
                    WriteMessagePack(ref w, key);
                    WriteMessagePack(ref w, value);
                }
                break;
        }
    }

    /// <summary>UTF-8, except that a lone surrogate becomes its 3-byte WTF-8 form (invalid UTF-8).</summary>
    private static byte[] Wtf8(string s)
    {
        var o = new List<byte>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            int c = s[i];
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                o.AddRange(Encoding.UTF8.GetBytes(s.Substring(i, 2)));
                i++;
            }
            else if (c < 0x80)
            {
                o.Add((byte)c);
            }
            else if (c < 0x800)
            {
                o.Add((byte)(0xC0 | (c >> 6)));
                o.Add((byte)(0x80 | (c & 0x3F)));
            }
            else
            {
                o.Add((byte)(0xE0 | (c >> 12)));
                o.Add((byte)(0x80 | ((c >> 6) & 0x3F)));
                o.Add((byte)(0x80 | (c & 0x3F)));
            }
        }
        return [.. o];
    }

    /// <summary>A SignalR binary frame: the VarInt length prefix, then the payload.</summary>
    public static byte[] LengthPrefixed(byte[] payload) => [.. VarInt((ulong)payload.Length), .. payload];

    public static byte[] VarInt(ulong n)
    {
        var o = new List<byte>();
        do
        {
            var b = (byte)(n & 0x7F);
            n >>= 7;
            if (n != 0)
            {
                b |= 0x80;
            }
            o.Add(b);
        }
        while (n != 0);
        return [.. o];
    }
}
