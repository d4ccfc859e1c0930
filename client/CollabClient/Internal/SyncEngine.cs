using System.Collections.Immutable;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>
/// The sync engine of one document: everything the client decides, as one pure function,
/// <c>Step(state, event) → (state, commands)</c>. A port of <c>client/ts/engine.ts</c> with the
/// same events (<see cref="EngineEvent"/>), commands (<see cref="EngineCommand"/>), state and
/// rules, read against it function by function; the spec comment at the top of engine.ts says
/// what each event and command means, and <c>tests/vectors/engine-scenarios.json</c> drives both.
/// </summary>
/// <remarks>
/// No I/O, no timer, no clock, no random number: time and chance come in with events
/// (<see cref="EngineEvent.NowMs"/>, <see cref="JoinFailed.Random"/>), and what is to happen
/// outside comes out as commands, which a shell carries out in order. Timers: gap (a version is
/// missing: resume, <see cref="GapTimeoutMs"/> after the last op or result that found it missing),
/// retry (a refused Join or Submit: send it again after <see cref="MinRetryDelayMs"/> doubling up to
/// <see cref="MaxRetryDelayMs"/>), presence (send this member's selection, at most every
/// <see cref="PresenceIntervalMs"/>). Every attach (a connection, a reset, a resume after a gap
/// or an error) starts a new session, numbered from 1; results naming another session, or coming
/// while offline, are ignored. Op ids come from the client's counter: before every other event
/// the shell tops <see cref="EngineState{TDoc, TOp}.OpIds"/> up to <see cref="OpIdReserve"/> with an
/// <see cref="OpIds"/> event, and the engine takes them in order, at most one per event.
/// Divergence (a resume answered with a version below the one known, a whole text at the version
/// known that is not the text known, or a server op that does not fit the text) raises an error
/// with <see cref="ErrorCodes.Diverged"/> and joins again for the whole text, which becomes the
/// base; the local text the server lacks is sent as one new edit (<see cref="SyncState{TOp}.Reconcile"/>).
/// </remarks>
internal static class SyncEngine
{
    /// <summary>How many recent server ops are kept to map presence that refers to an older version.</summary>
    public const int PresenceHistory = 256;

    /// <summary>How long a gap in the version sequence may last before the document resumes to fill it.</summary>
    public const double GapTimeoutMs = 5_000;

    /// <summary>How often presence is sent at most: under the server's default of 20 a second (PROTOCOL §6).</summary>
    public const double PresenceIntervalMs = 60;

    /// <summary>The wait before a retry doubles from this …</summary>
    public const double MinRetryDelayMs = 200;

    /// <summary>
    /// … up to this. A retry waits between half of the wait and all of it, placed by the failure's
    /// random number, so that clients refused together do not retry together.
    /// </summary>
    public const double MaxRetryDelayMs = 5_000;

    /// <summary>How many op ids the shell keeps in <see cref="EngineState{TDoc, TOp}.OpIds"/> before each event: at least the one an event may take.</summary>
    public const int OpIdReserve = 2;

    /// <summary>The timers in the order they fire when due at the same time.</summary>
    private static readonly TimerName[] s_timers = [TimerName.Gap, TimerName.Retry, TimerName.Presence];

    /// <summary>The next state after <paramref name="event"/>, and what the shell is to do, in order. <paramref name="state"/> is immutable and stays as it was.</summary>
    public static (EngineState State, IReadOnlyList<EngineCommand> Commands) Step(EngineState state, EngineEvent @event)
    {
        var (next, commands) = Step<Rope, TextOperation>(state, @event);
        // Every new state is made by `with` from the one given, so it keeps its runtime type.
        return ((EngineState)next, commands);
    }

    /// <summary>The same for a document of any type (the state's <see cref="EngineState{TDoc, TOp}.Type"/>).</summary>
    public static (EngineState<TDoc, TOp> State, IReadOnlyList<EngineCommand> Commands) Step<TDoc, TOp>(EngineState<TDoc, TOp> state, EngineEvent @event)
        where TDoc : class
        where TOp : class
    {
        var run = new Run<TDoc, TOp>(state, @event.NowMs);
        run.Handle(@event);
        return (run.S, run.Out ?? []);
    }

