using Collab.Messages;
using Collab.Ot;

namespace CollabServer.Documents.Types;

/// <summary>
/// A kind of document: what its content is and how its ops transform, validate and apply. The
/// actor, the sequencer, the commit pipeline and storage handle only <see cref="DocOp"/> and
/// <see cref="DocContent"/>, so a new type is a new subclass here and a name in <see cref="Named"/>;
/// nothing else changes. A document's type is fixed when it is created.
/// </summary>
public abstract class DocumentType
{
    /// <summary>Plain text, ops of <see cref="TextOperation"/> (PROTOCOL §1); a document's type when none was named.</summary>
    public static readonly DocumentType Text = new TextType();

    /// <summary>Rich text, ops of Quill's <see cref="Delta"/> (PROTOCOL §1).</summary>
    public static readonly DocumentType RichText = new RichTextType();

    /// <summary>The name on the wire and in storage.</summary>
    public abstract string Name { get; }

    /// <summary>The content of a document that has no op yet.</summary>
    public abstract DocContent Empty { get; }

    /// <summary>The type called <paramref name="name"/> (null or empty: <see cref="Text"/>); null for a name no type has.</summary>
    public static DocumentType? Named(string? name) => name switch
    {
        null or "" or "text" => Text,
        "rich-text" => RichText,
        _ => null,
    };

    /// <summary>
    /// The type of a stored op's JSON where the document's type is not at hand (the node log, a
    /// shipped backup): a delta is an array of objects, a text op of numbers and strings. The
    /// empty op (<c>[]</c>) reads as text; it changes nothing in a document of either type.
    /// </summary>
    public static DocumentType OfStoredOp(string json)
    {
        var rest = json.AsSpan().TrimStart();
        return rest.Length > 0 && rest[0] == '[' && rest[1..].TrimStart() is ['{', ..] ? RichText : Text;
    }

    /// <summary>An op as storage keeps it (<see cref="DocOp.Json"/>); throws <see cref="InvalidDataException"/> if it is malformed.</summary>
    public abstract DocOp ParseOp(string json);

    /// <summary>The content a snapshot holds (<see cref="DocContent.Snapshot"/>).</summary>
    public abstract DocContent ParseSnapshot(string snapshot);

    /// <summary>The op a member submitted, or the protocol's error if it is not one of this type.</summary>
    public abstract DocOp FromSubmit(SubmitRequest request);

    /// <summary>The op that makes <paramref name="from"/> into <paramref name="to"/> (a no-op when they are equal).</summary>
    public abstract DocOp Diff(DocContent from, DocContent to);

    public override string ToString() => Name;
}

/// <summary>An op of some <see cref="DocumentType"/>, as the server handles it without knowing the type.</summary>
public abstract class DocOp
{
    public abstract DocumentType Type { get; }

    /// <summary>Why the op is malformed (decoding never throws), or null.</summary>
    public abstract string? Error { get; }

    /// <summary>The length of the content the op applies to, at least (what it retains and deletes).</summary>
    public abstract int BaseLength { get; }

    /// <summary>How much longer the content is after the op.</summary>
    public abstract int LengthDelta { get; }

    /// <summary>How many components the op has: the unit of what transforming or mapping over it costs.</summary>
    public abstract int Count { get; }

    public abstract bool IsNoop { get; }

    /// <summary>What the op costs to hold and to write, in bytes, estimated from its shape (what memory and write budgets count).</summary>
    public abstract long Size { get; }

    /// <summary>The op as storage and the logs keep it: its canonical JSON, made once.</summary>
    public abstract string Json { get; }

    /// <summary>This op rewritten to apply after <paramref name="applied"/> (both made on the same content); <paramref name="winsTies"/>: this op's inserts go first at the same place.</summary>
    public abstract DocOp Transform(DocOp applied, bool winsTies);

    /// <summary>Where <paramref name="position"/> is after this op.</summary>
    public abstract int TransformPosition(int position);

    /// <summary>Why the op does not apply to <paramref name="content"/>, or null.</summary>
    public abstract string? Validate(DocContent content);

    /// <summary>The content after the op; the content is immutable, so the one before stays as it was.</summary>
    public abstract DocContent Apply(DocContent content);

    /// <summary>Puts the op on a message members are sent, in the field its type uses.</summary>
    public abstract void WriteTo(OpMessage message);

    public override string ToString() => Json;

    /// <summary>A <see cref="TextOperation"/> is an op of a <see cref="DocumentType.Text"/> document.</summary>
    public static implicit operator DocOp(TextOperation op) => new TextOp(op);
}

/// <summary>The immutable content of a document of some <see cref="DocumentType"/>.</summary>
public abstract class DocContent
{
    public abstract DocumentType Type { get; }

    /// <summary>The length positions count: UTF-16 code units (and 1 for an embed).</summary>
    public abstract int Length { get; }

    /// <summary>What a snapshot holds, as text a snapshot is cut into chunks of (<see cref="DocumentType.ParseSnapshot"/> reads it back).</summary>
    public abstract Rope Snapshot { get; }

    /// <summary>The plain text: all of it for text; the text of its string inserts for rich text.</summary>
    public abstract string PlainText();

    /// <summary>Puts the content on a join result, in the field its type uses.</summary>
    public abstract void WriteTo(JoinResult result);

    /// <summary>A <see cref="Rope"/> is the content of a <see cref="DocumentType.Text"/> document.</summary>
    public static implicit operator DocContent(Rope text) => new TextContent(text);

    public override string ToString() => PlainText();
}
