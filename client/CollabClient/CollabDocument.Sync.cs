using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client;

// The OT client state machine (see ClientSyncState for the diagram) and the ordering of what
// the server sends. Every method here runs under _gate and does no I/O.
public sealed partial class CollabDocument
{
    // The server's text at _version: what the server confirmed, without our pending ops. Kept so
    // that a resume that returns the whole text can be turned into one diff op, and to invert
    // pending ops. Edited in place, like _text.
    private readonly TextBuffer _serverText = new();
    private int _version;

    private ClientSyncState _syncState;
    // The op sent to the server (AwaitingConfirm, AwaitingWithBuffer), always relative to _serverText.
    private TextOperation? _inflight;
    private long _inflightOpId;
    // The version the server gave the in-flight op, when its Submit result came before the ops below it.
    private int? _inflightAck;
    // Edits made while _inflight is unconfirmed, composed into one op relative to _serverText ∘ _inflight.
    private TextOperation? _buffer;

    /// <summary>For tests: called under the lock with each server version as this document applies it (version, client id, op id, op).</summary>
    internal Action<int, string, long, TextOperation>? Journal { get; set; }

    // Server ops that arrived ahead of their turn (version > _version + 1), by version.
    private readonly SortedDictionary<int, OpMessage> _early = [];

    // Set while a Join result is applied. Outside Joined (and this), nothing is drained: an ack
    // that comes during a join waits for the join's text or ops, which it may be part of.
    private bool _draining;

    private void ApplyLocalLocked(TextOperation op)
    {
        switch (_syncState)
        {
            case ClientSyncState.Synchronized:
                StartInflightLocked(op);
                break;
            case ClientSyncState.AwaitingConfirm:
                _buffer = op;
                _syncState = ClientSyncState.AwaitingWithBuffer;
                break;
            case ClientSyncState.AwaitingWithBuffer:
                _buffer = TextOperation.Compose(_buffer!, op);
                break;
        }
    }

    /// <summary>Makes <paramref name="op"/> the in-flight op: a new op, so a new op id; TakeSubmitLocked sends it.</summary>
    private void StartInflightLocked(TextOperation op)
    {
        _inflight = op;
        _inflightOpId = _nextOpId();
        _inflightSent = false;
        _inflightAck = null;
        _resendAttempt = 0;
        _syncState = _buffer is null ? ClientSyncState.AwaitingConfirm : ClientSyncState.AwaitingWithBuffer;
    }