    /// <summary>One step's work: <see cref="S"/> is replaced by each change, never changed in place.</summary>
    private sealed class Run<TDoc, TOp>(EngineState<TDoc, TOp> state, double? nowMs)
        where TDoc : class
        where TOp : class
    {
        public EngineState<TDoc, TOp> S = nowMs > state.NowMs ? state with { NowMs = nowMs.Value } : state;

        private IDocType<TDoc, TOp> T => S.Type;

        /// <summary>The commands so far; most events give one or none.</summary>
        public List<EngineCommand>? Out;

        public void Handle(EngineEvent @event)
        {
            if (@event is OpIds opIds)
            {
                S = S with { OpIds = S.OpIds.AddRange(opIds.Ids) };
                return;
            }
            if (S.Closed)
            {
                return;
            }
            switch (@event)
            {
                case Open open:
                    S = S with { DocId = open.DocId, ClientId = open.ClientId, User = open.User };
                    return;
                case Connected connected:
                    Attach(connected.Resume);
                    return;
                case Disconnected:
                    Detach();
                    return;
                case Reset:
                    // After a delete the document starts a new history, whose ops after our version are not ops on our text.
                    if (S.Phase != EnginePhase.Offline)
                    {
                        Attach(false);
                    }
                    return;
                case Leave:
                {
                    var joined = S.Phase == EnginePhase.Joined;
                    Detach();
                    S = S with { Closed = true };
                    if (joined)
                    {
                        Command(new SendLeave(S.DocId));
                    }
                    return;
                }
                case LocalEdit<TOp> edit:
                    LocalEdit(edit.Op);
                    return;
                case ServerOp op:
                    if (S.Phase == EnginePhase.Joined && op.Message.Version == S.Version + 1 && S.Queue.IsEmpty)
                    {
                        // The next op, with nothing queued: apply it without queueing it.
                        Drain(op.Message);
                    }
                    else
                    {
                        QueueOp(op.Message);
                        if (S.Phase == EnginePhase.Joined)
                        {
                            Drain();
                        }
                    }
                    return;
                case JoinResultEvent result:
                    if (result.Session == S.Session && S.Phase == EnginePhase.Joining)
                    {
                        Joined(result.Result);
                    }
                    return;
                case JoinFailed failed:
                    if (failed.Session == S.Session && S.Phase == EnginePhase.Joining)
                    {
                        JoinFailed(failed.Code, failed.Message, failed.Random);
                    }
                    return;
                case SubmitResultEvent result:
                    if (result.Session != S.Session)
                    {
                        return;
                    }
                    if (S.Phase == EnginePhase.Settling)
                    {
                        Settled(result.OpId);
                    }
                    else if (S.Phase == EnginePhase.Joined)
                    {
                        Submitted(result.OpId, result.Version);
                    }
                    return;
                case SubmitFailed failed:
                    // Without a code the connection failed: a reconnect resumes.
                    if (failed.Session != S.Session || failed.Code is null)
                    {
                        return;
                    }
                    if (S.Phase == EnginePhase.Settling)
                    {
                        SettleRefused(failed.Code, failed.Random);
                    }
                    else if (S.Phase == EnginePhase.Joined)
                    {
                        SubmitRefused(failed.Code, failed.Message, failed.Random);
                    }
                    return;
                case PresenceLocal presence:
                    S = S with { Selection = presence.Selection.ToImmutableArray() };
                    SchedulePresence();
                    return;
                case PresenceRemote presence:
                    if (TakePresence(presence.Message))
                    {
                        EmitPresence();
                    }
                    return;
                case UserChanged changed:
                    S = S with { User = changed.User };
                    SchedulePresence();
                    return;
                case Tick:
                    FireTimers();
                    return;
            }
        }

        // --- Connection and join ---

        /// <summary>Starts a session on the connection: join, resuming from Version unless <paramref name="resume"/> is false.</summary>
        private void Attach(bool resume)
        {
            Detach();
            S = S with { Session = S.Session + 1 };
            Join(resume);
        }

        /// <summary>Ends the session: what is unconfirmed is sent again after the next join. No result is taken while offline.</summary>
        private void Detach()
        {
            S = S with { Phase = EnginePhase.Offline, SentOpId = null, Retry = null };
            ClearTimer(TimerName.Gap);
            ClearTimer(TimerName.Retry);
            ClearTimer(TimerName.Presence);
        }

        private void Join(bool resume)
        {
            S = S with { Phase = EnginePhase.Joining, Resume = resume && !S.Settled };
            Command(new SendJoin(S.Session, new JoinRequest
            {
                DocId = S.DocId,
                ClientId = S.ClientId,
                // A text join names no type: absent means text.
                Type = T.Name == TextType.Instance.Name ? null : T.Name,
                SinceVersion = S.Resume && S.Version >= 0 && !S.Diverged ? S.Version : null,
                User = S.User,
            }));
        }

        /// <summary>The document joined is of another type than this one: leave it, and say so as the server would (<c>invalid_op</c>).</summary>
        private void RefuseType(string type)
        {
            var message = $"invalid_op: Document {S.DocId} is of type {type}, not {T.Name}; a document's type is fixed when it is created.";
            Detach();
            Command(new SendLeave(S.DocId));
            if (S.Version < 0)
            {
                Command(new FailOpen(ErrorCodes.InvalidOp, message));
            }
            Emit(new ErrorPayload(ErrorCodes.InvalidOp, message));
        }

        private void JoinFailed(string? code, string message, double random)
        {
            if (code == ErrorCodes.UnknownVersion && S.Resume)
            {
                Join(false);
            }
            else if (code is not null && ErrorCodes.RetryOf(code) != ErrorRetry.Never)
            {
                RetryLater(RetryAction.Join, random);
            }
            else if (code is not null)
            {
                // Refused for good (invalid_doc_id, forbidden, unauthorized): nothing to retry until the next connection.
                if (S.Version < 0)
                {
                    Command(new FailOpen(code, message));
                }
                Emit(new ErrorPayload(code, message));
            }
            // Without a code the connection failed: the shell sends Connected when it is back.
        }

        private void Joined(JoinResult result)
        {
            if (!string.IsNullOrEmpty(result.Redirect))
            {
                Detach();
                Command(new Redirect(result.Redirect));
                return;
            }
            var type = result.Type ?? "text";
            if (type != T.Name)
            {
                RefuseType(type);
                return;
            }
            S = S with { RetryDelayMs = 0, ReadOnly = result.ReadOnly };
            var resumed = S.Version >= 0;
            var whole = T.Joined(result);
            if (!resumed)
            {
                var text = whole ?? T.Empty;
                S = S with { Text = text, ServerText = text, Version = result.Version };
            }
            else if (S.Diverged)
            {
                // Only the whole text can be merged (a join without sinceVersion gets it).
                if (whole is null)
                {
                    Join(false);
                    return;
                }
                Reconcile(whole, result.Version);
            }
            else if (S.Resume && result.Version < S.Version)
            {
                Diverge($"The server answered a resume from version {S.Version} with version {result.Version}");
                return;
            }
            else if (result.Ops is not null)
            {
                foreach (var message in result.Ops)
                {
                    QueueOp(message);
                }
                if (!ApplyQueued())
                {
                    return;
                }
            }
            else if (whole is not null)
            {
                if (S.Resume && result.Version == S.Version && !T.DocEquals(whole, S.ServerText))
                {
                    Diverge($"The server's text at version {S.Version} is not the one this client knew");
                    return;
                }
                if (S.Sync.Outstanding is { } outstanding && S.EverSentOpId == outstanding.OpId)
                {
                    // The outstanding op may have been committed before the connection dropped, and the
                    // whole text cannot tell. Submitting it again with its op id settles it: the server
                    // either finds it committed or applies it now; either way it is in the server's text.
                    S = S with { Phase = EnginePhase.Settling };
                    Command(new SendSubmit(S.Session, Submission(outstanding)));
                    return;
                }
                Resync(whole, result.Version);
            }
            // Whatever was queued up to the joined version is in the text now.
            DropQueuedThrough(result.Version);
            if (S.Version < result.Version)
            {
                // The ops we were given did not reach the version joined: start again from the whole text.
                Join(false);
                return;
            }
            S = S with { Members = [], FuturePresence = [] };
            foreach (var message in result.Presence)
            {
                TakePresence(message);
            }
            S = S with { Phase = EnginePhase.Joined };
            EmitPresence();
            Emit(new JoinedPayload(S.Version, S.ReadOnly, resumed));
            Emit(new PendingPayload(S.Sync.PendingEdits));
            if (S.ReadOnly && S.Sync.Kind != ClientSyncState.Synchronized)
            {
                Revert();
            }
            Drain();
            Flush();
            if (S.Selection is not null)
            {
                SchedulePresence();
            }
        }

        /// <summary>
        /// The server sent its whole text instead of the missed ops. Reconcile the local edits with it
        /// as if the server's changes were one edit: the difference between the text we last knew
        /// and the server's. Edits in the same place may then merge less neatly than with real ops,
        /// but none is lost.
        /// </summary>
        private void Resync(TDoc serverText, int version)
        {
            var serverChange = T.Diff(S.ServerText, serverText);
            var (sync, op) = S.Sync.Rebase(serverChange, NewOpId);
            DropQueuedThrough(version);
            S = S with { Recent = [], Version = version, ServerText = serverText, Settled = false, Sync = sync };
            ApplyRemote(op, ChangeOrigin.Resync, null);
            Emit(new PendingPayload(S.Sync.PendingEdits));
        }

        /// <summary>
        /// The server has lost or changed edits this client had seen acknowledged (it is behind the
        /// version we know, or its text or ops do not fit ours). Say so, forget the queued ops
        /// (numbered in a history that is not the server's), and join again for the whole text, to be
        /// merged with the local text: nothing acknowledged is dropped and nothing throws.
        /// </summary>
        private void Diverge(string why)
        {
            Emit(new ErrorPayload(
                ErrorCodes.Diverged,
                $"{why}: the server has lost or changed edits this client had seen acknowledged. The document joins again and sends the text the server lacks as new edits."));
            S = S with { Diverged = true, Queue = S.Queue.Clear() };
            Attach(false);
        }

        /// <summary>
        /// The whole text of a server that diverged from what we knew: it becomes the base, and the
        /// local text it lacks (acknowledged edits it lost, and the pending edits) is sent again as one
        /// new op (<see cref="SyncState{TOp}.Reconcile"/>). The outstanding op is not settled first: it was
        /// made on a text the server does not have, and its text is in the local text anyway.
        /// </summary>
        private void Reconcile(TDoc serverText, int version)
        {
            var (restore, local) = T.Merge(serverText, S.Text);
            var (sync, op) = S.Sync.Reconcile(restore, local, NewOpId);
            DropQueuedThrough(version);
            S = S with
            {
                Diverged = false,
                Settled = false,
                EverSentOpId = null,
                Recent = [],
                Version = version,
                ServerText = serverText,
                Sync = sync,
            };
            ApplyRemote(op, ChangeOrigin.Resync, null);
            Emit(new PendingPayload(S.Sync.PendingEdits));
        }

        /// <summary>The resubmission of Settling was answered: the op is in the server's text; join again for that text.</summary>
        private void Settled(long opId)
        {
            if (S.Sync.Outstanding is not { } outstanding || outstanding.OpId != opId)
            {
                return;
            }
            var sync = S.Sync.ServerAck(NewOpId);
            S = S with { ServerText = T.Apply(S.ServerText, outstanding.Op), Settled = true, Sync = sync };
            Emit(new PendingPayload(S.Sync.PendingEdits));
            Join(false);
        }

        private void SettleRefused(string code, double random)
        {
            if (ErrorCodes.IsBeforeDuplicateCheck(code))
            {
                // Refused before the server looked for it: it may still be committed. Ask again later.
                S = S with { Phase = EnginePhase.Joining, Resume = false };
                RetryLater(RetryAction.Join, random);
                return;
            }
            // Refused after the duplicate check, so not committed: it goes with the other pending edits.
            S = S with { EverSentOpId = null };
            Join(false);
        }

        // --- Local edits and submitting ---

        private void LocalEdit(TOp op)
        {
            if (S.ReadOnly || T.IsNoop(op))
            {
                return;
            }
            S = S with { Text = T.Apply(S.Text, op) };
            MapMembers(op, null);
            var sync = S.Sync.ApplyClient(op, NewOpId);
            S = S with { Sync = sync };
            Emit(new PendingPayload(S.Sync.PendingEdits));
            Flush();
        }

        /// <summary>Sends the outstanding op if it has not been sent on this session yet.</summary>
        private void Flush()
        {
            if (S.Phase != EnginePhase.Joined || S.Sync.Outstanding is not { } outstanding || S.SentOpId == outstanding.OpId)
            {
                return;
            }
            S = S with { SentOpId = outstanding.OpId, EverSentOpId = outstanding.OpId };
            Command(new SendSubmit(S.Session, Submission(outstanding)));
        }

        private SubmitRequest Submission(SyncState<TOp>.OutstandingOp outstanding) =>
            T.Submission(S.DocId, S.Version, outstanding.Op, outstanding.OpId);

        private void Submitted(long opId, int version)
        {
            S = S with { RetryDelayMs = 0 };
            if (version > S.Version && !S.Queue.ContainsKey(version))
            {
                S = S with { Queue = S.Queue.SetItem(version, new QueuedAck(opId)) };
            }
            else if (version <= S.Version && S.Sync.Outstanding?.OpId == opId)
            {
                // Still outstanding, yet its version is one we applied as another op: our idea of the
                // server's text is wrong. Only the whole text can fix it.
                Attach(false);
                return;
            }
            Drain();
        }

        private void SubmitRefused(string code, string message, double random)
        {
            switch (ErrorCodes.RetryOf(code))
            {
                case ErrorRetry.Later:
                    RetryLater(RetryAction.Resubmit, random);
                    break;
                case ErrorRetry.Rejoin:
                    // not_joined: the server forgot the membership. unknown_version: it has no version we
                    // can name, which the application hears of. Either way: resume, keeping the edits.
                    if (code == ErrorCodes.UnknownVersion)
                    {
                        Emit(new ErrorPayload(code, message));
                    }
                    Attach(true);
                    break;
                default:
                    // forbidden, invalid_op, too_large: these edits will never be accepted.
                    if (code == ErrorCodes.Forbidden)
                    {
                        S = S with { ReadOnly = true };
                    }
                    Revert();
                    Emit(new ErrorPayload(code, message));
                    Attach(true);
                    break;
            }
        }

        /// <summary>Local edits the server will never accept: take them back so the text matches the server's.</summary>
        private void Revert()
        {
            var pending = S.Sync.PendingOp;
            S = S with { Sync = SyncState<TOp>.Synchronized(T) };
            ApplyRemote(T.Invert(pending, S.ServerText), ChangeOrigin.Revert, null);
            Emit(new PendingPayload(0));
        }

        private void RetryLater(RetryAction action, double random)
        {
            var delay = Math.Min(Math.Max(S.RetryDelayMs * 2, MinRetryDelayMs), MaxRetryDelayMs);
            S = S with { RetryDelayMs = delay, Retry = action };
            SetTimer(TimerName.Retry, S.NowMs + delay * (0.5 + random / 2));
        }

        /// <summary>Takes the next op id the shell gave; changes <see cref="S"/>, so a caller copying S calls it first.</summary>
        private long NewOpId()
        {
            if (S.OpIds.IsEmpty)
            {
                throw new InvalidOperationException("The engine has no op id left: the shell must keep OpIdReserve of them in OpIds.");
            }
            var id = S.OpIds[0];
            S = S with { OpIds = S.OpIds.RemoveAt(0) };
            return id;
        }

        // --- Server ops, in version order ---

        private void QueueOp(OpMessage message)
        {
            // An op replaces an acknowledgement of the same version: it says whose op it is.
            if (message.Version > S.Version && (!S.Queue.TryGetValue(message.Version, out var queued) || queued is not QueuedOp))
            {
                S = S with { Queue = S.Queue.SetItem(message.Version, new QueuedOp(message)) };
            }
        }

        private void DropQueuedThrough(int version)
        {
            if (!S.Queue.IsEmpty)
            {
                S = S with { Queue = S.Queue.RemoveRange(S.Queue.Keys.Where(v => v <= version)) };
            }
        }

        /// <summary>Applies queued ops and acknowledgements in version order while the next one is there; <paramref name="next"/> is the op after Version, if not queued.</summary>
        private void Drain(OpMessage? next = null)
        {
            var edits = S.Sync.PendingEdits;
            var kind = S.Sync.Kind;
            ApplyQueued(next);
            if (S.Sync.PendingEdits != edits || S.Sync.Kind != kind)
            {
                Emit(new PendingPayload(S.Sync.PendingEdits));
            }
            PlaceFuturePresence();
            // A version is missing: it should arrive, but if it does not, resume to fetch it.
            if (!S.Queue.IsEmpty && S.Phase != EnginePhase.Offline)
            {
                SetTimer(TimerName.Gap, S.NowMs + GapTimeoutMs);
            }
            else
            {
                ClearTimer(TimerName.Gap);
            }
        }

        /// <summary>False when the queue turned out wrong and a new session was started instead.</summary>
        private bool ApplyQueued(OpMessage? first = null)
        {
            for (var given = first; ; given = null)
            {
                // The slot after Version: another member's op, or ours (its Op, or the Submit result naming it).
                var message = given;
                long? ackOpId = null;
                if (message is null)
                {
                    if (!S.Queue.TryGetValue(S.Version + 1, out var queued))
                    {
                        return true;
                    }
                    S = S with { Queue = S.Queue.Remove(S.Version + 1) };
                    if (queued is QueuedOp op)
                    {
                        message = op.Message;
                    }
                    else
                    {
                        ackOpId = ((QueuedAck)queued).OpId;
                    }
                }
                var outstanding = S.Sync.Outstanding;
                var own = message is not null
                    ? message.ClientId == S.ClientId && message.OpId == outstanding?.OpId
                    : ackOpId == outstanding?.OpId;
                if (own && outstanding is not null)
                {
                    var sync = S.Sync.ServerAck(NewOpId);
                    // With nothing left pending the local text is the server's.
                    var serverText = sync.Kind == ClientSyncState.Synchronized ? S.Text : T.Apply(S.ServerText, outstanding.Op);
                    S = S with { Version = S.Version + 1, ServerText = serverText, Recent = Remember(S.Version + 1, outstanding.Op), Sync = sync, SentOpId = null };
                    Flush();
                    if (S.PresenceApproximate && S.Sync.Kind == ClientSyncState.Synchronized)
                    {
                        SchedulePresence();
                    }
                }
                else if (message is not null)
                {
                    var (serverOp, error) = T.Read(message);
                    if (serverOp is null)
                    {
                        Diverge($"Op {message.Version} is not a valid op ({error})");
                        return false;
                    }
                    if (T.BaseLength(serverOp) > T.Length(S.ServerText))
                    {
                        Diverge($"Op {message.Version} runs {T.BaseLength(serverOp)} code units, past the end of the text of version {S.Version} (length {T.Length(S.ServerText)})");
                        return false;
                    }
                    var wasSynchronized = S.Sync.Kind == ClientSyncState.Synchronized;
                    var (sync, op) = S.Sync.ApplyServer(serverOp);
                    S = S with { Sync = sync, Version = S.Version + 1, ServerText = T.Apply(S.ServerText, serverOp), Recent = Remember(S.Version + 1, serverOp) };
                    // Nothing pending: the local text was the server's and op is the server's op, so the
                    // local text is the new server text.
                    ApplyRemote(op, ChangeOrigin.Remote, message.ClientId, wasSynchronized ? S.ServerText : null);
                }
                else
                {
                    // An acknowledgement of an op that is not outstanding (left from an older history, as
                    // after a delete): the text is no longer known, so start again from the server's.
                    S = S with { Queue = S.Queue.Clear() };
                    if (S.Phase != EnginePhase.Offline)
                    {
                        Attach(false);
                    }
                    return false;
                }
            }
        }

        /// <summary><paramref name="after"/> is the local text after <paramref name="op"/> when the caller has it already.</summary>
        private void ApplyRemote(TOp op, ChangeOrigin origin, string? clientId, TDoc? after = null)
        {
            if (T.IsNoop(op))
            {
                return;
            }
            // Our own selection is kept in local positions too: move it with the text (the others
            // map it themselves, so this is not news to send).
            S = S with
            {
                Text = after ?? T.Apply(S.Text, op),
                Selection = S.Selection?.Select(r => new SelectedRange(T.TransformPosition(op, r.Anchor), T.TransformPosition(op, r.Head))).ToImmutableArray(),
            };
            MapMembers(op, clientId);
            Command(T.Changed(op, origin, clientId));
        }

        /// <summary>Recent with the op of <paramref name="version"/> added. Its versions are consecutive: the oldest goes once it is PresenceHistory behind.</summary>
        private ImmutableQueue<RecentOp<TOp>> Remember(int version, TOp op)
        {
            var recent = S.Recent.Enqueue(new RecentOp<TOp>(version, op));
            return recent.Peek().Version <= version - PresenceHistory ? recent.Dequeue() : recent;
        }

        // --- Presence ---

        private void SchedulePresence()
        {
            if (S.Timers.ContainsKey(TimerName.Presence) || S.Phase != EnginePhase.Joined)
            {
                return;
            }
            SetTimer(TimerName.Presence, S.LastPresenceMs is { } last ? Math.Max(S.NowMs, last + PresenceIntervalMs) : S.NowMs);
        }

        private void SendPresence()
        {
            if (S.Phase != EnginePhase.Joined)
            {
                return;
            }
            // The server reads positions in its text at Version: map them back through the pending edits.
            var pending = S.Sync.PendingOp;
            S = S with { LastPresenceMs = S.NowMs, PresenceApproximate = !T.IsNoop(pending) };
            var selection = (S.Selection ?? ImmutableArray<SelectedRange>.Empty).Select(r => new SelectionRange
            {
                Anchor = T.TransformPositionBack(pending, r.Anchor),
                Head = T.TransformPositionBack(pending, r.Head),
            });
            Command(new SendPresence(new PresenceRequest { DocId = S.DocId, Version = S.Version, Selection = [.. selection], User = S.User }));
        }

        /// <summary>Takes a member's presence; returns whether the members changed.</summary>
        private bool TakePresence(PresenceMessage message)
        {
            if (message.ClientId == S.ClientId)
            {
                return false;
            }
            if (message.Selection is null)
            {
                S = S with { FuturePresence = S.FuturePresence.RemoveAll(m => m.ClientId == message.ClientId) };
                var index = S.Members.FindIndex(m => m.ClientId == message.ClientId);
                if (index < 0)
                {
                    return false;
                }
                S = S with { Members = S.Members.RemoveAt(index) };
                return true;
            }
            if (message.Version > S.Version)
            {
                S = S with { FuturePresence = SetByClient(S.FuturePresence, message, m => m.ClientId) };
                return false;
            }
            PlacePresence(message);
            return true;
        }

        private void PlaceFuturePresence()
        {
            if (S.FuturePresence.IsEmpty)
            {
                return;
            }
            var due = S.FuturePresence.Where(m => m.Version <= S.Version).ToList();
            if (due.Count == 0)
            {
                return;
            }
            S = S with { FuturePresence = S.FuturePresence.RemoveRange(due) };
            foreach (var message in due)
            {
                PlacePresence(message);
            }
            EmitPresence();
        }

        /// <summary>Maps a presence message's selection from its version to the local text and stores it.</summary>
        private void PlacePresence(PresenceMessage message)
        {
            var ops = new List<TOp>();
            var oldest = S.Recent.IsEmpty ? S.Version + 1 : S.Recent.Peek().Version;
            if (message.Version >= oldest - 1)
            {
                ops.AddRange(S.Recent.Where(r => r.Version > message.Version).Select(r => r.Op));
            }
            ops.Add(S.Sync.PendingOp);
            var length = T.Length(S.Text);
            int Map(int p)
            {
                foreach (var op in ops)
                {
                    p = T.TransformPosition(op, p);
                }
                return Math.Clamp(p, 0, length);
            }
            var previous = S.Members.Find(m => m.ClientId == message.ClientId);
            var member = new Member(
                message.ClientId,
                message.User ?? previous?.User ?? new UserInfo { Name = "", Color = "" },
                [.. (message.Selection ?? []).Select(r => new SelectedRange(Map(r.Anchor), Map(r.Head)))]);
            S = S with { Members = SetByClient(S.Members, member, m => m.ClientId) };
        }

        /// <summary>Moves the members' selections through a change of the local text. The author's cursor moves past its own insert.</summary>
        private void MapMembers(TOp op, string? author)
        {
            if (S.Members.IsEmpty)
            {
                return;
            }
            S = S with
            {
                Members = S.Members.ConvertAll(m =>
                {
                    if (m.Selection.IsEmpty)
                    {
                        return m;
                    }
                    var stick = m.ClientId == author;
                    return m with
                    {
                        Selection = m.Selection.Select(r => new SelectedRange(T.TransformPosition(op, r.Anchor, stick), T.TransformPosition(op, r.Head, stick))).ToImmutableArray(),
                    };
                }),
            };
            EmitPresence();
        }

        private void EmitPresence() => Emit(new PresencePayload(S.Members));

        // --- Timers ---

        private void SetTimer(TimerName name, double dueMs)
        {
            S = S with { Timers = S.Timers.SetItem(name, dueMs) };
            Command(new SetTimer(name, dueMs));
        }

        private void ClearTimer(TimerName name)
        {
            if (!S.Timers.ContainsKey(name))
            {
                return;
            }
            S = S with { Timers = S.Timers.Remove(name) };
            Command(new ClearTimer(name));
        }

        /// <summary>Fires every timer due by now, earliest first, gap before retry before presence when due together (one may clear the others).</summary>
        private void FireTimers()
        {
            while (true)
            {
                TimerName? name = null;
                foreach (var candidate in s_timers)
                {
                    if (S.Timers.TryGetValue(candidate, out var due) && due <= S.NowMs && (name is null || due < S.Timers[name.Value]))
                    {
                        name = candidate;
                    }
                }
                if (name is null)
                {
                    return;
                }
                S = S with { Timers = S.Timers.Remove(name.Value) };
                switch (name.Value)
                {
                    case TimerName.Gap:
                        Attach(true);
                        break;
                    case TimerName.Retry:
                    {
                        var action = S.Retry;
                        S = S with { Retry = null };
                        if (action == RetryAction.Join)
                        {
                            Join(S.Resume);
                        }
                        else if (action == RetryAction.Resubmit)
                        {
                            S = S with { SentOpId = null };
                            Flush();
                        }
                        break;
                    }
                    default:
                        SendPresence();
                        break;
                }
            }
        }

        private void Emit(EmitPayload payload) => Command(new Emit(payload));

        private void Command(EngineCommand command) => (Out ??= []).Add(command);
    }

