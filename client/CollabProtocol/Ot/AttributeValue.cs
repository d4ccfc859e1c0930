using System.Text;

namespace Collab.Ot;

/// <summary>
/// The value of one rich-text attribute: null, a boolean, a number or a string, as in a JSON
/// object. Numbers are doubles, as in JavaScript: <c>1</c> and <c>1.0</c> are the same value, and
/// so are <c>0</c> and <c>-0</c>. Two values are equal as quill-delta's <c>isEqual</c> finds them.
/// </summary>
public readonly struct AttributeValue : IEquatable<AttributeValue>
{
    private readonly double _number;
    private readonly string? _text;

    private AttributeValue(AttributeValueKind kind, double number, string? text)
    {
        Kind = kind;
        _number = number;
        _text = text;
    }

    /// <summary>The JSON null: on a retain it removes the attribute.</summary>
    public static AttributeValue Null => default;

    public static AttributeValue From(bool value) => new(AttributeValueKind.Boolean, value ? 1 : 0, null);

    /// <summary>A number; it must be finite, as JSON has no other.</summary>
    public static AttributeValue From(double value) =>
        double.IsFinite(value) ? new(AttributeValueKind.Number, value == 0 ? 0 : value, null) : throw new ArgumentOutOfRangeException(nameof(value), "An attribute's number must be finite.");

    public static AttributeValue From(string value) => new(AttributeValueKind.String, 0, value ?? throw new ArgumentNullException(nameof(value)));

    public static implicit operator AttributeValue(bool value) => From(value);
    public static implicit operator AttributeValue(double value) => From(value);
    public static implicit operator AttributeValue(string value) => From(value);

    public AttributeValueKind Kind { get; }

    public bool IsNull => Kind == AttributeValueKind.Null;

    /// <summary>The boolean; only for <see cref="AttributeValueKind.Boolean"/>.</summary>
    public bool Boolean => Kind == AttributeValueKind.Boolean ? _number != 0 : throw new InvalidOperationException("Not a boolean.");

    /// <summary>The number; only for <see cref="AttributeValueKind.Number"/>.</summary>
    public double Number => Kind == AttributeValueKind.Number ? _number : throw new InvalidOperationException("Not a number.");

    /// <summary>The string; only for <see cref="AttributeValueKind.String"/>.</summary>
    public string String => Kind == AttributeValueKind.String ? _text! : throw new InvalidOperationException("Not a string.");

    /// <summary>The value as JSON, written as JavaScript's <c>JSON.stringify</c> writes it.</summary>
    public string ToJson() => Kind switch
    {
        AttributeValueKind.Null => "null",
        AttributeValueKind.Boolean => _number != 0 ? "true" : "false",
        AttributeValueKind.Number => JsJson.Number(_number),
        _ => Quote(_text!),
    };

    /// <summary>UTF-8 bytes of <see cref="ToJson"/>.</summary>
    public int JsonSize => Kind == AttributeValueKind.String ? JsJson.StringSize(_text!) : ToJson().Length;

    private static string Quote(string s)
    {
        var sb = new StringBuilder(s.Length + 2);
        JsJson.AppendString(sb, s);
        return sb.ToString();
    }

    public bool Equals(AttributeValue other) =>
        Kind == other.Kind && _number == other._number && string.Equals(_text, other._text, StringComparison.Ordinal);

    public override bool Equals(object? obj) => obj is AttributeValue other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Kind, _number, _text is null ? 0 : string.GetHashCode(_text, StringComparison.Ordinal));

    public static bool operator ==(AttributeValue left, AttributeValue right) => left.Equals(right);

    public static bool operator !=(AttributeValue left, AttributeValue right) => !left.Equals(right);

    public override string ToString() => ToJson();
}

/// <summary>What an <see cref="AttributeValue"/> holds.</summary>
public enum AttributeValueKind
{
    Null,
    Boolean,
    Number,
    String,
}
