namespace Collab.Ot;

/// <summary>A text an operation is checked against (<see cref="TextOperation.Validate{TText}"/>): its UTF-16 code units.</summary>
public interface ITextView
{
    int Length { get; }

    char this[int index] { get; }
}

/// <summary>A text an operation is applied to in place (<see cref="TextOperation.ApplyTo{TText}"/>).</summary>
public interface IEditableText : ITextView
{
    void Insert(int position, string text);

    void Delete(int position, int length);
}