    /// <summary>Replaces the item of that client in place, or appends it: the order is the order each client was first set.</summary>
    private static ImmutableList<T> SetByClient<T>(ImmutableList<T> list, T item, Func<T, string> clientId)
    {
        var index = list.FindIndex(x => clientId(x) == clientId(item));
        return index >= 0 ? list.SetItem(index, item) : list.Add(item);
    }

    /// <summary>
    /// Maps a position in the text after <paramref name="op"/> back to the text before it. A
    /// position inside inserted text maps to where the insert happened.
    /// </summary>
    public static int TransformPositionBack(TextOperation op, int position)
    {
        var before = 0;
        var after = 0;
        foreach (var c in op.Components)
        {
            if (c.IsInsert)
            {
                if (position <= after + c.Text!.Length)
                {
                    return before;
                }
                after += c.Text.Length;
            }
            else if (c.IsRetain)
            {
                if (position <= after + c.Count)
                {
                    return before + (position - after);
                }
                before += c.Count;
                after += c.Count;
            }
            else
            {
                before -= c.Count;
            }
        }
        return before + (position - after);
    }
}

/// <summary>
/// Where the document stands with the server: offline (no connection), joining (connected, not
/// joined: a Join is in flight or waits for the retry timer), settling (a whole-text join came
/// while an op sent before may be committed: that op is submitted again to learn so, before
/// joining again), joined (ops apply, edits are sent).
/// </summary>
internal enum EnginePhase
{
    Offline,
    Joining,
    Settling,
    Joined,
}

