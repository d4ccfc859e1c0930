using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>
/// The client side of OT as pure transitions, each returning the next state: the same states,
/// names and rules as <c>client/ts/sync.ts</c> (<c>applyClient</c>, <c>applyServer</c>,
/// <c>serverAck</c>, <c>rebase</c>, <c>pendingOp</c>, <c>pendingEdits</c>), so that one can be
/// read against the other. The diagram is on <see cref="ClientSyncState"/>. No I/O: the document
/// sends <see cref="Outstanding"/> and feeds back what the server says.
/// </summary>
internal sealed class SyncState
{
    /// <summary>
    /// The most code units one submitted op inserts. Larger edits are sent as several ops, one
    /// after another, so each stays well under the hub's 1 MiB message limit even at 3 UTF-8 bytes
    /// per code unit. The same constant as <c>maxInsertPerOp</c> in <c>sync.ts</c>.
    /// </summary>
    public const int MaxInsertPerOp = 200_000;

    /// <summary>Nothing pending.</summary>
    public static readonly SyncState Synchronized = new(ClientSyncState.Synchronized, null, null);

    private SyncState(ClientSyncState kind, OutstandingOp? outstanding, BufferedOp? buffer)
    {
        Kind = kind;
        Outstanding = outstanding;
        Buffer = buffer;
    }

    /// <summary>Which of the three states this is.</summary>
    public ClientSyncState Kind { get; }

    /// <summary>The op sent (or to send) and not yet confirmed; null when <see cref="ClientSyncState.Synchronized"/>.</summary>
    public OutstandingOp? Outstanding { get; }

    /// <summary>Local edits made while <see cref="Outstanding"/> is unconfirmed, composed into one op; only in <see cref="ClientSyncState.AwaitingWithBuffer"/>.</summary>
    public BufferedOp? Buffer { get; }

    /// <summary>An op sent to the server and not yet confirmed; <paramref name="Edits"/> counts the local edits folded into it.</summary>
    public sealed record OutstandingOp(TextOperation Op, long OpId, int Edits);

    /// <summary>Local edits made while an op was outstanding, composed into one op on the text after it.</summary>
    public sealed record BufferedOp(TextOperation Op, int Edits);

    /// <summary>A local edit: returns the next state.</summary>
    public SyncState ApplyClient(TextOperation op, Func<long> newOpId) => Kind switch
    {
        ClientSyncState.Synchronized => Send(op, 1, newOpId),
        ClientSyncState.AwaitingConfirm => new(ClientSyncState.AwaitingWithBuffer, Outstanding, new BufferedOp(op, 1)),
        _ => new(ClientSyncState.AwaitingWithBuffer, Outstanding, new BufferedOp(TextOperation.Compose(Buffer!.Op, op), Buffer.Edits + 1)),
    };

    /// <summary>
    /// A server op from another member, made on the server text this state is relative to:
    /// returns the next state and the op to apply to the local text. Our pending ops win ties.
    /// </summary>
    public (SyncState State, TextOperation Op) ApplyServer(TextOperation op)
    {
        switch (Kind)
        {
            case ClientSyncState.Synchronized:
                return (this, op);
            case ClientSyncState.AwaitingConfirm:
            {
                var outstanding = TextOperation.Transform(Outstanding!.Op, op, aWinsTies: true);
                return (new(Kind, Outstanding with { Op = outstanding }, null), TextOperation.Transform(op, Outstanding.Op, aWinsTies: false));
            }
            default:
            {
                var outstanding = TextOperation.Transform(Outstanding!.Op, op, aWinsTies: true);
                var op1 = TextOperation.Transform(op, Outstanding.Op, aWinsTies: false);
                var buffer = TextOperation.Transform(Buffer!.Op, op1, aWinsTies: true);
                return (new(Kind, Outstanding with { Op = outstanding }, Buffer with { Op = buffer }), TextOperation.Transform(op1, Buffer.Op, aWinsTies: false));
            }
        }
    }

    /// <summary>The server confirmed the outstanding op: returns the next state, with the buffer, if any, now outstanding.</summary>
    /// <exception cref="InvalidOperationException">Nothing is outstanding.</exception>
    public SyncState ServerAck(Func<long> newOpId) => Kind switch
    {
        ClientSyncState.Synchronized => throw new InvalidOperationException("There is no outstanding operation to confirm."),
        ClientSyncState.AwaitingConfirm => Synchronized,
        _ => Send(Buffer!.Op, Buffer.Edits, newOpId),
    };

