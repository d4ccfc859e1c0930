using System.Text;
using Collab.Ot;

namespace CollabBench;

/// <summary>The documents the benchmarks run on: a small one (a note) and a 10 MB one (a large log or book).</summary>
public static class Documents
{
    public const string Small = "1KB";
    public const string Large = "10MB";

    public static int LengthOf(string size) => size switch
    {
        Small => 1024,
        Large => 10 * 1024 * 1024,
        _ => throw new ArgumentOutOfRangeException(nameof(size)),
    };

    /// <summary>Deterministic ASCII text: words and line breaks.</summary>
    public static string Text(int length)
    {
        string[] words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit"];
        var random = new Random(42);
        var builder = new StringBuilder(length + 16);
        while (builder.Length < length)
        {
            builder.Append(words[random.Next(words.Length)]).Append(random.Next(12) == 0 ? '\n' : ' ');
        }
        builder.Length = length;
        return builder.ToString();
    }

    /// <summary>A rope built the way the server gets one: from a stored snapshot string.</summary>
    public static Rope Rope(int length) => Collab.Ot.Rope.FromString(Text(length));

    /// <summary>A keystroke: <paramref name="text"/> inserted at <paramref name="position"/>.</summary>
    public static TextOperation Typing(int position, string text) => TextOperation.Insert(position, text);
}
