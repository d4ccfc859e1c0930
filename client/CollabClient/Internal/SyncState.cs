namespace Collab.Client.Internal;

/// <summary>
/// The client side of OT as pure transitions, each returning the next state: the same states,
/// names and rules as <c>client/ts/sync.ts</c> (<c>applyClient</c>, <c>applyServer</c>,
/// <c>serverAck</c>, <c>rebase</c>, <c>pendingOp</c>, <c>pendingEdits</c>), so that one can be
/// read against the other. The diagram is on <see cref="ClientSyncState"/>. No I/O: the document
/// sends <see cref="Outstanding"/> and feeds back what the server says.
/// </summary>
/// <typeparam name="TOp">The document type's op (<see cref="IOpType{TOp}"/>).</typeparam>
internal sealed class SyncState<TOp>
    where TOp : class
{
    private readonly IOpType<TOp> _type;

    private SyncState(IOpType<TOp> type, ClientSyncState kind, OutstandingOp? outstanding, BufferedOp? buffer)
    {
        _type = type;
        Kind = kind;
        Outstanding = outstanding;
        Buffer = buffer;
    }

    /// <summary>Nothing pending, for ops of <paramref name="type"/>.</summary>
    public static SyncState<TOp> Synchronized(IOpType<TOp> type) => new(type, ClientSyncState.Synchronized, null, null);

    /// <summary>Which of the three states this is.</summary>
    public ClientSyncState Kind { get; }

    /// <summary>The op sent (or to send) and not yet confirmed; null when <see cref="ClientSyncState.Synchronized"/>.</summary>
    public OutstandingOp? Outstanding { get; }

    /// <summary>Local edits made while <see cref="Outstanding"/> is unconfirmed, composed into one op; only in <see cref="ClientSyncState.AwaitingWithBuffer"/>.</summary>
    public BufferedOp? Buffer { get; }

    /// <summary>An op sent to the server and not yet confirmed; <paramref name="Edits"/> counts the local edits folded into it.</summary>
    public sealed record OutstandingOp(TOp Op, long OpId, int Edits);

    /// <summary>Local edits made while an op was outstanding, composed into one op on the text after it.</summary>
    public sealed record BufferedOp(TOp Op, int Edits);

    /// <summary>A local edit: returns the next state.</summary>
    public SyncState<TOp> ApplyClient(TOp op, Func<long> newOpId) => Kind switch
    {
        ClientSyncState.Synchronized => Send(op, 1, newOpId),
        ClientSyncState.AwaitingConfirm => new(_type, ClientSyncState.AwaitingWithBuffer, Outstanding, new BufferedOp(op, 1)),
        _ => new(_type, ClientSyncState.AwaitingWithBuffer, Outstanding, new BufferedOp(_type.Compose(Buffer!.Op, op), Buffer.Edits + 1)),
    };

    /// <summary>
    /// A server op from another member, made on the server text this state is relative to:
    /// returns the next state and the op to apply to the local text. Our pending ops win ties.
    /// </summary>
    public (SyncState<TOp> State, TOp Op) ApplyServer(TOp op)
    {
        switch (Kind)
        {
            case ClientSyncState.Synchronized:
                return (this, op);
            case ClientSyncState.AwaitingConfirm:
            {
                var outstanding = _type.Transform(Outstanding!.Op, op, aWinsTies: true);
                return (new(_type, Kind, Outstanding with { Op = outstanding }, null), _type.Transform(op, Outstanding.Op, aWinsTies: false));
            }
            default:
            {
                var outstanding = _type.Transform(Outstanding!.Op, op, aWinsTies: true);
                var op1 = _type.Transform(op, Outstanding.Op, aWinsTies: false);
                var buffer = _type.Transform(Buffer!.Op, op1, aWinsTies: true);
                return (new(_type, Kind, Outstanding with { Op = outstanding }, Buffer with { Op = buffer }), _type.Transform(op1, Buffer.Op, aWinsTies: false));
            }
        }
    }

    /// <summary>The server confirmed the outstanding op: returns the next state, with the buffer, if any, now outstanding.</summary>
    /// <exception cref="InvalidOperationException">Nothing is outstanding.</exception>
    public SyncState<TOp> ServerAck(Func<long> newOpId) => Kind switch
    {
        ClientSyncState.Synchronized => throw new InvalidOperationException("There is no outstanding operation to confirm."),
        ClientSyncState.AwaitingConfirm => Synchronized(_type),
        _ => Send(Buffer!.Op, Buffer.Edits, newOpId),
    };

    /// <summary>
    /// The server's text moved on by <paramref name="serverChange"/> (a whole-text join: the
    /// difference between the text we last knew and the server's), and no outstanding op can be
    /// in it. Returns the next state, with every pending edit rebased over the change as one new
    /// op (a new op id), and the op to apply to the local text.
    /// </summary>
    public (SyncState<TOp> State, TOp Op) Rebase(TOp serverChange, Func<long> newOpId)
    {
        var pending = PendingOp;
        var op = _type.Transform(serverChange, pending, aWinsTies: false);
        var rebased = _type.Transform(pending, serverChange, aWinsTies: true);
        return (_type.IsNoop(rebased) ? Synchronized(_type) : Send(rebased, PendingEdits, newOpId), op);
    }

    /// <summary>
    /// The server's text is not one the local text was made from: the server lost edits it had
    /// acknowledged, or holds others. Nobody's text is removed: the server's text becomes the base,
    /// and the local text it lacks is inserted into it by one new op, <paramref name="restore"/> (a
    /// new op id; the pending edits are in it), the first half of the type's
    /// <see cref="IDocType{TDoc, TOp}.Merge"/>. Returns the next state (its edits: the pending ones,
    /// or one when none was pending but text is restored) and the op to apply to the local text,
    /// <paramref name="local"/>. As <c>reconcile</c> in <c>sync.ts</c>.
    /// </summary>
    public (SyncState<TOp> State, TOp Op) Reconcile(TOp restore, TOp local, Func<long> newOpId) =>
        (_type.IsNoop(restore) ? Synchronized(_type) : Send(restore, Math.Max(1, PendingEdits), newOpId), local);

    /// <summary>Everything not yet confirmed, as one op from the last known server text to the local text.</summary>
    public TOp PendingOp => Kind switch
    {
        ClientSyncState.Synchronized => _type.Noop,
        ClientSyncState.AwaitingConfirm => Outstanding!.Op,
        _ => _type.Compose(Outstanding!.Op, Buffer!.Op),
    };

    /// <summary>How many local edits are not yet confirmed.</summary>
    public int PendingEdits => (Outstanding?.Edits ?? 0) + (Buffer?.Edits ?? 0);

    /// <summary>Makes <paramref name="op"/> the outstanding op, splitting it when it is too large to send at once.</summary>
    private SyncState<TOp> Send(TOp op, int edits, Func<long> newOpId)
    {
        var parts = _type.Split(op, SyncState.MaxInsertPerOp);
        if (parts.Count == 1)
        {
            return new(_type, ClientSyncState.AwaitingConfirm, new OutstandingOp(op, newOpId(), edits), null);
        }
        var rest = parts[1];
        for (var i = 2; i < parts.Count; i++)
        {
            rest = _type.Compose(rest, parts[i]);
        }
        return new(_type, ClientSyncState.AwaitingWithBuffer, new OutstandingOp(parts[0], newOpId(), 0), new BufferedOp(rest, edits));
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ClientSyncState.Synchronized => "Synchronized",
        ClientSyncState.AwaitingConfirm => $"AwaitingConfirm(#{Outstanding!.OpId} {Outstanding.Op})",
        _ => $"AwaitingWithBuffer(#{Outstanding!.OpId} {Outstanding.Op}, {Buffer!.Op})",
    };
}

