namespace Collab.Ot;

/// <summary>
/// One component of a <see cref="TextOperation"/>: a retain (<see cref="Count"/> &gt; 0), a delete
/// (<see cref="Count"/> &lt; 0) or an insert (<see cref="Text"/> set), as on the wire.
/// </summary>
public readonly record struct OpComponent
{
    private OpComponent(int count, string? text)
    {
        Count = count;
        Text = text;
    }

    /// <summary>Positive for a retain, negative for a delete, 0 for an insert.</summary>
    public int Count { get; }

    /// <summary>The inserted text, or null for a retain or a delete.</summary>
    public string? Text { get; }

    public bool IsInsert => Text is not null;
    public bool IsRetain => Text is null && Count > 0;
    public bool IsDelete => Text is null && Count < 0;

    /// <summary>Code units retained, deleted or inserted.</summary>
    public int Length => Text?.Length ?? Math.Abs(Count);

    public static OpComponent Retain(int n) => n > 0 ? new(n, null) : throw new ArgumentOutOfRangeException(nameof(n));
    public static OpComponent Delete(int n) => n > 0 ? new(-n, null) : throw new ArgumentOutOfRangeException(nameof(n));
    public static OpComponent Insert(string text) => !string.IsNullOrEmpty(text) ? new(0, text) : throw new ArgumentException("An insert needs text.", nameof(text));
}
