using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client;

// The OT client state machine (SyncState, the same transitions as client/ts/sync.ts) and the
// ordering of what the server sends. Every method here runs under _gate and does no I/O.
public sealed partial class CollabDocument
{
    // The server's text at _version: what the server confirmed, without our pending ops. Kept so
    // that a resume that returns the whole text can be turned into one diff op, and to invert
    // pending ops. Edited in place, like _text.
    private readonly TextBuffer _serverText = new();
    private int _version;

    // Synchronized, AwaitingConfirm or AwaitingWithBuffer, with the outstanding op (always
    // relative to _serverText) and the buffer. Changed only through SetSyncLocked, or in place of
    // itself by ApplyServer (which keeps the outstanding op id).
    private SyncState _sync = Internal.SyncState.Synchronized;
    // The version the server gave the outstanding op, when its Submit result came before the ops below it.
    private int? _inflightAck;
    // The last op id handed to any connection: until confirmed, that op may or may not be committed.
    private long? _everSentOpId;
    // An outstanding op that a whole-text join made us submit again, and the server acknowledged:
    // it is in the server's text, not in _serverText (still the text at _version); the next
    // whole-text join diffs from _serverText with it applied.
    private TextOperation? _settledOp;
    // The server lost or changed edits this client had seen acknowledged, so its text is not
    // _serverText: the next join asks for the whole text and merges the local text into it
    // (ReconcileLocked) instead of rebasing onto the difference from _serverText.
    private bool _diverged;

    /// <summary>For tests: called under the lock with each server version as this document applies it (version, client id, op id, op).</summary>
    internal Action<int, string, long, TextOperation>? Journal { get; set; }

    // Server ops that arrived ahead of their turn (version > _version + 1), by version.
    private readonly SortedDictionary<int, OpMessage> _early = [];

    // Set while a Join result is applied. Outside Joined (and this), nothing is drained: an ack
    // that comes during a join waits for the join's text or ops, which it may be part of.
    private bool _draining;

    /// <summary>Local edits not yet confirmed by the server (as <c>pendingEdits</c> in the TypeScript client).</summary>
    internal int PendingEdits
    {
        get
        {
            lock (_gate)
            {
                return _sync.PendingEdits;
            }
        }
    }

    private void ApplyLocalLocked(TextOperation op) => SetSyncLocked(_sync.ApplyClient(op, _nextOpId));

    /// <summary>Moves to <paramref name="next"/>; a new outstanding op (a new op id) is not sent nor acknowledged yet.</summary>
    private void SetSyncLocked(SyncState next)
    {
        var previous = _sync.Outstanding?.OpId;
        _sync = next;
        if (next.Outstanding?.OpId != previous)
        {
            _inflightSent = false;
            _inflightAck = null;
            _resendAttempt = 0;
        }
        if (next.Kind == ClientSyncState.Synchronized)
        {
            CompleteSyncWaitersLocked();
        }
    }

    /// <summary>Takes a server op into the ordered path: duplicates are dropped, early ones wait.</summary>
    private void AddIncomingLocked(OpMessage message)
    {
        if (message.Version > _version)
        {
            _early.TryAdd(message.Version, message);
        }
    }

    /// <summary>
    /// Applies what can be applied, in strict version order: the slot after <c>_version</c> is
    /// either our outstanding op (its Submit result said so, or the op itself came back with our
    /// client id and op id, as in a resume's <c>ops</c>) or another member's op.
    /// </summary>
    private void DrainLocked()
    {
        while (_phase == JoinPhase.Joined || _draining)
        {
            var next = _version + 1;
            var outstanding = _sync.Outstanding;
            if (outstanding is not null && _inflightAck == next)
            {
                _early.Remove(next);
                ConfirmLocked();
                continue;
            }
            if (!_early.Remove(next, out var message))
            {
                return;
            }
            if (outstanding is not null && message.ClientId == _clientId && message.OpId == outstanding.OpId)
            {
                ConfirmLocked();
            }
            else if (!ApplyRemoteLocked(message))
            {
                return;
            }
        }
    }

    /// <summary>The outstanding op is committed at <c>_version + 1</c>: serverAck, so the buffer, if any, goes next.</summary>
    private void ConfirmLocked()
    {
        var outstanding = _sync.Outstanding!;
        _serverText.Apply(outstanding.Op);
        _version++;
        Journal?.Invoke(_version, _clientId, outstanding.OpId, outstanding.Op);
        // The next outstanding op is sent with baseVersion = _version by TakeSubmitLocked.
        SetSyncLocked(_sync.ServerAck(_nextOpId));
    }