/// <summary>What <see cref="SyncState{TOp}"/> needs of a document type: its ops' algebra, as <c>OpType</c> in <c>doctype.ts</c>.</summary>
internal interface IOpType<TOp>
    where TOp : class
{
    /// <summary>The op that changes nothing.</summary>
    TOp Noop { get; }

    bool IsNoop(TOp op);

    /// <summary>One op with the effect of <paramref name="a"/> then <paramref name="b"/>.</summary>
    TOp Compose(TOp a, TOp b);

    /// <summary><paramref name="a"/> rewritten to apply after <paramref name="b"/>, both made on one document; <paramref name="a"/>'s insert goes first at a tie when <paramref name="aWinsTies"/>.</summary>
    TOp Transform(TOp a, TOp b, bool aWinsTies);

    /// <summary>Ops to send one after another, each inserting at most <paramref name="maxInsert"/>, composing to <paramref name="op"/>.</summary>
    IReadOnlyList<TOp> Split(TOp op, int maxInsert);
}

/// <summary>The limits of <see cref="SyncState{TOp}"/>, whatever the document type.</summary>
internal static class SyncState
{
    /// <summary>
    /// The most code units (rich text: positions) one submitted op inserts. Larger edits are sent
    /// as several ops, one after another, so each stays well under the hub's 1 MiB message limit
    /// even at 3 UTF-8 bytes per code unit. The same constant as <c>maxInsertPerOp</c> in <c>sync.ts</c>.
    /// </summary>
    public const int MaxInsertPerOp = 200_000;
}
