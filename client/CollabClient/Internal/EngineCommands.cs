using System.Collections.Immutable;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Internal;

// The commands of SyncEngine, named as in client/ts/engine.ts (PascalCase). The shell carries
// them out in the order given.

/// <summary>What the shell is to do.</summary>
internal abstract record EngineCommand;

/// <summary>Invoke Join; answer with <see cref="JoinResultEvent"/> or <see cref="JoinFailed"/> naming <paramref name="Session"/>.</summary>
internal sealed record SendJoin(int Session, JoinRequest Request) : EngineCommand;

/// <summary>Invoke Submit; answer with <see cref="SubmitResultEvent"/> or <see cref="SubmitFailed"/> naming <paramref name="Session"/> and the request's op id.</summary>
internal sealed record SendSubmit(int Session, SubmitRequest Request) : EngineCommand;

/// <summary>Send SetPresence; its outcome is not reported.</summary>
internal sealed record SendPresence(PresenceRequest Request) : EngineCommand;

/// <summary>Invoke Leave; its outcome is not reported.</summary>
internal sealed record SendLeave(string DocId) : EngineCommand;

/// <summary>The state's Text changed by <paramref name="Op"/>: the document's change event.</summary>
internal record ApplyRemote<TOp>(TOp Op, ChangeOrigin Origin, string? ClientId) : EngineCommand;

/// <summary>A change of a text document's Text.</summary>
internal sealed record ApplyRemote(TextOperation Op, ChangeOrigin Origin, string? ClientId) : ApplyRemote<TextOperation>(Op, Origin, ClientId);

/// <summary>Raise a document event; which one follows from the payload's type.</summary>
internal sealed record Emit(EmitPayload Payload) : EngineCommand
{
    public EmittedEvent Event => Payload switch
    {
        PresencePayload => EmittedEvent.Presence,
        PendingPayload => EmittedEvent.Pending,
        JoinedPayload => EmittedEvent.Joined,
        _ => EmittedEvent.Error,
    };
}

/// <summary>Send a <see cref="Tick"/> at <paramref name="DueMs"/> (or later); replaces the timer of that name.</summary>
internal sealed record SetTimer(TimerName Name, double DueMs) : EngineCommand;

/// <summary>That timer is no longer wanted (a timer that fired needs none).</summary>
internal sealed record ClearTimer(TimerName Name) : EngineCommand;

/// <summary>Join the document on the node at <paramref name="Url"/>: the engine is offline already; the shell moves the document, then sends <see cref="Connected"/>.</summary>
internal sealed record Redirect(string Url) : EngineCommand;

/// <summary>The first join was refused for good: fail the pending open.</summary>
internal sealed record FailOpen(string Code, string Message) : EngineCommand;

/// <summary>Why a remote change happened.</summary>
internal enum ChangeOrigin
{
    /// <summary>An op another member made.</summary>
    Remote,

    /// <summary>The server sent its whole text after a reconnect: the local text was reconciled with it.</summary>
    Resync,

    /// <summary>Local edits the server refused (read-only, invalid) were taken back.</summary>
    Revert,
}

/// <summary>The document events <see cref="Emit"/> raises; the change event comes as <see cref="ApplyRemote"/>.</summary>
internal enum EmittedEvent
{
    Presence,
    Pending,
    Joined,
    Error,
}

/// <summary>The payload of a document event.</summary>
internal abstract record EmitPayload;

/// <summary>The members or their selections changed.</summary>
internal sealed record PresencePayload(ImmutableList<Member> Members) : EmitPayload;

/// <summary>The number of local edits not yet confirmed by the server changed.</summary>
internal sealed record PendingPayload(int PendingEdits) : EmitPayload;

/// <summary>The document was joined (again).</summary>
internal sealed record JoinedPayload(int Version, bool ReadOnly, bool Resumed) : EmitPayload;

/// <summary>The server refused something; the document has recovered as well as it could. <paramref name="Code"/> is null when the connection failed.</summary>
internal sealed record ErrorPayload(string? Code, string Message) : EmitPayload;