    /// <summary>Applies another member's op made on <c>_version</c>: applyServer rebases our pending ops over it.</summary>
    private bool ApplyRemoteLocked(OpMessage message)
    {
        var s = message.Op;
        if (s.Error is not null || s.BaseLength > _serverText.Length)
        {
            // Our view of the server's text is wrong: the server lost or changed edits we had seen acknowledged.
            DivergeLocked(s.Error is { } error
                ? $"Op {message.Version} is not a valid op ({error})"
                : $"Op {message.Version} runs {s.BaseLength} code units, past the end of the text of version {_version} (length {_serverText.Length})");
            return false;
        }
        _serverText.Apply(s);
        _version = message.Version;
        Journal?.Invoke(_version, message.ClientId, message.OpId, s);
        (_sync, s) = _sync.ApplyServer(s);
        if (!s.IsNoop)
        {
            _text.Apply(s);
            TextChangedLocked();
            Enqueue(new DocumentChangedEventArgs(s, isLocal: false, message.ClientId));
        }
        return true;
    }

    /// <summary>All unconfirmed local edits as one op on <c>_serverText</c>, or null.</summary>
    private TextOperation? PendingLocked() => _sync.Kind == ClientSyncState.Synchronized ? null : _sync.PendingOp;

    /// <summary>
    /// Moves to the server's whole <paramref name="text"/> at <paramref name="version"/> (a join
    /// without <c>sinceVersion</c>, or a resume the server could not answer with ops), unless the
    /// outstanding op has to be settled first.
    /// </summary>
    /// <returns>
    /// Null when done: the change from our server text is treated as one remote op and our
    /// pending edits are rebased over it as one new outstanding op (<see cref="SyncState.Rebase"/>).
    /// Otherwise the outstanding op was sent before and may be in <paramref name="text"/> already,
    /// which a text cannot tell: the Submit to send again, with its original op id, before
    /// joining again (the server either finds it committed or applies it now; either way it is
    /// then in the server's text). The TypeScript client does the same.
    /// </returns>
    private SubmitRequest? RebaseOntoTextLocked(string text, int version)
    {
        if (_sync.Outstanding is { } acked && _inflightAck <= version)
        {
            // The outstanding op's Submit result came during the join: the text already holds it.
            _serverText.Apply(acked.Op);
            SetSyncLocked(_sync.ServerAck(_nextOpId));
        }
        if (_sync.Outstanding is { } outstanding && _everSentOpId == outstanding.OpId)
        {
            Log.ResubmittingBeforeRebase(_logger, DocId, outstanding.OpId);
            return new SubmitRequest { DocId = DocId, BaseVersion = _version, Op = outstanding.Op, OpId = outstanding.OpId };
        }
        var from = _serverText.ToString();
        if (_settledOp is { } settled)
        {
            from = settled.Apply(from);
            _settledOp = null;
        }
        if (_sync.Kind != ClientSyncState.Synchronized)
        {
            Log.RebasedOntoText(_logger, DocId, version, _version);
        }
        var (next, s) = _sync.Rebase(TextOperation.Diff(from, text), _nextOpId);
        if (!s.IsNoop)
        {
            _text.Apply(s);
            TextChangedLocked();
            Enqueue(new DocumentChangedEventArgs(s, isLocal: false, clientId: null));
        }
        _serverText.Reset(text);
        _version = version;
        // Early ops were numbered against the old history, which may not be this one.
        _early.Clear();
        SetSyncLocked(next);
        return null;
    }

    /// <summary>
    /// The server has lost or changed edits this client had seen acknowledged (a resume answered
    /// below our version, a whole text at our version that is not ours, or a server op that does
    /// not fit our text). Raises <see cref="Error"/> with <see cref="ErrorCodes.Diverged"/>, forgets
    /// the ops numbered in a history that is not the server's, and joins again for the whole text,
    /// which <see cref="ReconcileLocked"/> merges with ours. As <c>diverge</c> in the TypeScript engine.
    /// </summary>
    private void DivergeLocked(string why)
    {
        Log.Diverged(_logger, DocId, why);
        var error = new CollabException(
            ErrorCodes.Diverged,
            $"{why}: the server has lost or changed edits this client had seen acknowledged. The document joins again and sends the text the server lacks as new edits.");
        Enqueue(new CollabErrorEventArgs(error, localChangesDiscarded: false));
        _diverged = true;
        _early.Clear();
        _held.Clear();
        RequestJoinLocked(JoinKind.Fresh);
    }

