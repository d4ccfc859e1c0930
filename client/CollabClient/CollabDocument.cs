using System.Collections.Immutable;
using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;
using Microsoft.Extensions.Logging;

namespace Collab.Client;

/// <summary>
/// One open document: its text as this client sees it (the server's text plus this client's
/// unconfirmed edits), kept in sync with the server by operational transformation. Local edits
/// apply at once; the document sends them, reconnects, resumes and resubmits on its own.
/// </summary>
/// <remarks>
/// <para>All members are thread-safe. Events are raised outside the document's lock, one at a
/// time and in the order the changes happened, on the thread that made the change or received
/// the message (for remote changes: a SignalR receive loop, so keep handlers short). A handler
/// may edit the document; the event for that edit is raised after the handler returns.</para>
/// <para>The partial files: this one holds the public surface and local edits;
/// <c>CollabDocument.Sync.cs</c> the OT client state machine and the ordering of server ops;
/// <c>CollabDocument.Join.cs</c> the I/O (joining, resuming, submitting) and its error handling.</para>
/// </remarks>
public sealed partial class CollabDocument : IAsyncDisposable
{
    // Lock discipline: _gate guards every field below. Nothing is awaited, no other lock is
    // taken and no user code runs while it is held; I/O and events happen in Flush, after it.
    private readonly object _gate = new();
    private readonly string _clientId;
    private readonly UserInfo? _user;
    private readonly Func<long> _nextOpId;
    private readonly ILogger _logger;
    private readonly TimeSpan _minRetryDelay;
    private readonly TimeSpan _maxRetryDelay;
    private readonly Action<CollabDocument>? _onDisposed;
    // Retry waits; tests substitute a deterministic clock.
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly Queue<Action> _events = new();

    private IDocumentTransport _transport;
    // The local text, edited in place; Text and TextRope are snapshots of it, built on demand
    // and kept until the next change (null = stale).
    private readonly TextBuffer _text = new();
    private string? _textCache = "";
    private Rope? _textRope = Rope.Empty;
    private bool _readOnly;
    private bool _disposed;
    private bool _dispatching;
    private ConnectionState _reportedState = ConnectionState.Reconnecting;
    private ImmutableDictionary<string, PresenceMessage> _presence = ImmutableDictionary<string, PresenceMessage>.Empty.WithComparers(StringComparer.Ordinal);
    private List<TaskCompletionSource>? _syncWaiters;

    internal CollabDocument(
        string docId,
        string clientId,
        UserInfo? user,
        IDocumentTransport transport,
        Func<long> nextOpId,
        ILogger logger,
        TimeSpan minRetryDelay,
        TimeSpan maxRetryDelay,
        Action<CollabDocument>? onDisposed = null,
        Func<TimeSpan, CancellationToken, Task>? delay = null)
    {
        DocId = docId;
        _clientId = clientId;
        _user = user;
        _transport = transport;
        _nextOpId = nextOpId;
        _logger = logger;
        _minRetryDelay = minRetryDelay;
        _maxRetryDelay = maxRetryDelay;
        _onDisposed = onDisposed;
        _delay = delay ?? Task.Delay;
        // The initial join (JoinInitialAsync) owns the join loop until it has a result.
        _joinLoopRunning = true;
    }

    /// <summary>The document's id.</summary>
    public string DocId { get; }

    /// <summary>
    /// The current local text: the server's text at <see cref="Version"/> with this client's
    /// unconfirmed edits applied.
    /// </summary>
    /// <remarks>
    /// The document keeps its text in a mutable buffer, so the string is a snapshot: the first
    /// read after a change builds it, O(n) time and 2n bytes (20 MB for a 10 MB document); later
    /// reads return the same string until the next change.
    /// </remarks>
    public string Text
    {
        get
        {
            lock (_gate)
            {
                return _textCache ??= _text.ToString();
            }
        }
    }