/// <summary>The engine's timers; a <see cref="Tick"/> fires those due.</summary>
internal enum TimerName
{
    Gap,
    Retry,
    Presence,
}

/// <summary>What the retry timer does: join again (with <see cref="EngineState{TDoc, TOp}.Resume"/>), or submit the outstanding op again.</summary>
internal enum RetryAction
{
    Join,
    Resubmit,
}

/// <summary>An op or an acknowledgement waiting for its version's turn.</summary>
internal abstract record Queued;

/// <summary>An Op message, applied once the versions before it are.</summary>
internal sealed record QueuedOp(OpMessage Message) : Queued;

/// <summary>A Submit result: the op <paramref name="OpId"/> is at this version.</summary>
internal sealed record QueuedAck(long OpId) : Queued;

/// <summary>A server op kept to map presence made at an older version.</summary>
internal sealed record RecentOp<TOp>(int Version, TOp Op);

/// <summary>One selection range: positions in a text.</summary>
internal readonly record struct SelectedRange(int Anchor, int Head);

/// <summary>Another member of the document, with its selection in the local text (empty when present without a cursor).</summary>
internal sealed record Member(string ClientId, UserInfo User, ImmutableArray<SelectedRange> Selection);

/// <summary>
/// The state of one document's engine. Immutable: a step returns a new one. The messages it holds
/// (<see cref="UserInfo"/>, <see cref="OpMessage"/>, <see cref="PresenceMessage"/>) are never
/// changed by the engine, and the shell gives up those it passes in events.
/// </summary>
internal record EngineState<TDoc, TOp> : IEngineState
    where TDoc : class
    where TOp : class
{
    /// <summary>The state of a document of <paramref name="type"/> before <see cref="Open"/>.</summary>
    public EngineState(IDocType<TDoc, TOp> type)
    {
        Type = type;
        Text = type.Empty;
        ServerText = type.Empty;
        Sync = SyncState<TOp>.Synchronized(type);
    }

    /// <summary>The document's type, fixed when the document is opened.</summary>
    public IDocType<TDoc, TOp> Type { get; }

    int IEngineState.Length => Type.Length(Text);

    ClientSyncState IEngineState.SyncKind => Sync.Kind;

    int IEngineState.PendingEdits => Sync.PendingEdits;

    int IEngineState.PendingOps => (Sync.Outstanding is null ? 0 : 1) + (Sync.Buffer is null ? 0 : 1);

    string IEngineState.Debug =>
        $"version={Version} phase={Phase} session={Session} sync={Sync.Kind} opId={Sync.Outstanding?.OpId} sent={SentOpId} everSent={EverSentOpId} "
        + $"diverged={Diverged} queue=[{string.Join(",", Queue.Keys.Order())}] timers=[{string.Join(",", Timers.Keys)}]";

    (IEngineState State, IReadOnlyList<EngineCommand> Commands) IEngineState.Step(EngineEvent @event) => SyncEngine.Step(this, @event);

    public string DocId { get; init; } = "";

    public string ClientId { get; init; } = "";

    public UserInfo? User { get; init; }

    /// <summary>The latest NowMs an event carried.</summary>
    public double NowMs { get; init; }

    public bool Closed { get; init; }

    /// <summary>The local text: <see cref="ServerText"/> with the pending edits (<see cref="Sync"/>) applied.</summary>
    public TDoc Text { get; init; }

    /// <summary>The server's text at <see cref="Version"/>.</summary>
    public TDoc ServerText { get; init; }

    /// <summary>The version <see cref="ServerText"/> is; -1 before the first join.</summary>
    public int Version { get; init; } = -1;

    public bool ReadOnly { get; init; }

    /// <summary>The unconfirmed local edits; the outstanding op applies to <see cref="ServerText"/>.</summary>
    public SyncState<TOp> Sync { get; init; }

    /// <summary>Op ids given by the shell, not used yet; taken from the front.</summary>
    public ImmutableList<long> OpIds { get; init; } = [];

    public int Session { get; init; }

    public EnginePhase Phase { get; init; } = EnginePhase.Offline;

    /// <summary>Whether this session's Join resumes (asks with sinceVersion once a version is known); a retry asks the same.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>The op id submitted on this session, so it is not sent twice.</summary>
    public long? SentOpId { get; init; }

    /// <summary>The last op id submitted on any session: until confirmed it may or may not be committed.</summary>
    public long? EverSentOpId { get; init; }

    /// <summary>Ops and acknowledgements after <see cref="Version"/>, by version, applied once the versions before them are.</summary>
    public ImmutableDictionary<int, Queued> Queue { get; init; } = ImmutableDictionary<int, Queued>.Empty;

    /// <summary>The last <see cref="SyncEngine.PresenceHistory"/> server ops, oldest first.</summary>
    public ImmutableQueue<RecentOp<TOp>> Recent { get; init; } = [];

    /// <summary>The other members, their selections in <see cref="Text"/>, in the order each was placed since the last join.</summary>
    public ImmutableList<Member> Members { get; init; } = [];

    /// <summary>Presence made at a version after <see cref="Version"/>, one per member, placed once it is reached.</summary>
    public ImmutableList<PresenceMessage> FuturePresence { get; init; } = [];

    /// <summary>This member's selection in <see cref="Text"/>, once set.</summary>
    public ImmutableArray<SelectedRange>? Selection { get; init; }

    /// <summary>Whether the last presence sent was mapped back through pending edits (and is to be sent again once they are confirmed).</summary>
    public bool PresenceApproximate { get; init; }

    public double? LastPresenceMs { get; init; }

    /// <summary>The due time of each timer that is set.</summary>
    public ImmutableDictionary<TimerName, double> Timers { get; init; } = ImmutableDictionary<TimerName, double>.Empty;

    public double RetryDelayMs { get; init; }

    /// <summary>What the retry timer does, while it is set.</summary>
    public RetryAction? Retry { get; init; }

    /// <summary>
    /// The server has lost or changed edits this client had seen acknowledged, so its text is not
    /// <see cref="ServerText"/>: the next join asks for the whole text and merges the local text into
    /// it (<see cref="SyncState{TOp}.Reconcile"/>) instead of rebasing onto the difference from ServerText.
    /// </summary>
    public bool Diverged { get; init; }

    /// <summary>
    /// The outstanding op was settled (its resubmission answered) and is in <see cref="ServerText"/>,
    /// while <see cref="Version"/> is still the one before it: ops since Version would bring it again,
    /// so until a whole text is adopted every join asks for the whole text.
    /// </summary>
    public bool Settled { get; init; }
}

