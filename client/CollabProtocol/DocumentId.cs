namespace Collab;

/// <summary>Document ids (PROTOCOL §2): 1 to 128 characters from <c>A-Z a-z 0-9 . _ -</c>, not starting with a dot.</summary>
public static class DocumentId
{
    public const int MaxLength = 128;

    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxLength || id[0] == '.')
        {
            return false;
        }
        foreach (var ch in id)
        {
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-'))
            {
                return false;
            }
        }
        return true;
    }
}