    /// <summary>
    /// The local text as a rope: immutable, and a new instance after every change, so it also
    /// identifies the text an edit was computed on (see <see cref="TryApply"/>).
    /// </summary>
    /// <remarks>
    /// A snapshot like <see cref="Text"/>: the first read after a change builds the string and a
    /// rope from it, O(n) time and about 4n bytes (40 MB for a 10 MB document); later reads return
    /// the same instance until the next change. To learn the length alone, prefer an edit that
    /// does not need it, or read it once per change.
    /// </remarks>
    public Rope TextRope
    {
        get
        {
            lock (_gate)
            {
                return TextRopeLocked();
            }
        }
    }

    /// <summary>The length of the local text in UTF-16 code units: O(1), without building <see cref="Text"/> or <see cref="TextRope"/>.</summary>
    public int Length
    {
        get
        {
            lock (_gate)
            {
                return _text.Length;
            }
        }
    }

    /// <summary>The last server version applied: the number of server ops this text accounts for.</summary>
    public int Version
    {
        get
        {
            lock (_gate)
            {
                return _version;
            }
        }
    }

    /// <summary>Whether this client may only read the document; local edits then throw.</summary>
    public bool ReadOnly
    {
        get
        {
            lock (_gate)
            {
                return _readOnly;
            }
        }
    }

    /// <summary>Unconfirmed local operations: 0, 1 (in flight) or 2 (in flight and a buffer of later edits).</summary>
    public int PendingOps
    {
        get
        {
            lock (_gate)
            {
                return (_sync.Outstanding is null ? 0 : 1) + (_sync.Buffer is null ? 0 : 1);
            }
        }
    }

    /// <summary>Whether some local edit is not yet confirmed by the server.</summary>
    public bool HasUnconfirmedChanges
    {
        get
        {
            lock (_gate)
            {
                return _sync.Kind != ClientSyncState.Synchronized;
            }
        }
    }

    /// <summary>
    /// Connected while the document is joined; Reconnecting while the connection is down or the
    /// document is joining again; Disconnected after disposal, or when the server refused the
    /// connection or the join for good (<c>unauthorized</c>, <c>forbidden</c>, a refused origin:
    /// <see cref="Error"/> says why). Then nothing is retried until <see cref="ReconnectNow"/>.
    /// </summary>
    public ConnectionState ConnectionState
    {
        get
        {
            lock (_gate)
            {
                return _reportedState;
            }
        }
    }

    /// <summary>
    /// The other members' presence, by client id, as last received. Their selections are
    /// positions in the document at each message's <see cref="PresenceMessage.Version"/>.
    /// </summary>
    public IReadOnlyDictionary<string, PresenceMessage> Presence
    {
        get
        {
            lock (_gate)
            {
                return _presence;
            }
        }
    }

    /// <summary>The server's text at <see cref="Version"/>, without pending local edits; for tests, built on each read.</summary>
    internal Rope ServerText
    {
        get
        {
            lock (_gate)
            {
                return Rope.FromString(_serverText.ToString());
            }
        }
    }

    /// <summary>The internal state in one line, for test failure messages.</summary>
    internal string DebugState
    {
        get
        {
            lock (_gate)
            {
                return $"version={_version} state={_sync.Kind} opId={_sync.Outstanding?.OpId} everSent={_everSentOpId} sent={_inflightSent} ack={_inflightAck} outstanding={_outstandingSubmit} buffer={_sync.Buffer is not null} settled={_settledOp is not null} "
                    + $"phase={_phase} pendingJoin={_pendingJoin} joinLoop={_joinLoopRunning} failed={_failed} resend={_resendScheduled} "
                    + $"early=[{string.Join(",", _early.Keys)}] held={_held.Count} transport={_transport.State}";
            }
        }
    }

    internal ClientSyncState SyncState
    {
        get
        {
            lock (_gate)
            {
                return _sync.Kind;
            }
        }
    }

    /// <summary>Raised after the local text changed, by a local edit or a remote one.</summary>
    public event EventHandler<DocumentChangedEventArgs>? Changed;

    /// <summary>Raised when another member's presence changed; a null selection means the member left.</summary>
    public event EventHandler<PresenceMessage>? PresenceChanged;

    /// <summary>
    /// Raised when the server reset the document (after a restore, a delete, or a move to another
    /// node). The document joins again on its own; the text change follows as a <see cref="Changed"/> event.
    /// </summary>
    public event EventHandler<ResetMessage>? Reset;

