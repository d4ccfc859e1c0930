namespace Collab.Ot;

/// <summary>
/// One op of a <see cref="Delta"/>, as quill-delta has them: an insert of text or of an embed, a
/// retain of a count of positions, or a delete. Inserts and retains may carry
/// <see cref="Attributes"/>; on a retain a null value removes that attribute.
/// </summary>
public readonly struct DeltaOp : IEquatable<DeltaOp>
{
    private DeltaOp(DeltaOpKind kind, int count, string? text, DeltaEmbed? embed, AttributeMap? attributes)
    {
        Kind = kind;
        Count = count;
        Text = text;
        Embed = embed;
        Attributes = attributes;
    }

    public DeltaOpKind Kind { get; }

    /// <summary>Positions retained or deleted; 0 for an insert.</summary>
    public int Count { get; }

    /// <summary>The inserted text, or null.</summary>
    public string? Text { get; }

    /// <summary>The inserted embed, or null.</summary>
    public DeltaEmbed? Embed { get; }

    /// <summary>The attributes of an insert or a retain, or null when it has none (never an empty map).</summary>
    public AttributeMap? Attributes { get; }

    public bool IsInsert => Kind == DeltaOpKind.Insert;
    public bool IsRetain => Kind == DeltaOpKind.Retain;
    public bool IsDelete => Kind == DeltaOpKind.Delete;

    /// <summary>Positions this op covers: UTF-16 code units of text, 1 for an embed, else <see cref="Count"/> (quill's <c>Op.length</c>).</summary>
    public int Length => Kind == DeltaOpKind.Insert ? Text?.Length ?? 1 : Count;

    /// <summary>Inserts non-empty <paramref name="text"/>.</summary>
    public static DeltaOp Insert(string text, AttributeMap? attributes = null) =>
        !string.IsNullOrEmpty(text) ? new(DeltaOpKind.Insert, 0, text, null, Empty(attributes)) : throw new ArgumentException("An insert needs text.", nameof(text));

    /// <summary>Inserts an embed, one position long.</summary>
    public static DeltaOp Insert(DeltaEmbed embed, AttributeMap? attributes = null) =>
        new(DeltaOpKind.Insert, 0, null, embed ?? throw new ArgumentNullException(nameof(embed)), Empty(attributes));

    /// <summary>Keeps <paramref name="n"/> positions, applying <paramref name="attributes"/> to them.</summary>
    public static DeltaOp Retain(int n, AttributeMap? attributes = null) =>
        n > 0 ? new(DeltaOpKind.Retain, n, null, null, Empty(attributes)) : throw new ArgumentOutOfRangeException(nameof(n));

    /// <summary>
    /// The op a decoder read the fields of (either wire format): exactly one of insert (text or
    /// embed), retain and delete, and no attributes on a delete; else <paramref name="error"/> says why.
    /// </summary>
    internal static DeltaOp FromFields(int kinds, string? text, DeltaEmbed? embed, long retain, long delete, bool hasAttributes, AttributeMap? attributes, out string? error)
    {
        error = kinds != 1 ? "an op must have exactly one of insert, retain and delete"
            : delete > 0 && hasAttributes ? "a delete has no attributes"
            : null;
        return error is not null ? default
            : text is not null ? Insert(text, attributes)
            : embed is not null ? Insert(embed, attributes)
            : retain > 0 ? Retain((int)retain, attributes)
            : Delete((int)delete);
    }

    /// <summary>Deletes <paramref name="n"/> positions.</summary>
    public static DeltaOp Delete(int n) => n > 0 ? new(DeltaOpKind.Delete, n, null, null, null) : throw new ArgumentOutOfRangeException(nameof(n));

    private static AttributeMap? Empty(AttributeMap? attributes) => attributes is { Count: > 0 } ? attributes : null;

    /// <summary>The same op with other attributes (for an insert or a retain).</summary>
    public DeltaOp WithAttributes(AttributeMap? attributes) => new(Kind, Count, Text, Embed, Kind == DeltaOpKind.Delete ? null : Empty(attributes));

    internal DeltaOp WithText(string text) => new(Kind, Count, text, Embed, Attributes);

    /// <summary>Whether both are inserts of the same text or of equal embeds (quill's <c>isEqual</c> of two inserts).</summary>
    internal static bool SameInsert(DeltaOp a, DeltaOp b) =>
        a.Text is not null ? string.Equals(a.Text, b.Text, StringComparison.Ordinal) : a.Embed is not null && a.Embed.Equals(b.Embed);

    public bool Equals(DeltaOp other) =>
        Kind == other.Kind && Count == other.Count && string.Equals(Text, other.Text, StringComparison.Ordinal)
        && Equals(Embed, other.Embed) && AttributeMap.AreEqual(Attributes, other.Attributes);

    public override bool Equals(object? obj) => obj is DeltaOp other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Kind, Count, Text, Embed, Attributes);

    public static bool operator ==(DeltaOp left, DeltaOp right) => left.Equals(right);

    public static bool operator !=(DeltaOp left, DeltaOp right) => !left.Equals(right);

    /// <summary>The op in quill's JSON form.</summary>
    public override string ToString() => DeltaJsonConverter.OpToJson(this);
}

/// <summary>What a <see cref="DeltaOp"/> does.</summary>
public enum DeltaOpKind
{
    Insert = 1,
    Retain,
    Delete,
}