    /// <summary>Nothing in flight, nothing buffered: Synchronized.</summary>
    private void ClearPendingLocked()
    {
        _inflight = null;
        _buffer = null;
        _inflightSent = false;
        _inflightAck = null;
        _syncState = ClientSyncState.Synchronized;
        CompleteSyncWaitersLocked();
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
    /// either our in-flight op (its Submit result said so, or the op itself came back with our
    /// client id and op id, as in a resume's <c>ops</c>) or another member's op.
    /// </summary>
    private void DrainLocked()
    {
        while (_phase == JoinPhase.Joined || _draining)
        {
            var next = _version + 1;
            if (_inflight is not null && _inflightAck == next)
            {
                _early.Remove(next);
                ConfirmLocked();
                continue;
            }
            if (!_early.Remove(next, out var message))
            {
                return;
            }
            if (_inflight is not null && message.ClientId == _clientId && message.OpId == _inflightOpId)
            {
                ConfirmLocked();
            }
            else if (!ApplyRemoteLocked(message))
            {
                return;
            }
        }
    }

    /// <summary>The in-flight op is committed at <c>_version + 1</c>: the buffer, if any, goes next.</summary>
    private void ConfirmLocked()
    {
        var inflight = _inflight!;
        _serverText.Apply(inflight);
        _version++;
        Journal?.Invoke(_version, _clientId, _inflightOpId, inflight);
        var buffer = _buffer;
        if (buffer is null)
        {
            ClearPendingLocked();
        }
        else
        {
            // Sent with baseVersion = _version by TakeSubmitLocked.
            _buffer = null;
            StartInflightLocked(buffer);
        }
    }

    /// <summary>Applies another member's op <c>s</c> made on <c>_version</c>, rebasing our pending ops over it.</summary>
    private bool ApplyRemoteLocked(OpMessage message)
    {
        var s = message.Op;
        if (s.Error is not null || s.BaseLength > _serverText.Length)
        {
            // Our view of the server's text is wrong somehow; only the whole text can fix it.
            ResyncLocked($"op {message.Version} does not apply to our text at version {_version}");
            return false;
        }
        _serverText.Apply(s);
        _version = message.Version;
        Journal?.Invoke(_version, message.ClientId, message.OpId, s);
        s = TransformPendingLocked(s);
        if (!s.IsNoop)
        {
            _text.Apply(s);
            TextChangedLocked();
            Enqueue(new DocumentChangedEventArgs(s, isLocal: false, message.ClientId));
        }
        return true;
    }

    /// <summary>
    /// The diagram of <see cref="ClientSyncState"/>: rewrites the in-flight op and the buffer to
    /// apply after <paramref name="s"/>, and returns <c>s''</c>, the op to apply to the local text.
    /// </summary>
    private TextOperation TransformPendingLocked(TextOperation s)
    {
        if (_inflight is not null)
        {
            var a = _inflight;
            _inflight = TextOperation.Transform(a, s, aWinsTies: true);
            s = TextOperation.Transform(s, a, aWinsTies: false);
        }
        if (_buffer is not null)
        {
            var b = _buffer;
            _buffer = TextOperation.Transform(b, s, aWinsTies: true);
            s = TextOperation.Transform(s, b, aWinsTies: false);
        }
        return s;
    }

    /// <summary>All unconfirmed local edits as one op on <c>_serverText</c>, or null.</summary>
    private TextOperation? PendingLocked() =>
        _inflight is null ? null : _buffer is null ? _inflight : TextOperation.Compose(_inflight, _buffer);

    /// <summary>
    /// Moves to the server's whole <paramref name="text"/> at <paramref name="version"/> (a join
    /// without <c>sinceVersion</c>, or a resume the server could not answer with ops): the change
    /// from our server text is treated as one remote op, our pending edits are rebased over it and
    /// become one new in-flight op.
    /// </summary>
    /// <remarks>
    /// Limitation: the rebased edits get a NEW op id, because their old in-flight op cannot be
    /// matched against a text. If that old op was in fact committed before this join (its Submit
    /// result was lost with the connection) and the server could not return ops, its effect is
    /// already in <paramref name="text"/> and lands a second time. A resume that returns
    /// <c>ops</c> (the normal case) has no such gap: the op comes back with our op id and counts
    /// as its acknowledgement, or is resubmitted with the same op id and deduplicated.
    /// </remarks>
    private void RebaseOntoTextLocked(string text, int version)
    {
        if (_inflight is not null && _inflightAck <= version)
        {
            // The in-flight op's Submit result came during the join: the text already holds it.
            _serverText.Apply(_inflight);
            _inflight = _buffer;
            _buffer = null;
        }
        var s = TextOperation.Diff(_serverText.ToString(), text);
        if (s.IsNoop && version == _version)
        {
            // Nothing was committed since our version, our in-flight op included: keep it and its id.
            return;
        }
        Log.RebasedOntoText(_logger, DocId, version, _version);
        s = TransformPendingLocked(s);
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
        var pending = PendingLocked();
        if (pending is null)
        {
            ClearPendingLocked();
        }
        else
        {
            _buffer = null;
            StartInflightLocked(pending);
        }
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
        ClearPendingLocked();
        if (!undo.IsNoop)
        {
            Enqueue(new DocumentChangedEventArgs(undo, isLocal: false, clientId: null));
        }
    }

    /// <summary>Applies a Join result: the whole text, or the ops since our version, then whatever arrived meanwhile.</summary>
    private void ApplyJoinResultLocked(JoinResult result)
    {
        _readOnly = result.ReadOnly;
        ReplacePresenceLocked(result.Presence);
        _draining = true;
        try
        {
            if (result.Text is not null)
            {
                RebaseOntoTextLocked(result.Text, result.Version);
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
            return;
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
    }
}