    /// <summary>
    /// Raised for an error the document handled on its own, such as a rejected submission, and when
    /// the server refused its connection or its join for good (then <see cref="ConnectionState"/> is
    /// Disconnected and the error's <see cref="CollabException.IsRetryable"/> false: fix the cause,
    /// for example get a new token, and call <see cref="ReconnectNow"/>).
    /// </summary>
    public event EventHandler<CollabErrorEventArgs>? Error;

    /// <summary>Raised when <see cref="ConnectionState"/> changed.</summary>
    public event EventHandler<ConnectionStateChangedEventArgs>? ConnectionStateChanged;

    /// <summary>Applies a local edit at once and sends it to the server.</summary>
    /// <param name="operation">An operation on the current <see cref="Text"/>.</param>
    /// <exception cref="ArgumentException">The operation does not apply to the current text.</exception>
    /// <exception cref="InvalidOperationException">The document is read-only.</exception>
    /// <exception cref="ObjectDisposedException">The document was disposed.</exception>
    public void Apply(TextOperation operation) => TryApply(operation, basedOn: null);

    /// <summary>
    /// Applies a local edit only if the local text is still <paramref name="basedOn"/> (a
    /// <see cref="TextRope"/> read earlier): remote changes arrive on other threads, so an edit
    /// computed from a text read before them could land somewhere else than meant.
    /// </summary>
    /// <returns>False, changing nothing, if the text changed since <paramref name="basedOn"/> was read; read it again and retry.</returns>
    /// <exception cref="ArgumentException">The operation does not apply to the current text.</exception>
    /// <exception cref="InvalidOperationException">The document is read-only.</exception>
    /// <exception cref="ObjectDisposedException">The document was disposed.</exception>
    public bool TryApply(TextOperation operation, Rope? basedOn)
    {
        ArgumentNullException.ThrowIfNull(operation);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // _textRope is null after a change, so a rope read before it never matches.
            if (basedOn is not null && !ReferenceEquals(basedOn, _textRope))
            {
                return false;
            }
            if (_readOnly)
            {
                throw new InvalidOperationException($"Document '{DocId}' is read-only for this client.");
            }
            if (operation.Error is not null)
            {
                throw new ArgumentException($"The operation is malformed: {operation.Error}.", nameof(operation));
            }
            if (_text.Validate(operation) is { } reason)
            {
                throw new ArgumentException($"The operation does not apply to the document: {reason}.", nameof(operation));
            }
            if (operation.IsNoop)
            {
                return true;
            }
            _text.Apply(operation);
            TextChangedLocked();
            ApplyLocalLocked(operation);
            Enqueue(new DocumentChangedEventArgs(operation, isLocal: true, clientId: null));
        }
        Flush();
        return true;
    }

    /// <summary>Inserts <paramref name="text"/> at <paramref name="position"/> of the local text.</summary>
    /// <exception cref="ArgumentException">The position is outside the text or splits a surrogate pair, or the text has a lone surrogate.</exception>
    public void Insert(int position, string text) => Replace(position, 0, text);

    /// <summary>Deletes <paramref name="length"/> code units at <paramref name="position"/> of the local text.</summary>
    /// <exception cref="ArgumentException">The range is outside the text or splits a surrogate pair.</exception>
    public void Delete(int position, int length) => Replace(position, length, "");

    /// <summary>Replaces <paramref name="length"/> code units at <paramref name="position"/> with <paramref name="text"/>.</summary>
    /// <exception cref="ArgumentException">The range is outside the text or splits a surrogate pair, or the text has a lone surrogate.</exception>
    public void Replace(int position, int length, string text)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentNullException.ThrowIfNull(text);
        var op = new TextOperation.Builder().Retain(position).Insert(text).Delete(length).Build();
        if (op.IsNoop)
        {
            // Nothing to do, but an out-of-range position is still the caller's mistake.
            lock (_gate)
            {
                ArgumentOutOfRangeException.ThrowIfGreaterThan(position, _text.Length);
            }
            return;
        }
        Apply(op);
    }

    /// <summary>
    /// Sends this client's selection to the other members. Positions are in the current local
    /// text; they are mapped to the server's version before sending. While the document is not
    /// joined the call does nothing (presence is not durable; send it again after a reconnect).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A position is outside the text.</exception>
    /// <exception cref="CollabException">The server refused the presence update.</exception>
    public async Task SetSelectionAsync(IReadOnlyList<SelectionRange> selection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(selection);
        PresenceRequest request;
        IDocumentTransport transport;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var range in selection)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(range.Anchor, nameof(selection));
                ArgumentOutOfRangeException.ThrowIfNegative(range.Head, nameof(selection));
                ArgumentOutOfRangeException.ThrowIfGreaterThan(range.Anchor, _text.Length, nameof(selection));
                ArgumentOutOfRangeException.ThrowIfGreaterThan(range.Head, _text.Length, nameof(selection));
            }
            if (_phase != JoinPhase.Joined)
            {
                return;
            }
            // The server reads positions in its text at Version: undo our pending ops on them.
            var toServer = PendingLocked() is { } pending ? _serverText.Invert(pending) : null;
            var mapped = new List<SelectionRange>(selection.Count);
            foreach (var range in selection)
            {
                mapped.Add(new SelectionRange
                {
                    Anchor = toServer?.TransformPosition(range.Anchor) ?? range.Anchor,
                    Head = toServer?.TransformPosition(range.Head) ?? range.Head,
                });
            }
            request = new PresenceRequest { DocId = DocId, Version = _version, Selection = mapped, User = _user };
            transport = _transport;
        }
        try
        {
            await transport.SetPresenceAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Microsoft.AspNetCore.SignalR.HubException ex)
        {
            throw CollabException.FromHubError(ex);
        }
    }

    /// <summary>
    /// Tries again now: after the server refused the connection or the join for good
    /// (<see cref="ConnectionState"/> Disconnected, see <see cref="Error"/>), reconnects (asking the
    /// token provider again) and joins; while reconnecting, attempts at once instead of waiting.
    /// Connected, it does nothing. The outcome shows in <see cref="ConnectionStateChanged"/>, or in
    /// <see cref="Error"/> if the server refuses again. Unconfirmed local edits are kept meanwhile.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The document was disposed.</exception>
    public void ReconnectNow()
    {
        IDocumentTransport transport;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            transport = _transport;
            if (_failed && transport.State == ConnectionState.Connected)
            {
                // The join was refused for good: ask again.
                _failed = false;
                RequestJoinLocked(_pendingJoin == JoinKind.None ? JoinKind.Resume : _pendingJoin);
            }
        }
        if (transport.State != ConnectionState.Connected)
        {
            transport.ReconnectNow();
        }
        Flush();
    }

    /// <summary>
    /// Completes when the server has confirmed every local edit made so far (nothing in flight,
    /// nothing buffered). Later edits start a new wait.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The document was disposed before that.</exception>
    public Task WhenSynchronizedAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_sync.Kind == ClientSyncState.Synchronized)
            {
                return Task.CompletedTask;
            }
            var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (_syncWaiters ??= []).Add(waiter);
            return waiter.Task.WaitAsync(cancellationToken);
        }
    }

    /// <summary>
    /// Leaves the document and stops receiving its changes. Unconfirmed local edits may be lost;
    /// await <see cref="WhenSynchronizedAsync"/> first to keep them.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        IDocumentTransport transport;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            transport = _transport;
            if (_syncWaiters is { } waiters)
            {
                _syncWaiters = null;
                foreach (var waiter in waiters)
                {
                    waiter.TrySetException(new ObjectDisposedException(nameof(CollabDocument)));
                }
            }
            UpdateStateLocked();
        }
        DispatchEvents();
        _disposeCts.Cancel();
        if (transport.State == ConnectionState.Connected)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                await transport.LeaveAsync(DocId, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Best effort: the server drops the membership with the connection anyway.
                Log.LeaveFailed(_logger, DocId, ex);
            }
        }
        transport.Detach(this);
        _onDisposed?.Invoke(this);
    }

    /// <summary>Runs the work a state change left for after the lock: sends, joins, then events.</summary>
    private void Flush()
    {
        PendingSubmit? submit;
        bool startJoin;
        lock (_gate)
        {
            submit = TakeSubmitLocked();
            startJoin = TakeJoinStartLocked();
        }
        if (startJoin)
        {
            _ = RunJoinLoopAsync();
        }
        if (submit is not null)
        {
            _ = SendSubmitAsync(submit);
        }
        DispatchEvents();
    }

    /// <summary>The local text changed: its snapshots are stale.</summary>
    private void TextChangedLocked()
    {
        _textCache = null;
        _textRope = null;
    }

    private Rope TextRopeLocked()
    {
        if (_textRope is null)
        {
            var text = _textCache ??= _text.ToString();
            // Rope.FromString("") is the shared Rope.Empty, which a caller may hold from an earlier
            // empty text; an emptied text gets an instance of its own, as every change does.
            _textRope = text.Length == 0 ? Rope.FromString("-").Delete(0, 1) : Rope.FromString(text);
        }
        return _textRope;
    }

    private void Enqueue(DocumentChangedEventArgs args) => _events.Enqueue(() => Changed?.Invoke(this, args));

    private void Enqueue(PresenceMessage presence) => _events.Enqueue(() => PresenceChanged?.Invoke(this, presence));

    private void Enqueue(ResetMessage reset) => _events.Enqueue(() => Reset?.Invoke(this, reset));

    private void Enqueue(CollabErrorEventArgs error) => _events.Enqueue(() => Error?.Invoke(this, error));

    private void UpdateStateLocked()
    {
        var state = _disposed || _failed ? ConnectionState.Disconnected
            : _phase == JoinPhase.Joined ? ConnectionState.Connected
            : ConnectionState.Reconnecting;
        if (state != _reportedState)
        {
            var args = new ConnectionStateChangedEventArgs(_reportedState, state);
            _reportedState = state;
            _events.Enqueue(() => ConnectionStateChanged?.Invoke(this, args));
        }
    }

    /// <summary>
    /// Raises queued events one at a time, in order. Whichever thread finds the queue idle drains
    /// it; others only enqueue, so a handler never runs concurrently with another of this document.
    /// </summary>
    private void DispatchEvents()
    {
        lock (_gate)
        {
            if (_dispatching || _events.Count == 0)
            {
                return;
            }
            _dispatching = true;
        }
        while (true)
        {
            Action raise;
            lock (_gate)
            {
                if (!_events.TryDequeue(out raise!))
                {
                    _dispatching = false;
                    return;
                }
            }
            try
            {
                raise();
            }
            catch (Exception ex)
            {
                // A failing handler must not stop the document nor the SignalR loop that called us.
                Log.EventHandlerFailed(_logger, DocId, ex);
            }
        }
    }

    private void CompleteSyncWaitersLocked()
    {
        if (_syncWaiters is { } waiters)
        {
            _syncWaiters = null;
            foreach (var waiter in waiters)
            {
                waiter.TrySetResult();
            }
        }
    }

    private void ReplacePresenceLocked(List<PresenceMessage>? members)
    {
        var next = ImmutableDictionary<string, PresenceMessage>.Empty.WithComparers(StringComparer.Ordinal).ToBuilder();
        foreach (var member in members ?? [])
        {
            if (member.ClientId != _clientId && member.Selection is not null)
            {
                next[member.ClientId] = member;
            }
        }
        foreach (var (clientId, old) in _presence)
        {
            if (!next.ContainsKey(clientId))
            {
                Enqueue(new PresenceMessage { DocId = DocId, ClientId = clientId, User = old.User, Version = _version, Selection = null });
            }
        }
        foreach (var member in next.Values)
        {
            Enqueue(member);
        }
        _presence = next.ToImmutable();
    }

    internal void OnPresence(PresenceMessage presence)
    {
        if (presence.ClientId == _clientId)
        {
            return;
        }
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            _presence = presence.Selection is null ? _presence.Remove(presence.ClientId) : _presence.SetItem(presence.ClientId, presence);
            Enqueue(presence);
        }
        Flush();
    }
}
