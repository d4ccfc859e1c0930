using System.Text.Json;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Errors;

namespace CollabServer.Documents.Types;

/// <summary>
/// Rich text: content a document <see cref="Delta"/> (inserts only), ops Quill's deltas with the
/// semantics of quill-delta 5.1 (PROTOCOL §1). Stored ops and snapshots are the deltas' JSON.
/// </summary>
internal sealed class RichTextType : DocumentType
{
    public override string Name => "rich-text";

    public override DocContent Empty { get; } = new RichContent(Delta.Empty);

    public override DocOp ParseOp(string json)
    {
        var delta = JsonSerializer.Deserialize<Delta>(json) ?? throw new InvalidDataException("a stored delta is null");
        return delta.Error is null ? new RichOp(delta) : throw new InvalidDataException($"a stored delta is malformed: {delta.Error}");
    }

    public override DocContent ParseSnapshot(string snapshot)
    {
        var delta = snapshot.Length == 0 ? Delta.Empty : JsonSerializer.Deserialize<Delta>(snapshot) ?? Delta.Empty;
        return delta.Error is null && delta.IsDocument ? new RichContent(delta) : throw new InvalidDataException($"a rich-text snapshot is not a document: {delta.Error ?? "it retains or deletes"}");
    }

    public override DocOp FromSubmit(SubmitRequest request) => request switch
    {
        { Delta: { } delta } => new RichOp(delta),
        { Op.IsNoop: true } => new RichOp(Delta.Empty), // [] reads as the empty text op: it changes nothing here either
        { Op: not null } => throw CollabError.InvalidOp("the document is rich-text: its op is a delta (an array of objects)"),
        _ => throw CollabError.InvalidOp("op is required"),
    };

    /// <summary>
    /// Quill's diff within a budget of compared characters (a few tens of milliseconds on the
    /// actor's loop): past it the rest is replaced whole, which still makes <paramref name="to"/>
    /// exactly; an unbounded diff of two unrelated 100 000-character documents takes minutes.
    /// </summary>
    public override DocOp Diff(DocContent from, DocContent to) => new RichOp(((RichContent)from).Value.Diff(((RichContent)to).Value, MaxDiffSteps));

    /// <summary>The diff's budget: about 60 ms here.</summary>
    private const long MaxDiffSteps = 4_000_000;

    /// <summary>A delta of inserts as content; <c>invalid_op</c> for one that is not a document or that a member's op could not insert (limits, lone surrogates).</summary>
    public static DocContent FromDelta(Delta delta)
    {
        if (!delta.IsDocument)
        {
            throw CollabError.InvalidOp(delta.Error ?? "a rich-text document is a delta of inserts only");
        }
        return delta.Validate(Delta.Empty) is { } problem ? throw CollabError.InvalidOp(problem) : new RichContent(delta);
    }
}

/// <summary>A <see cref="Delta"/> as a <see cref="DocOp"/>.</summary>
internal sealed class RichOp(Delta delta) : DocOp
{
    private string? _json;

    public Delta Value { get; } = delta;

    public override DocumentType Type => DocumentType.RichText;

    public override string? Error => Value.Error;

    public override int BaseLength => Value.BaseLength;

    public override int LengthDelta => Value.ChangeLength;

    public override int Count => Value.Count;

    public override bool IsNoop => Value.IsNoop;

    public override long Size => OpSize.OfJson(Json);

    public override string Json => _json ??= Value.ToString();

    /// <summary>The op sequenced now goes first at a tie, and its attribute values win (quill's transform without priority for the op applied before it).</summary>
    public override DocOp Transform(DocOp applied, bool winsTies) =>
        new RichOp(((RichOp)applied).Value.Transform(Value, priority: !winsTies));

    public override int TransformPosition(int position) => Value.TransformPosition(position);

    public override string? Validate(DocContent content) => Value.Validate(((RichContent)content).Value);

    public override DocContent Apply(DocContent content) => new RichContent(((RichContent)content).Value.Compose(Value));

    public override void WriteTo(OpMessage message) => message.Delta = Value;
}

/// <summary>A rich-text document's contents: a delta of inserts, its plain text and JSON made once.</summary>
internal sealed class RichContent(Delta delta) : DocContent
{
    private string? _text;
    private Rope? _snapshot;

    public Delta Value { get; } = delta;

    public override DocumentType Type => DocumentType.RichText;

    public override int Length => Value.Length;

    public override Rope Snapshot => _snapshot ??= Rope.FromString(Value.ToString());

    public override string PlainText() => _text ??= Value.PlainText();

    public override void WriteTo(JoinResult result)
    {
        result.Type = Type.Name;
        result.Delta = Value;
    }
}
