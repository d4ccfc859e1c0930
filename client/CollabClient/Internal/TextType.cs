using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>The text type: ropes of UTF-16 code units and the <see cref="TextOperation"/>s of PROTOCOL §1, as <c>textType</c> in <c>doctype.ts</c>.</summary>
internal sealed class TextType : IDocType<Rope, TextOperation>
{
    public static readonly TextType Instance = new();

    private TextType()
    {
    }

    public string Name => "text";

    public Rope Empty => Rope.Empty;

    public TextOperation Noop => TextOperation.Empty;

    public bool IsNoop(TextOperation op) => op.IsNoop;

    public TextOperation Compose(TextOperation a, TextOperation b) => TextOperation.Compose(a, b);

    public TextOperation Transform(TextOperation a, TextOperation b, bool aWinsTies) => TextOperation.Transform(a, b, aWinsTies);

    public IReadOnlyList<TextOperation> Split(TextOperation op, int maxInsert) => op.Split(maxInsert);

    public int Length(Rope document) => document.Length;

    public string? Validate(Rope document, TextOperation op) => op.Validate(document);

    public Rope Apply(Rope document, TextOperation op) => op.Apply(document);

    public TextOperation Invert(TextOperation op, Rope before) => op.Invert(before);

    public int BaseLength(TextOperation op) => op.BaseLength;

    public int TransformPosition(TextOperation op, int position, bool stickToEnd = false) => op.TransformPosition(position, stickToEnd);

    public int TransformPositionBack(TextOperation op, int position) => SyncEngine.TransformPositionBack(op, position);

    public bool DocEquals(Rope a, Rope b) => ReferenceEquals(a, b) || (a.Length == b.Length && a.ToString() == b.ToString());

    public TextOperation Diff(Rope from, Rope to) => TextOperation.Diff(from.ToString(), to.ToString());

    /// <summary>From the difference between the texts, <c>Restore</c> inserts the local text the server lacks (its deletions turned into retains), and <c>Local</c> inserts the server's text the local text lacks.</summary>
    public (TextOperation Restore, TextOperation Local) Merge(Rope server, Rope local)
    {
        var serverText = server.ToString();
        var restore = new TextOperation.Builder();
        var toLocal = new TextOperation.Builder();
        var pos = 0;
        foreach (var c in TextOperation.Diff(serverText, local.ToString()).Components)
        {
            if (c.IsInsert)
            {
                restore.Insert(c.Text!);
                toLocal.Retain(c.Text!.Length);
            }
            else if (c.IsRetain)
            {
                restore.Retain(c.Count);
                toLocal.Retain(c.Count);
                pos += c.Count;
            }
            else
            {
                restore.Retain(c.Length);
                toLocal.Insert(serverText.Substring(pos, c.Length));
                pos += c.Length;
            }
        }
        return (restore.Build(), toLocal.Build());
    }

    public Rope? Joined(JoinResult result) => result.Text is null ? null : Rope.FromString(result.Text);

    public (TextOperation? Op, string? Error) Read(OpMessage message) =>
        message.Payload.Delta is not null ? (null, "a rich-text delta in a text document")
        : message.Op.Error is { } error ? (null, error)
        : (message.Op, null);

    public SubmitRequest Submission(string docId, int baseVersion, TextOperation op, long opId) =>
        new() { DocId = docId, BaseVersion = baseVersion, Op = op, OpId = opId };

    public ApplyRemote<TextOperation> Changed(TextOperation op, ChangeOrigin origin, string? clientId) => new ApplyRemote(op, origin, clientId);
}