/// <summary>The engine state of a text document: <see cref="Rope"/>s and <see cref="TextOperation"/>s.</summary>
internal sealed record EngineState() : EngineState<Rope, TextOperation>(TextType.Instance)
{
    /// <summary>The state before <see cref="Open"/>.</summary>
    public static readonly EngineState Initial = new();
}

/// <summary>
/// An engine state whatever its document type, as the shell reads it: all but the documents and
/// ops, and a step (<see cref="SyncEngine.Step{TDoc, TOp}"/>) that keeps the state's type.
/// </summary>
internal interface IEngineState
{
    ImmutableList<long> OpIds { get; }

    EnginePhase Phase { get; }

    int Session { get; }

    int Version { get; }

    bool ReadOnly { get; }

    bool Closed { get; }

    bool Settled { get; }

    /// <summary>The length of the local document, in its type's positions.</summary>
    int Length { get; }

    /// <summary>Which of the three client states the unconfirmed edits are in.</summary>
    ClientSyncState SyncKind { get; }

    /// <summary>How many local edits are not yet confirmed.</summary>
    int PendingEdits { get; }

    /// <summary>How many ops are not yet confirmed: the outstanding one and the buffer.</summary>
    int PendingOps { get; }

    /// <summary>The engine's state in one line, for test failure messages.</summary>
    string Debug { get; }

    /// <summary><see cref="SyncEngine.Step{TDoc, TOp}"/> of this state.</summary>
    (IEngineState State, IReadOnlyList<EngineCommand> Commands) Step(EngineEvent @event);
}
