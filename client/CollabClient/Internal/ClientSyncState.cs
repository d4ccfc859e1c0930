namespace Collab.Client.Internal;

/// <summary>
/// The three states of the client side of the OT protocol, as in ot.js (<c>client.js</c>) and
/// <c>client/ts/sync.ts</c> (its <c>kind</c>), with the same names. At most one op is in flight;
/// edits made meanwhile are composed into one buffer. The transitions are <see cref="SyncState"/>'s.
/// </summary>
/// <remarks>
/// <code>
///                   local edit a: send a
///   Synchronized ───────────────────────────▶ AwaitingConfirm(a)
///        ▲                                      │        ▲
///        │ ack of a                 local edit b│        │ ack of a: send b
///        └──────────────────────────────────────┤        │
///                                               ▼        │
///                                    AwaitingWithBuffer(a, b) ◀─┐
///                                               │               │ local edit c:
///                                               └───────────────┘ b := compose(b, c)
///
///   A remote op s, in any state, rewrites the pending ops and is applied as s'':
///
///              /\                   a' = transform(a, s, aWinsTies: true)
///           a /  \ s                s' = transform(s, a, aWinsTies: false)
///            /    \
///            \    /                 b' = transform(b, s', aWinsTies: true)
///          s' \  / a'               s''= transform(s', b, aWinsTies: false)
///              \/
///              /\
///           b /  \ s'
///             \  /
///          s'' \/ b'
/// </code>
/// Our own pending ops win ties: the server transforms an incoming op over the ops sequenced
/// before it with the incoming op winning, and our pending op reaches the server after s.
/// </remarks>
internal enum ClientSyncState
{
    /// <summary>Nothing in flight: the local text is the server's text at <c>Version</c>.</summary>
    Synchronized,

    /// <summary>One op sent, not yet acknowledged.</summary>
    AwaitingConfirm,

    /// <summary>One op sent, and later local edits composed into a buffer waiting for its ack.</summary>
    AwaitingWithBuffer,
}
