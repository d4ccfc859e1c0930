using System.Globalization;
using System.Text;

namespace Collab.Ot;

/// <summary>
/// JSON text exactly as JavaScript's <c>JSON.stringify</c> writes it, for the canonical form of
/// embeds and for the size limits of <see cref="Delta"/>: a value's size is the same whether it
/// came as JSON or as MessagePack, and the same as a JavaScript client measures.
/// </summary>
internal static class JsJson
{
    /// <summary>Appends <paramref name="s"/> as a JSON string: only <c>"</c>, <c>\</c> and control characters are escaped.</summary>
    public static void AppendString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (var ch in s)
        {
            switch (ch)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\b':
                    sb.Append("\\b");
                    break;
                case '\f':
                    sb.Append("\\f");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (ch < ' ')
                    {
                        sb.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(ch);
                    }
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>UTF-8 bytes of <paramref name="s"/> as a JSON string (see <see cref="AppendString"/>).</summary>
    public static int StringSize(string s)
    {
        var size = 2;
        for (var i = 0; i < s.Length; i++)
        {
            var ch = s[i];
            if (char.IsHighSurrogate(ch) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                size += 4;
                i++;
                continue;
            }
            size += ch switch
            {
                '"' or '\\' or '\b' or '\f' or '\n' or '\r' or '\t' => 2,
                < ' ' => 6,
                < (char)0x80 => 1,
                < (char)0x800 => 2,
                _ => 3,
            };
        }
        return size;
    }

    /// <summary>
    /// A finite number as JavaScript's <c>Number.prototype.toString</c> writes it: the shortest
    /// digits that read back as the same double, plain between 1e-7 and 1e21, else
    /// <c>d.ddde+N</c>; <c>-0</c> is <c>0</c>.
    /// </summary>
    public static string Number(double value)
    {
        if (value == 0)
        {
            return "0";
        }
        // "E16" is not shortest; "R" is, in one of two shapes: plain or d.dddE+NN.
        var r = value.ToString("R", CultureInfo.InvariantCulture);
        var negative = r[0] == '-';
        if (negative)
        {
            r = r[1..];
        }
        var e = r.IndexOf('E');
        var exponent = 0;
        var mantissa = r;
        if (e >= 0)
        {
            exponent = int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            mantissa = r[..e];
        }
        var dot = mantissa.IndexOf('.');
        var digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        var intDigits = dot < 0 ? mantissa.Length : dot;
        // value = 0.digits × 10^n, with digits free of leading and trailing zeros.
        var lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
        }
        digits = digits[lead..].TrimEnd('0');
        var n = intDigits - lead + exponent;
        var k = digits.Length;
        var sb = new StringBuilder();
        if (negative)
        {
            sb.Append('-');
        }
        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            sb.Append(digits[0]);
            if (k > 1)
            {
                sb.Append('.').Append(digits, 1, k - 1);
            }
            sb.Append('e').Append(n - 1 >= 0 ? "+" : "-").Append(Math.Abs(n - 1).ToString(CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
