using System.Diagnostics;
using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;
using Microsoft.AspNetCore.SignalR;

namespace Collab.Client;

// The engine's shell: hub messages, connection changes, call results and timers become engine
// events (the connection calls in through the internal On* methods), one step at a time under
// _gate; each step's commands are carried out in order: timers at once, the rest (hub calls,
// events) through _work, outside the lock. As client/ts/document.ts does for the TypeScript engine.
public sealed partial class CollabDocument
{
    /// <summary>Most redirects followed in a row before going back to the node the document was opened on (as the TypeScript client).</summary>
    private const int MaxRedirects = 5;

    /// <summary>
    /// How long the shell waits before going back to the first node after too many redirects,
    /// joining again after a redirect it could not follow, or starting a new session after a call
    /// lost on a connection that stayed up (as the TypeScript client waits before going back).
    /// </summary>
    private static readonly TimeSpan s_shellDelay = TimeSpan.FromSeconds(1);

    // What steps left to do outside the lock, in order; whichever thread finds it idle runs it, so
    // a handler never runs concurrently with another of this document, and the commands of a step
    // an event handler caused wait for those before them.
    private readonly Queue<Action> _work = new();
    private readonly Dictionary<TimerName, CancellationTokenSource> _timers = [];
    private bool _working;
    // The shell's clock in ms: the time since creation, but never before a timer that has fired.
    private double _clock;
    // How many redirects in a row; reset by a join the engine takes that stays on its node.
    private int _redirects;
    private TaskCompletionSource? _firstJoin;
    private TaskCompletionSource? _leaving;

    /// <summary>For tests: called under the lock with each server version as this document applies it, and its op (as on the server).</summary>
    internal Action<int, TextOperation>? Journal { get; set; }

