using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>
/// What <see cref="SyncEngine"/> and <see cref="SyncState{TOp}"/> need of a document type: the
/// C# form of <c>DocType</c> in <c>client/ts/doctype.ts</c>. A document's type is fixed when it is
/// created: <see cref="TextType"/> (PROTOCOL §1's ops over a <see cref="Rope"/>) or
/// <see cref="RichTextType"/> (Quill deltas). Documents (<typeparamref name="TDoc"/>) and ops
/// (<typeparamref name="TOp"/>) are immutable. Positions are in the type's length space: UTF-16
/// code units, a rich-text embed 1.
/// </summary>
internal interface IDocType<TDoc, TOp> : IOpType<TOp>
    where TDoc : class
    where TOp : class
{
    /// <summary>The type's name as <c>Join</c>'s <c>type</c> carries it; a join result without one is <c>text</c>.</summary>
    string Name { get; }

    /// <summary>The document of version 0.</summary>
    TDoc Empty { get; }

    int Length(TDoc document);

    /// <summary>Why <paramref name="op"/> cannot apply to <paramref name="document"/>, as the server checks it; null if it can.</summary>
    string? Validate(TDoc document, TOp op);

    /// <summary><paramref name="op"/> applied to <paramref name="document"/>.</summary>
    TDoc Apply(TDoc document, TOp op);

    /// <summary>The op that undoes <paramref name="op"/> on <paramref name="before"/>.</summary>
    TOp Invert(TOp op, TDoc before);

    /// <summary>The shortest document <paramref name="op"/> applies to.</summary>
    int BaseLength(TOp op);

    /// <summary>A position before <paramref name="op"/> mapped after it; at an insert it stays before unless <paramref name="stickToEnd"/>.</summary>
    int TransformPosition(TOp op, int position, bool stickToEnd = false);

    /// <summary>A position after <paramref name="op"/> mapped back before it; inside an insert it maps to the insert's place.</summary>
    int TransformPositionBack(TOp op, int position);

    bool DocEquals(TDoc a, TDoc b);

    /// <summary>One op from <paramref name="from"/> to <paramref name="to"/>.</summary>
    TOp Diff(TDoc from, TDoc to);

    /// <summary>
    /// <c>Restore</c> adds to <paramref name="server"/> what only <paramref name="local"/> has,
    /// deleting nothing; <c>Local</c> adds to <paramref name="local"/> what only the server has; both
    /// give one document, the local content first where both differ.
    /// </summary>
    (TOp Restore, TOp Local) Merge(TDoc server, TDoc local);

    /// <summary>The whole document a join result holds, or null when it answered with ops.</summary>
    TDoc? Joined(JoinResult result);

    /// <summary>The op an <see cref="OpMessage"/> carries, or why it is not an op of this type.</summary>
    (TOp? Op, string? Error) Read(OpMessage message);

    /// <summary>A submission of <paramref name="op"/>.</summary>
    SubmitRequest Submission(string docId, int baseVersion, TOp op, long opId);

    /// <summary>The change command of <paramref name="op"/>, of the type the shell of this document type reads.</summary>
    ApplyRemote<TOp> Changed(TOp op, ChangeOrigin origin, string? clientId);
}
