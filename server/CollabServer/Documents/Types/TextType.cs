using System.Text.Json;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Errors;

namespace CollabServer.Documents.Types;

/// <summary>Plain text: content a <see cref="Rope"/>, ops <see cref="TextOperation"/> (PROTOCOL §1).</summary>
internal sealed class TextType : DocumentType
{
    public override string Name => "text";

    public override DocContent Empty { get; } = new TextContent(Rope.Empty);

    public override DocOp ParseOp(string json)
    {
        var op = JsonSerializer.Deserialize<TextOperation>(json)!;
        return op.Error is null ? new TextOp(op) : throw new InvalidDataException($"a stored text op is malformed: {op.Error}");
    }

    public override DocContent ParseSnapshot(string snapshot) => new TextContent(Rope.FromString(snapshot));

    /// <summary>Text as content; <c>invalid_op</c> for one with a lone surrogate, which no client could hold.</summary>
    public static DocContent FromText(string text) =>
        TextOperation.IsWellFormed(text) ? new TextContent(Rope.FromString(text)) : throw CollabError.InvalidOp("the text contains a lone surrogate");

    public override DocOp FromSubmit(SubmitRequest request) =>
        request.Op is { } op ? new TextOp(op) : throw CollabError.InvalidOp("op is required");

    public override DocOp Diff(DocContent from, DocContent to) => new TextOp(TextOperation.Diff(from.PlainText(), to.PlainText()));
}

/// <summary>A <see cref="TextOperation"/> as a <see cref="DocOp"/>.</summary>
internal sealed class TextOp(TextOperation op) : DocOp
{
    private string? _json;

    public TextOperation Value { get; } = op;

    public override DocumentType Type => DocumentType.Text;

    public override string? Error => Value.Error;

    public override int BaseLength => Value.BaseLength;

    public override int LengthDelta => Value.LengthDelta;

    public override int Count => Value.Count;

    public override bool IsNoop => Value.IsNoop;

    public override long Size => OpSize.Of(Value);

    public override string Json => _json ??= Value.ToString();

    public override DocOp Transform(DocOp applied, bool winsTies) =>
        new TextOp(TextOperation.Transform(Value, ((TextOp)applied).Value, winsTies));

    public override int TransformPosition(int position) => Value.TransformPosition(position);

    public override string? Validate(DocContent content) => Value.Validate(((TextContent)content).Text);

    public override DocContent Apply(DocContent content) => new TextContent(Value.Apply(((TextContent)content).Text));

    public override void WriteTo(OpMessage message) => message.Op = Value;
}

/// <summary>Plain text as a <see cref="DocContent"/>: its string is made once, however many joins and reads share it.</summary>
internal sealed class TextContent(Rope text) : DocContent
{
    private string? _string;

    public Rope Text { get; } = text;

    public override DocumentType Type => DocumentType.Text;

    public override int Length => Text.Length;

    public override Rope Snapshot => Text;

    public override string PlainText() => _string ??= Text.ToString();

    public override void WriteTo(JoinResult result) => result.Text = PlainText();
}
