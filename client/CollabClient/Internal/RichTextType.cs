using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>
/// The rich-text type: documents and changes are Quill <see cref="Delta"/>s, as
/// <c>richTextType</c> in <c>doctype.ts</c> over <c>rich-text.ts</c>. Ties are quill-delta's:
/// <c>Transform(a, b, aWinsTies)</c> is <c>b.Transform(a, !aWinsTies)</c>.
/// </summary>
internal sealed class RichTextType : IDocType<Delta, Delta>
{
    public static readonly RichTextType Instance = new();

    /// <summary>The diff's budget, the server's: within it the diff is quill's, past it the rest is replaced whole (still exact).</summary>
    private const long MaxDiffSteps = 4_000_000;

    private RichTextType()
    {
    }

    public string Name => "rich-text";

    public Delta Empty => Delta.Empty;

    public Delta Noop => Delta.Empty;

    public bool IsNoop(Delta op) => op.IsNoop;

    public Delta Compose(Delta a, Delta b) => a.Compose(b);

    public Delta Transform(Delta a, Delta b, bool aWinsTies) => b.Transform(a, !aWinsTies);

    public int Length(Delta document) => document.Length;

    public string? Validate(Delta document, Delta op) => op.Validate(document);

    /// <summary>The document composed with <paramref name="op"/>; throws when the op runs past its end.</summary>
    public Delta Apply(Delta document, Delta op) =>
        op.BaseLength <= document.Length
            ? document.Compose(op)
            : throw new ArgumentOutOfRangeException(nameof(op), $"The delta's base length {op.BaseLength} exceeds the document's length {document.Length}.");

    public Delta Invert(Delta op, Delta before) => op.Invert(before);

    public int BaseLength(Delta op) => op.BaseLength;

    public int TransformPosition(Delta op, int position, bool stickToEnd = false) => op.TransformPosition(position, !stickToEnd);

    public int TransformPositionBack(Delta op, int position)
    {
        var before = 0;
        var after = 0;
        foreach (var c in op.Ops)
        {
            var n = c.Length;
            if (c.IsInsert)
            {
                if (position <= after + n)
                {
                    return before;
                }
                after += n;
            }
            else if (c.IsRetain)
            {
                if (position <= after + n)
                {
                    return before + (position - after);
                }
                before += n;
                after += n;
            }
            else
            {
                before += n;
            }
        }
        return before + (position - after);
    }

    public bool DocEquals(Delta a, Delta b) => a.Equals(b);

    public Delta Diff(Delta from, Delta to) => from.Diff(to, MaxDiffSteps);

    public (Delta Restore, Delta Local) Merge(Delta server, Delta local)
    {
        var restore = new Delta.Builder();
        var toLocal = new Delta.Builder();
        var pos = 0;
        foreach (var c in Diff(server, local).Ops)
        {
            var n = c.Length;
            if (c.IsInsert)
            {
                restore.Push(c);
                toLocal.Retain(n);
            }
            else if (c.IsRetain)
            {
                restore.Retain(n, c.Attributes);
                toLocal.Retain(n);
                pos += n;
            }
            else
            {
                restore.Retain(n);
                foreach (var part in Slice(server, pos, pos + n))
                {
                    toLocal.Push(part);
                }
                pos += n;
            }
        }
        return (restore.Build(), toLocal.Build());
    }

    /// <summary>
    /// Ops to send one after another, each inserting at most <paramref name="maxInsert"/> positions
    /// (never splitting a surrogate pair), composing to <paramref name="op"/>; as <c>split</c> in rich-text.ts.
    /// </summary>
    public IReadOnlyList<Delta> Split(Delta op, int maxInsert)
    {
        var total = 0;
        foreach (var c in op.Ops)
        {
            total += c.IsInsert ? c.Length : 0;
        }
        if (total <= maxInsert)
        {
            return [op];
        }
        var parts = new List<Delta>();
        var current = new Delta.Builder();
        var budget = maxInsert;
        // The position in the document after the parts built so far and the current one.
        var pos = 0;
        foreach (var c in op.Ops)
        {
            if (!c.IsInsert)
            {
                current.Push(c);
                pos += c.IsRetain ? c.Count : 0;
                continue;
            }
            if (c.Text is not { } text)
            {
                if (budget == 0)
                {
                    parts.Add(current.Build());
                    current = new Delta.Builder().Retain(pos);
                    budget = maxInsert;
                }
                current.Push(c);
                pos++;
                budget--;
                continue;
            }
            while (text.Length > 0)
            {
                var take = Math.Min(budget, text.Length);
                if (take < text.Length && take > 0 && char.IsHighSurrogate(text[take - 1]))
                {
                    take--;
                }
                if (take == 0 && budget == maxInsert)
                {
                    take = Math.Min(2, text.Length);
                }
                if (take > 0)
                {
                    current.Insert(text[..take], c.Attributes);
                    pos += take;
                    budget -= take;
                    text = text[take..];
                }
                if (text.Length > 0)
                {
                    parts.Add(current.Build());
                    current = new Delta.Builder().Retain(pos);
                    budget = maxInsert;
                }
            }
        }
        var last = current.Build();
        if (!last.IsNoop)
        {
            parts.Add(last);
        }
        return parts;
    }

    public Delta? Joined(JoinResult result) => result.Delta;

    public (Delta? Op, string? Error) Read(OpMessage message) => message.Payload switch
    {
        { Delta: { Error: { } error } } => (null, error),
        { Delta: { } delta } => (delta, null),
        { Text: { IsNoop: true, Error: null } } => (Delta.Empty, null),
        _ => (null, "a text operation in a rich-text document"),
    };

    public SubmitRequest Submission(string docId, int baseVersion, Delta op, long opId) =>
        new() { DocId = docId, BaseVersion = baseVersion, Delta = op, OpId = opId };

    public ApplyRemote<Delta> Changed(Delta op, ChangeOrigin origin, string? clientId) => new(op, origin, clientId);

    /// <summary>The inserts of <paramref name="document"/> from <paramref name="start"/> to <paramref name="end"/>.</summary>
    private static IEnumerable<DeltaOp> Slice(Delta document, int start, int end)
    {
        var parts = new List<DeltaOp>();
        var at = 0;
        foreach (var c in document.Ops)
        {
            var n = c.Length;
            if (at + n > start && at < end)
            {
                var from = Math.Max(start, at) - at;
                var to = Math.Min(end, at + n) - at;
                parts.Add(c.Text is { } text && (from > 0 || to < n) ? DeltaOp.Insert(text[from..to], c.Attributes) : c);
            }
            at += n;
        }
        return parts;
    }
}