    /// <summary>
    /// The server's text moved on by <paramref name="serverChange"/> (a whole-text join: the
    /// difference between the text we last knew and the server's), and no outstanding op can be
    /// in it. Returns the next state, with every pending edit rebased over the change as one new
    /// op (a new op id), and the op to apply to the local text.
    /// </summary>
    public (SyncState State, TextOperation Op) Rebase(TextOperation serverChange, Func<long> newOpId)
    {
        var pending = PendingOp;
        var op = TextOperation.Transform(serverChange, pending, aWinsTies: false);
        var rebased = TextOperation.Transform(pending, serverChange, aWinsTies: true);
        return (rebased.IsNoop ? Synchronized : Send(rebased, PendingEdits, newOpId), op);
    }

    /// <summary>
    /// The server's text is not one the local text was made from: the server lost edits it had
    /// acknowledged, or holds others. Nobody's text is removed: <paramref name="serverText"/> becomes
    /// the base, and the local text it lacks is inserted into it by one new op (a new op id; the
    /// pending edits are in it), made from the difference between <paramref name="serverText"/> and
    /// <paramref name="localText"/> with its deletions turned into retains. Where both differ, the
    /// local text goes before the server's. Returns the next state (its edits: the pending ones, or
    /// one when none was pending but text is restored) and the op to apply to the local text, which
    /// inserts the server's text the local text lacks. As <c>reconcile</c> in <c>sync.ts</c>.
    /// </summary>
    public (SyncState State, TextOperation Op) Reconcile(string serverText, string localText, Func<long> newOpId)
    {
        var restore = new TextOperation.Builder();
        var local = new TextOperation.Builder();
        var pos = 0;
        foreach (var c in TextOperation.Diff(serverText, localText).Components)
        {
            if (c.IsInsert)
            {
                restore.Insert(c.Text!);
                local.Retain(c.Text!.Length);
            }
            else if (c.IsRetain)
            {
                restore.Retain(c.Count);
                local.Retain(c.Count);
                pos += c.Count;
            }
            else
            {
                restore.Retain(c.Length);
                local.Insert(serverText.Substring(pos, c.Length));
                pos += c.Length;
            }
        }
        var op = restore.Build();
        return (op.IsNoop ? Synchronized : Send(op, Math.Max(1, PendingEdits), newOpId), local.Build());
    }

    /// <summary>Everything not yet confirmed, as one op from the last known server text to the local text.</summary>
    public TextOperation PendingOp => Kind switch
    {
        ClientSyncState.Synchronized => TextOperation.Empty,
        ClientSyncState.AwaitingConfirm => Outstanding!.Op,
        _ => TextOperation.Compose(Outstanding!.Op, Buffer!.Op),
    };

    /// <summary>How many local edits are not yet confirmed.</summary>
    public int PendingEdits => (Outstanding?.Edits ?? 0) + (Buffer?.Edits ?? 0);

    /// <summary>Makes <paramref name="op"/> the outstanding op, splitting it when it is too large to send at once.</summary>
    private static SyncState Send(TextOperation op, int edits, Func<long> newOpId)
    {
        var parts = op.Split(MaxInsertPerOp);
        if (parts.Count == 1)
        {
            return new(ClientSyncState.AwaitingConfirm, new OutstandingOp(op, newOpId(), edits), null);
        }
        var rest = parts[1];
        for (var i = 2; i < parts.Count; i++)
        {
            rest = TextOperation.Compose(rest, parts[i]);
        }
        return new(ClientSyncState.AwaitingWithBuffer, new OutstandingOp(parts[0], newOpId(), 0), new BufferedOp(rest, edits));
    }

    /// <inheritdoc/>
    public override string ToString() => Kind switch
    {
        ClientSyncState.Synchronized => "Synchronized",
        ClientSyncState.AwaitingConfirm => $"AwaitingConfirm(#{Outstanding!.OpId} {Outstanding.Op})",
        _ => $"AwaitingWithBuffer(#{Outstanding!.OpId} {Outstanding.Op}, {Buffer!.Op})",
    };
}