    /// <summary>
    /// Joins for the first time; completes once joined, and throws a <see cref="CollabException"/>
    /// when the join is refused for good, so that <see cref="CollabClient.OpenAsync"/> can report it.
    /// While the server cannot take it (unavailable, a lost connection) the document keeps trying.
    /// </summary>
    internal async Task JoinInitialAsync(CancellationToken cancellationToken)
    {
        Task joined;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Completed through _work, outside the lock (its continuation, the caller's code, runs
            // inline), so a joined document is open when the step that joined it returns.
            _firstJoin = new TaskCompletionSource();
            joined = _firstJoin.Task;
            StepLocked(new Connected());
        }
        RunWork();
        await joined.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    internal void OnOp(OpMessage message) => Dispatch(new ServerOp(message));

    internal void OnPresence(PresenceMessage presence) => Dispatch(new PresenceRemote(presence));

    /// <summary>A Reset: tells the <see cref="Reset"/> handlers (who may dispose the document), then joins again without sinceVersion.</summary>
    internal void OnReset(ResetMessage reset)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            Log.ResetRequested(_logger, DocId, reset.Reason);
            _work.Enqueue(() => Reset?.Invoke(this, reset));
        }
        RunWork();
        Dispatch(new Internal.Reset());
    }

    internal void OnConnectionLost() => Dispatch(new Disconnected());

    internal void OnConnectionRestored()
    {
        lock (_gate)
        {
            // A reconnect is also the moment to retry a join that was refused for good before.
            _failed = false;
            StepLocked(new Connected());
        }
        RunWork();
    }

    /// <summary>Its node stopped answering and the client moved it to <paramref name="transport"/>; <see cref="OnConnectionRestored"/> follows once that is up.</summary>
    internal void MoveTo(IDocumentTransport transport)
    {
        lock (_gate)
        {
            _transport = transport;
        }
    }

    /// <summary>
    /// The connection stopped retrying: the server refused it for good (<c>unauthorized</c>,
    /// <c>forbidden</c>, a refused origin). The document is Disconnected and raises
    /// <see cref="Error"/>; <see cref="ReconnectNow"/> tries again.
    /// </summary>
    internal void OnConnectionFailed(CollabException error)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _failed = true;
            StepLocked(new Disconnected());
            _work.Enqueue(() => Error?.Invoke(this, new CollabErrorEventArgs(error, localChangesDiscarded: false)));
        }
        RunWork();
    }

    /// <summary>The connection that had stopped retrying is trying again: the document is Reconnecting, not failed.</summary>
    internal void OnRetrying()
    {
        lock (_gate)
        {
            if (_disposed || _engine.Phase == EnginePhase.Joined)
            {
                return;
            }
            _failed = false;
            UpdateStateLocked();
        }
        RunWork();
    }

    private void Dispatch(EngineEvent @event)
    {
        lock (_gate)
        {
            StepLocked(@event);
        }
        RunWork();
    }

    /// <summary>One engine step at the shell's time, after topping up its op ids; then its commands, in order.</summary>
    private void StepLocked(EngineEvent @event)
    {
        if (_engine.OpIds.Count < SyncEngine.OpIdReserve)
        {
            var ids = new List<long>(SyncEngine.OpIdReserve);
            while (_engine.OpIds.Count + ids.Count < SyncEngine.OpIdReserve)
            {
                ids.Add(_nextOpId());
            }
            _engine = _engine.Step(new OpIds(ids)).State;
        }
        _clock = Math.Max(_clock, Stopwatch.GetElapsedTime(_started).TotalMilliseconds);
        var before = _engine;
        var (state, commands) = before.Step(@event with { NowMs = _clock });
        _engine = state;
        if (before is EngineState textBefore && state is EngineState text)
        {
            if (!ReferenceEquals(textBefore.Text, text.Text))
            {
                _textString = null;
                // Rope.Empty is shared, and a caller may hold it from an earlier empty text.
                _textRope = text.Text.Length == 0 ? Rope.FromString("-").Delete(0, 1) : text.Text;
            }
            if (Journal is { } journal && text.Version > before.Version && before.Version >= 0)
            {
                foreach (var recent in text.Recent.Where(r => r.Version > before.Version))
                {
                    journal(recent.Version, recent.Op);
                }
            }
        }
        // Whether this step took the pending edits back: an error it raises says so.
        var reverted = false;
        foreach (var command in commands)
        {
            switch (command)
            {
                case SendJoin join:
                    _work.Enqueue(() => _ = SendJoinAsync(join.Session, join.Request));
                    break;
                case SendSubmit submit:
                    _work.Enqueue(() => _ = SendSubmitAsync(submit.Session, submit.Request));
                    break;
                case SendPresence presence:
                    _work.Enqueue(() => _ = SendPresenceAsync(presence.Request));
                    break;
                case SendLeave leave:
                    var left = _leaving = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    _work.Enqueue(() => _ = LeaveAsync(leave.DocId, left));
                    break;
                case ApplyRemote change:
                    reverted |= change.Origin == ChangeOrigin.Revert;
                    var args = new DocumentChangedEventArgs(change.Op, isLocal: false, change.ClientId);
                    _work.Enqueue(() => Changed?.Invoke(this, args));
                    break;
                case ApplyRemote<Delta> richChange:
                    reverted |= richChange.Origin == ChangeOrigin.Revert;
                    var richArgs = new RichTextChangedEventArgs(richChange.Op, isLocal: false, richChange.ClientId);
                    _work.Enqueue(() => RichTextChanged?.Invoke(richArgs));
                    break;
                case Emit { Payload: PresencePayload members }:
                    PresenceChangedLocked(members.Members);
                    break;
                case Emit { Payload: PendingPayload pending }:
                    reverted |= pending.PendingEdits == 0 && @event is SubmitFailed && before.PendingEdits > 0;
                    break;
                case Emit { Payload: JoinedPayload }:
                    if (_firstJoin is { } first)
                    {
                        _firstJoin = null;
                        _work.Enqueue(() => first.TrySetResult());
                    }
                    break;
                case Emit { Payload: ErrorPayload error }:
                    if (@event is JoinFailed)
                    {
                        // Refused for good: nothing is retried until the next connection or ReconnectNow.
                        _failed = true;
                    }
                    if (error.Code == ErrorCodes.Diverged)
                    {
                        Log.Diverged(_logger, DocId, error.Message);
                    }
                    var errorArgs = new CollabErrorEventArgs(new CollabException(error.Code ?? ErrorCodes.Unavailable, error.Message), reverted);
                    _work.Enqueue(() => Error?.Invoke(this, errorArgs));
                    break;
                case SetTimer timer:
                    SetTimerLocked(timer.Name, timer.DueMs);
                    break;
                case ClearTimer timer:
                    if (_timers.Remove(timer.Name, out var cancel))
                    {
                        cancel.Cancel();
                    }
                    break;
                case Internal.Redirect redirect:
                    _work.Enqueue(() => _ = RedirectAsync(redirect.Url));
                    break;
                case FailOpen failed:
                    if (_firstJoin is { } refused)
                    {
                        _firstJoin = null;
                        var error = new CollabException(failed.Code, failed.Message);
                        _work.Enqueue(() => refused.TrySetException(error));
                    }
                    break;
            }
        }
        if (state.SyncKind == ClientSyncState.Synchronized && _syncWaiters is { } waiters)
        {
            _syncWaiters = null;
            foreach (var waiter in waiters)
            {
                waiter.TrySetResult();
            }
        }
        UpdateStateLocked();
    }

    /// <summary>Runs what steps left to do, in order, until nothing is left; returns at once if another call is doing so.</summary>
    private void RunWork()
    {
        lock (_gate)
        {
            if (_working)
            {
                return;
            }
            _working = true;
        }
        while (true)
        {
            Action next;
            lock (_gate)
            {
                if (!_work.TryDequeue(out next!))
                {
                    _working = false;
                    return;
                }
            }
            try
            {
                next();
            }
            catch (Exception ex)
            {
                // A failing handler must not stop the document nor the SignalR loop that called us.
                Log.EventHandlerFailed(_logger, DocId, ex);
            }
        }
    }

    private async Task SendJoinAsync(int session, JoinRequest request)
    {
        IDocumentTransport transport;
        lock (_gate)
        {
            transport = _transport;
        }
        JoinResult result;
        try
        {
            result = await transport.JoinAsync(request, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Loop boundary: a refusal names its code; anything else is the connection failing, and a reconnect joins again.
            Log.JoinFailed(_logger, DocId, ex);
            var code = ex is HubException ? CollabException.FromHubError(ex).Code : null;
            Dispatch(new JoinFailed(session, code, ex.Message, Random.Shared.NextDouble()));
            if (code is null)
            {
                _ = ResumeIfStillConnectedAsync(session, transport);
            }
            return;
        }
        var renamed = false;
        lock (_gate)
        {
            var current = session == _engine.Session && _engine.Phase == EnginePhase.Joining;
            if (current && string.IsNullOrEmpty(result.Redirect))
            {
                _redirects = 0;
                if (!string.IsNullOrEmpty(result.MovedTo) && _engine.Version >= 0)
                {
                    // Renamed away while this document was not joined (it missed the Reset): said as
                    // that Reset would have. A handler that disposes the document leaves the new, empty one.
                    renamed = true;
                    var reset = new ResetMessage { DocId = DocId, Reason = "renamed", MovedTo = result.MovedTo };
                    _work.Enqueue(() => Reset?.Invoke(this, reset));
                }
            }
        }
        RunWork();
        lock (_gate)
        {
            if (renamed && _engine.Closed)
            {
                _work.Enqueue(() => _ = LeaveAsync(request.DocId, new TaskCompletionSource(), transport));
                renamed = false;
            }
            else
            {
                StepLocked(new JoinResultEvent(session, result));
            }
        }
        RunWork();
    }

    private async Task SendSubmitAsync(int session, SubmitRequest request)
    {
        IDocumentTransport transport;
        lock (_gate)
        {
            transport = _transport;
        }
        EngineEvent outcome;
        try
        {
            var result = await transport.SubmitAsync(request, _disposeCts.Token).ConfigureAwait(false);
            outcome = new SubmitResultEvent(session, request.OpId, result.Version);
        }
        catch (HubException ex)
        {
            var code = CollabException.FromHubError(ex).Code;
            Log.SubmitRejected(_logger, DocId, request.OpId, code, ex);
            outcome = new SubmitFailed(session, request.OpId, code, ex.Message, Random.Shared.NextDouble());
        }
        catch (Exception ex)
        {
            // Loop boundary: the connection failed; the next Connected resumes and sends the op again.
            Log.SubmitFailed(_logger, DocId, request.OpId, ex);
            outcome = new SubmitFailed(session, request.OpId, null, ex.Message, Random.Shared.NextDouble());
            _ = ResumeIfStillConnectedAsync(session, transport);
        }
        Dispatch(outcome);
    }

    /// <summary>
    /// A call of <paramref name="session"/> failed without a protocol code, as when the connection
    /// drops. If the connection still says it is up a second later and nothing has started a new
    /// session meanwhile, it lost this session's call without a drop: the shell reports it as
    /// connected again, which starts a new session (the engine waits for that after such a failure).
    /// </summary>
    private async Task ResumeIfStillConnectedAsync(int session, IDocumentTransport transport)
    {
        if (transport.State != ConnectionState.Connected)
        {
            return; // the drop is reported, and a reconnect starts a new session
        }
        try
        {
            await _delay(s_shellDelay, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        lock (_gate)
        {
            if (_engine.Session != session || _engine.Phase == EnginePhase.Offline || _transport != transport || transport.State != ConnectionState.Connected)
            {
                return;
            }
            StepLocked(new Connected());
        }
        RunWork();
    }

    private async Task SendPresenceAsync(PresenceRequest request)
    {
        IDocumentTransport transport;
        lock (_gate)
        {
            transport = _transport;
        }
        try
        {
            await transport.SetPresenceAsync(request, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Presence is not durable: the next change sends it again.
            Log.PresenceFailed(_logger, DocId, ex);
        }
    }

    private async Task LeaveAsync(string docId, TaskCompletionSource done, IDocumentTransport? transport = null)
    {
        lock (_gate)
        {
            transport ??= _transport;
        }
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await transport.LeaveAsync(docId, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Best effort: the server drops the membership with the connection anyway.
            Log.LeaveFailed(_logger, DocId, ex);
        }
        done.TrySetResult();
    }

    /// <summary>
    /// Moves the document to the node at <paramref name="url"/> (the engine is offline already),
    /// then joins there. After more than <see cref="MaxRedirects"/> redirects in a row it goes back
    /// to the node it was opened on, after a second; a redirect it cannot follow (not a usable URL,
    /// that node cannot be reached) joins again where it is, after a second.
    /// </summary>
    private async Task RedirectAsync(string url)
    {
        IDocumentTransport from;
        bool home;
        lock (_gate)
        {
            from = _transport;
            home = ++_redirects > MaxRedirects;
            if (home)
            {
                _redirects = 0;
            }
        }
        var to = from;
        try
        {
            if (home)
            {
                await _delay(s_shellDelay, _disposeCts.Token).ConfigureAwait(false);
            }
            try
            {
                Log.Redirected(_logger, DocId, url);
                to = home
                    ? await from.ReturnHomeAsync(this, _disposeCts.Token).ConfigureAwait(false)
                    : await from.RedirectAsync(this, url, _disposeCts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !_disposeCts.IsCancellationRequested)
            {
                Log.RedirectFailed(_logger, DocId, url, ex);
                await _delay(s_shellDelay, _disposeCts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            return; // disposed
        }
        lock (_gate)
        {
            _transport = to;
            // Not connected: the node's reconnect sends OnConnectionRestored.
            if (to.State == ConnectionState.Connected)
            {
                StepLocked(new Connected());
            }
        }
        RunWork();
    }

    /// <summary>A timer of <paramref name="name"/> (replacing any) that sends a Tick at <paramref name="dueMs"/>; one due already fires after this step's commands.</summary>
    private void SetTimerLocked(TimerName name, double dueMs)
    {
        if (_timers.Remove(name, out var previous))
        {
            previous.Cancel();
        }
        if (dueMs <= _clock)
        {
            _work.Enqueue(() => Dispatch(new Tick()));
            return;
        }
        var cancel = new CancellationTokenSource();
        _timers[name] = cancel;
        _ = FireAsync(name, dueMs, cancel);
    }

    private async Task FireAsync(TimerName name, double dueMs, CancellationTokenSource cancel)
    {
        try
        {
            await _delay(TimeSpan.FromMilliseconds(dueMs - _clock), cancel.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return; // cleared or replaced
        }
        lock (_gate)
        {
            if (!_timers.TryGetValue(name, out var current) || current != cancel)
            {
                return;
            }
            _timers.Remove(name);
            // A timer that fires has come due, whatever the clock says (a wait may end a little early).
            _clock = Math.Max(_clock, dueMs);
            StepLocked(new Tick());
        }
        RunWork();
    }

    /// <summary>The members changed: <see cref="Presence"/> follows, and each member that arrived, moved or left is raised.</summary>
    private void PresenceChangedLocked(IReadOnlyList<Member> members)
    {
        var next = _presence.Clear().ToBuilder();
        foreach (var member in members)
        {
            _presence.TryGetValue(member.ClientId, out var old);
            if (old is not null && old.User == member.User && old.Selection!.Count == member.Selection.Length
                && old.Selection.Zip(member.Selection).All(p => p.First.Anchor == p.Second.Anchor && p.First.Head == p.Second.Head))
            {
                next[member.ClientId] = old;
                continue;
            }
            var message = new PresenceMessage
            {
                DocId = DocId,
                ClientId = member.ClientId,
                User = member.User,
                Version = _engine.Version,
                Selection = [.. member.Selection.Select(r => new SelectionRange { Anchor = r.Anchor, Head = r.Head })],
            };
            next[member.ClientId] = message;
            _work.Enqueue(() => PresenceChanged?.Invoke(this, message));
        }
        foreach (var (clientId, old) in _presence)
        {
            if (!next.ContainsKey(clientId))
            {
                var left = new PresenceMessage { DocId = DocId, ClientId = clientId, User = old.User, Version = _engine.Version, Selection = null };
                _work.Enqueue(() => PresenceChanged?.Invoke(this, left));
            }
        }
        _presence = next.ToImmutable();
    }

    private void UpdateStateLocked()
    {
        var state = _disposed || _failed ? ConnectionState.Disconnected
            : _engine.Phase == EnginePhase.Joined ? ConnectionState.Connected
            : ConnectionState.Reconnecting;
        if (state != _reportedState)
        {
            var args = new ConnectionStateChangedEventArgs(_reportedState, state);
            _reportedState = state;
            _work.Enqueue(() => ConnectionStateChanged?.Invoke(this, args));
        }
    }
}
