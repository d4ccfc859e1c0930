using System.Text.Json.Serialization;
using Collab.Ot;
using MessagePack;

namespace Collab.Messages;

// The payloads of PROTOCOL §3–4. MessagePack keys are the camelCase names, as maps, so a
// JavaScript client's { docId } binds; the JSON protocol is camelCase already.

/// <summary>A member's name and color.</summary>
[MessagePackObject]
public sealed class UserInfo
{
    [Key("name")] public string? Name { get; set; }
    [Key("color")] public string? Color { get; set; }
}

/// <summary>One selection range; anchor and head are positions in the document.</summary>
[MessagePackObject]
public sealed class SelectionRange
{
    [Key("anchor")] public int Anchor { get; set; }
    [Key("head")] public int Head { get; set; }
}

/// <summary>Argument of <c>Join</c>.</summary>
[MessagePackObject]
public sealed class JoinRequest
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("clientId")] public string ClientId { get; set; } = "";
    [Key("sinceVersion")] public int? SinceVersion { get; set; }
    [Key("user")] public UserInfo? User { get; set; }
    /// <summary>The type a document that does not exist yet is made as (<c>text</c> when absent); a join naming another type than an existing document's is refused (PROTOCOL §3).</summary>
    [Key("type")] public string? Type { get; set; }
}

/// <summary>Result of <c>Join</c>: the whole text, or the ops since <c>sinceVersion</c>, or a redirect.</summary>
[MessagePackObject]
public sealed class JoinResult
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("version")] public int Version { get; set; }
    [Key("text")] public string? Text { get; set; }
    [Key("ops")] public List<OpMessage>? Ops { get; set; }
    [Key("readOnly")] public bool ReadOnly { get; set; }
    [Key("redirect")] public string? Redirect { get; set; }
    [Key("presence")] public List<PresenceMessage> Presence { get; set; } = [];
    /// <summary>Set when the document did not exist and its id was renamed away: the id its text went to (PROTOCOL §3).</summary>
    [Key("movedTo")] public string? MovedTo { get; set; }
    /// <summary>The document's type: <c>text</c> or <c>rich-text</c> (older servers send none: text).</summary>
    [Key("type")] public string? Type { get; set; }
    /// <summary>A rich-text document's contents (instead of <see cref="Text"/>): a delta of inserts.</summary>
    [Key("delta")] public Delta? Delta { get; set; }
}

/// <summary>Argument of <c>Submit</c>.</summary>
[MessagePackObject]
public sealed class SubmitRequest
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("baseVersion")] public int BaseVersion { get; set; }

    /// <summary>The op as the wire has it: a text op or a delta, by the document's type.</summary>
    [Key("op")][JsonPropertyName("op")] public WireOp? Payload { get; set; }

    /// <summary>A text document's op (null for a delta).</summary>
    [IgnoreMember][JsonIgnore] public TextOperation? Op { get => Payload?.Text; set => Payload = WireOp.Of(value); }

    /// <summary>A rich-text document's op (null for a text op).</summary>
    [IgnoreMember][JsonIgnore] public Delta? Delta { get => Payload?.Delta; set => Payload = WireOp.Of(value); }

    [Key("opId")] public long OpId { get; set; }
}

/// <summary>Result of <c>Submit</c>: the document's version right after the op.</summary>
[MessagePackObject]
public sealed class SubmitResult
{
    [Key("version")] public int Version { get; set; }
}

/// <summary>Argument of <c>SetPresence</c>.</summary>
[MessagePackObject]
public sealed class PresenceRequest
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("version")] public int Version { get; set; }
    [Key("selection")] public List<SelectionRange>? Selection { get; set; }
    [Key("user")] public UserInfo? User { get; set; }
}

/// <summary>A member's cursor and selection; <c>selection: null</c> means the member left.</summary>
[MessagePackObject]
public sealed class PresenceMessage
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("clientId")] public string ClientId { get; set; } = "";
    [Key("user")] public UserInfo? User { get; set; }
    [Key("version")] public int Version { get; set; }
    [Key("selection")] public List<SelectionRange>? Selection { get; set; }
}

/// <summary>A committed op, transformed to apply on <c>version - 1</c>.</summary>
[MessagePackObject]
public sealed class OpMessage
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("version")] public int Version { get; set; }

    /// <summary>The op as the wire has it: a text op or a delta, by the document's type.</summary>
    [Key("op")][JsonPropertyName("op")] public WireOp Payload { get; set; } = new(TextOperation.Empty);

    /// <summary>A text document's op (the empty op for a delta).</summary>
    [IgnoreMember][JsonIgnore] public TextOperation Op { get => Payload.Text ?? TextOperation.Empty; set => Payload = new(value); }

    /// <summary>A rich-text document's op (null for a text op).</summary>
    [IgnoreMember][JsonIgnore] public Delta? Delta { get => Payload.Delta; set => Payload = value is null ? new(TextOperation.Empty) : new(value); }

    [Key("clientId")] public string ClientId { get; set; } = "";
    [Key("opId")] public long OpId { get; set; }
    [Key("createdAt")] public DateTimeOffset? CreatedAt { get; set; }
}

/// <summary>Tells a member to join the document again.</summary>
[MessagePackObject]
public sealed class ResetMessage
{
    [Key("docId")] public string DocId { get; set; } = "";
    [Key("reason")] public string Reason { get; set; } = "";

    /// <summary>With reason <c>renamed</c>: the document's new id (PROTOCOL §4); null otherwise.</summary>
    [Key("movedTo")] public string? MovedTo { get; set; }
}

/// <summary>Names of the hub's methods and messages.</summary>
public static class HubNames
{
    public const string Path = "/hubs/collab";
    public const string Join = "Join";
    public const string Submit = "Submit";
    public const string Leave = "Leave";
    public const string SetPresence = "SetPresence";
    public const string Op = "Op";
    public const string Presence = "Presence";
    public const string Reset = "Reset";
}