    /// <summary>
    /// The whole text of a server that diverged from what we knew: it becomes the base, and the
    /// local text it lacks (acknowledged edits it lost, and the pending edits) is sent again as one
    /// new op (<see cref="SyncState.Reconcile"/>), so no text is removed, neither the server's nor
    /// ours. The outstanding op is not settled first: it was made on a text the server does not
    /// have, and its text is in the local text anyway.
    /// </summary>
    private void ReconcileLocked(string text, int version)
    {
        var (next, s) = _sync.Reconcile(text, _text.ToString(), _nextOpId);
        if (!s.IsNoop)
        {
            _text.Apply(s);
            TextChangedLocked();
            Enqueue(new DocumentChangedEventArgs(s, isLocal: false, clientId: null));
        }
        _serverText.Reset(text);
        _version = version;
        _early.Clear();
        _settledOp = null;
        _everSentOpId = null;
        _diverged = false;
        SetSyncLocked(next);
    }

    /// <summary>
    /// The server acknowledged the outstanding op that <see cref="RebaseOntoTextLocked"/> sent
    /// again: serverAck, and the op waits in <c>_settledOp</c> for the whole text of the next join.
    /// </summary>
    private void SettledLocked(long opId)
    {
        if (_sync.Outstanding is { } outstanding && outstanding.OpId == opId)
        {
            _settledOp = _settledOp is null ? outstanding.Op : TextOperation.Compose(_settledOp, outstanding.Op);
            SetSyncLocked(_sync.ServerAck(_nextOpId));
        }
        RequestJoinLocked(JoinKind.Fresh);
    }

    /// <summary>Drops every unconfirmed local edit and puts the local text back to the server's.</summary>
    private void DiscardPendingLocked()
    {
        var pending = PendingLocked();
        if (pending is null)
        {
            return;
        }
        var undo = _serverText.Invert(pending);
        // The local text is pending applied to the server's text, so undo brings it back there.
        _text.Apply(undo);
        TextChangedLocked();
        SetSyncLocked(Internal.SyncState.Synchronized);
        if (!undo.IsNoop)
        {
            Enqueue(new DocumentChangedEventArgs(undo, isLocal: false, clientId: null));
        }
    }

    /// <summary>
    /// Applies a Join result: the whole text, or the ops since our version, then whatever arrived
    /// meanwhile. Returns the Submit to send before anything else when the whole text cannot
    /// tell whether the outstanding op is in it (see <see cref="RebaseOntoTextLocked"/>); the
    /// document then stays out of Joined.
    /// </summary>
    private SubmitRequest? ApplyJoinResultLocked(JoinResult result, int? sinceVersion = null)
    {
        _readOnly = result.ReadOnly;
        ReplacePresenceLocked(result.Presence);
        _draining = true;
        try
        {
            if (_diverged)
            {
                // Only the whole text can be merged (a join without sinceVersion gets it).
                if (result.Text is null)
                {
                    RequestJoinLocked(JoinKind.Fresh);
                }
                else
                {
                    ReconcileLocked(result.Text, result.Version);
                }
            }
            else if (sinceVersion is { } since && result.Version < since)
            {
                DivergeLocked($"The server answered a resume from version {since} with version {result.Version}");
            }
            else if (sinceVersion is { } at && result.Version == at && result.Text is not null && result.Text != _serverText.ToString())
            {
                DivergeLocked($"The server's text at version {at} is not the one this client knew");
            }
            else if (result.Text is not null)
            {
                if (RebaseOntoTextLocked(result.Text, result.Version) is { } settle)
                {
                    return settle;
                }
            }
            else
            {
                foreach (var message in result.Ops ?? [])
                {
                    AddIncomingLocked(message);
                }
                DrainLocked();
                if (_version < result.Version)
                {
                    // The ops do not lead to the version the server reported: start over from the text.
                    ResyncLocked($"the resume ops reached version {_version}, not {result.Version}");
                }
            }
        }
        finally
        {
            _draining = false;
        }
        if (_pendingJoin != JoinKind.None || _transport.State != ConnectionState.Connected)
        {
            // Another join was asked for meanwhile (a reconnect, a reset), or the connection that
            // answered is gone already: stay out of Joined until the next join is done.
            return null;
        }
        _phase = JoinPhase.Joined;
        var held = _held;
        _held = [];
        foreach (var message in held)
        {
            AddIncomingLocked(message);
        }
        DrainLocked();
        UpdateStateLocked();
        return null;
    }
}
