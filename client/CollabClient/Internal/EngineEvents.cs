using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Internal;

// The events of SyncEngine, one record each, named as in client/ts/engine.ts (PascalCase; a name
// that is a message type of Collab.Messages too has the suffix Event). Their meaning is in the
// spec comment at the top of engine.ts.

/// <summary>Something that happened to a document: a method call, a hub message, a call's outcome or a timer.</summary>
internal abstract record EngineEvent
{
    /// <summary>The shell's clock, in milliseconds; the engine's clock never goes back.</summary>
    public double? NowMs { get; init; }
}

/// <summary>The document was opened; nothing is sent before <see cref="Connected"/>.</summary>
internal sealed record Open(string DocId, string ClientId, UserInfo? User) : EngineEvent;

/// <summary>Fresh op ids from the client's counter, in the order the engine takes them.</summary>
internal sealed record OpIds(IReadOnlyList<long> Ids) : EngineEvent;

/// <summary>A connection is up: join on it, with sinceVersion unless <paramref name="Resume"/> is false.</summary>
internal sealed record Connected(bool Resume = true) : EngineEvent;

/// <summary>The connection is gone: unanswered calls are lost, unconfirmed edits kept.</summary>
internal sealed record Disconnected : EngineEvent;

/// <summary>A Join of <paramref name="Session"/> answered (a redirect too).</summary>
internal sealed record JoinResultEvent(int Session, JoinResult Result) : EngineEvent;

/// <summary>
/// A Join failed with a protocol error code, or with none when the connection failed;
/// <paramref name="Random"/> in [0, 1) places a retry in its window.
/// </summary>
internal sealed record JoinFailed(int Session, string? Code, string Message, double Random) : EngineEvent;

/// <summary>A local edit, valid on the state's Text (the shell checks it); ignored while read-only.</summary>
internal record LocalEdit<TOp>(TOp Op) : EngineEvent;

/// <summary>A local edit of a text document.</summary>
internal sealed record LocalEdit(TextOperation Op) : LocalEdit<TextOperation>(Op);

/// <summary>An Op message.</summary>
internal sealed record ServerOp(OpMessage Message) : EngineEvent;

/// <summary>A Submit of <paramref name="Session"/> answered: the op is at <paramref name="Version"/>.</summary>
internal sealed record SubmitResultEvent(int Session, long OpId, int Version) : EngineEvent;

/// <summary>A Submit failed (as <see cref="JoinFailed"/>).</summary>
internal sealed record SubmitFailed(int Session, long OpId, string? Code, string Message, double Random) : EngineEvent;

/// <summary>This member's selection, in positions of the state's Text.</summary>
internal sealed record PresenceLocal(IReadOnlyList<SelectedRange> Selection) : EngineEvent;

/// <summary>A Presence message.</summary>
internal sealed record PresenceRemote(PresenceMessage Message) : EngineEvent;

/// <summary>This member's name or color changed.</summary>
internal sealed record UserChanged(UserInfo? User) : EngineEvent;

/// <summary>A Reset message: join again without sinceVersion (ignored while offline).</summary>
internal sealed record Reset : EngineEvent;

/// <summary>Time passed: every timer due by NowMs fires, earliest first.</summary>
internal sealed record Tick : EngineEvent;

/// <summary>The document is closed; every later event is ignored.</summary>
internal sealed record Leave : EngineEvent;
