using System.Collections.Immutable;
using System.Diagnostics;
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
/// <para>Every decision is the sync engine's (<c>Internal/SyncEngine.cs</c>, the port of
/// <c>client/ts/engine.ts</c>): this file holds the public surface, which turns calls into engine
/// events; <c>CollabDocument.Shell.cs</c> turns connection changes, hub messages, call results and
/// timers into engine events and carries out the commands each step gives, in order.</para>
/// </remarks>
public sealed partial class CollabDocument : IAsyncDisposable
{
    // Lock discipline: _gate guards every field below and in CollabDocument.Shell.cs. Engine steps
    // run under it; nothing is awaited, no other lock is taken and no user code runs while it is
    // held. What a step leaves to do outside (I/O, events) waits in _work, run by RunWork.
    private readonly object _gate = new();
    private readonly Func<long> _nextOpId;
    private readonly ILogger _logger;
    private readonly Action<CollabDocument>? _onDisposed;
    // Timer waits; tests substitute a deterministic clock.
    private readonly Func<TimeSpan, CancellationToken, Task> _delay;
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly long _started = Stopwatch.GetTimestamp();

    // Everything the document knows; replaced by each engine step, never changed in place.
    // A text document's state is an EngineState; a rich-text one's (behind a RichTextDocument) an EngineState<Delta, Delta>.
    private IEngineState _engine;
    private IDocumentTransport _transport;
    // The public snapshots of _engine.Text: the string is built by the first read after a change;
    // the rope is the engine's, except that an emptied text gets an instance of its own (see TextRope).
    private string? _textString = "";
    private Rope _textRope = Rope.Empty;
    private bool _disposed;
    // The connection, or the join, was refused for good: Disconnected until a reconnect or ReconnectNow.
    private bool _failed;
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
        Action<CollabDocument>? onDisposed = null,
        Func<TimeSpan, CancellationToken, Task>? delay = null,
        IEngineState? initial = null)
    {
        DocId = docId;
        _engine = initial ?? EngineState.Initial;
        _transport = transport;
        _nextOpId = nextOpId;
        _logger = logger;
        _onDisposed = onDisposed;
        _delay = delay ?? Task.Delay;
        lock (_gate)
        {
            StepLocked(new Open(docId, clientId, user));
        }
    }

    /// <summary>The document's id.</summary>
    public string DocId { get; }

    /// <summary>
    /// The current local text: the server's text at <see cref="Version"/> with this client's
    /// unconfirmed edits applied.
    /// </summary>
    /// <remarks>
    /// The document keeps its text as a rope, so the string is a snapshot: the first read after a
    /// change builds it, O(n) time and 2n bytes (20 MB for a 10 MB document); later reads return
    /// the same string until the next change.
    /// </remarks>
    public string Text
    {
        get
        {
            lock (_gate)
            {
                return _textString ??= TextState.Text.ToString();
            }
        }
    }

    /// <summary>
    /// The local text as a rope: immutable, and a new instance after every change, so it also
    /// identifies the text an edit was computed on (see <see cref="TryApply"/>).
    /// </summary>
    /// <remarks>The rope the document keeps: reading it is O(1) and copies nothing.</remarks>
    public Rope TextRope
    {
        get
        {
            lock (_gate)
            {
                return _textRope;
            }
        }
    }

    /// <summary>The length of the local text in UTF-16 code units: O(1), without building <see cref="Text"/>.</summary>
    public int Length
    {
        get
        {
            lock (_gate)
            {
                return _engine.Length;
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
                return _engine.Version;
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
                return _engine.ReadOnly;
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
                return _engine.PendingOps;
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
                return _engine.SyncKind != ClientSyncState.Synchronized;
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
    /// The other members' presence, by client id. Their selections are positions in the local
    /// <see cref="Text"/>: mapped from the version each member sent them at through every change
    /// since, theirs and ours (as the TypeScript client's <c>members</c>); <see cref="PresenceMessage.Version"/>
    /// is this document's <see cref="Version"/> when they were last mapped.
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

    /// <summary>The server's text at <see cref="Version"/>, without pending local edits.</summary>
    internal Rope ServerText
    {
        get
        {
            lock (_gate)
            {
                return TextState.ServerText;
            }
        }
    }

    /// <summary>The engine's state in one line, for test failure messages.</summary>
    internal string DebugState
    {
        get
        {
            lock (_gate)
            {
                return $"{_engine.Debug} failed={_failed} transport={_transport.State}";
            }
        }
    }

    /// <summary>Whether <see cref="ServerText"/> holds a settled op beyond <see cref="Version"/> (EngineState.Settled).</summary>
    internal bool Settled
    {
        get
        {
            lock (_gate)
            {
                return _engine.Settled;
            }
        }
    }

    internal ClientSyncState SyncState
    {
        get
        {
            lock (_gate)
            {
                return _engine.SyncKind;
            }
        }
    }

    /// <summary>Local edits not yet confirmed by the server (as <c>pendingEdits</c> in the TypeScript client).</summary>
    internal int PendingEdits
    {
        get
        {
            lock (_gate)
            {
                return _engine.PendingEdits;
            }
        }
    }

    /// <summary>Raised after the local text changed, by a local edit or a remote one.</summary>
    public event EventHandler<DocumentChangedEventArgs>? Changed;

    /// <summary>
    /// Raised when another member's presence changed: it arrived, moved its selection, or its
    /// selection moved with a change of the text (see <see cref="Presence"/>); a null selection
    /// means the member left.
    /// </summary>
    public event EventHandler<PresenceMessage>? PresenceChanged;

    /// <summary>
    /// Raised when the server reset the document (after a restore, a delete, or a move to another
    /// node), and when a join after a reconnect finds the document renamed (reason <c>renamed</c>,
    /// <see cref="ResetMessage.MovedTo"/> the new id: open that one; this one is then a new, empty
    /// document). The document joins again on its own; the text change follows as a
    /// <see cref="Changed"/> event. A handler may dispose the document.
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
            if (basedOn is not null && !ReferenceEquals(basedOn, _textRope))
            {
                return false;
            }
            if (_engine.ReadOnly)
            {
                throw new InvalidOperationException($"Document '{DocId}' is read-only for this client.");
            }
            if (operation.Error is not null)
            {
                throw new ArgumentException($"The operation is malformed: {operation.Error}.", nameof(operation));
            }
            if (operation.Validate(TextState.Text) is { } reason)
            {
                throw new ArgumentException($"The operation does not apply to the document: {reason}.", nameof(operation));
            }
            if (operation.IsNoop)
            {
                return true;
            }
            _work.Enqueue(() => Changed?.Invoke(this, new DocumentChangedEventArgs(operation, isLocal: true, clientId: null)));
            StepLocked(new LocalEdit(operation));
        }
        RunWork();
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
            ArgumentOutOfRangeException.ThrowIfGreaterThan(position, Length);
            return;
        }
        Apply(op);
    }

    /// <summary>
    /// Sets this client's selection, in positions of the current local text, and sends it to the
    /// other members: at once, or at most every 60 ms while it keeps changing (PROTOCOL §6), mapped
    /// to the server's version. While the document is not joined it is kept, and sent once it is
    /// joined again. The returned task is complete: the server's answer is not awaited.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A position is outside the text.</exception>
    public Task SetSelectionAsync(IReadOnlyList<SelectionRange> selection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(selection);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var length = _engine.Length;
            foreach (var range in selection)
            {
                ArgumentOutOfRangeException.ThrowIfNegative(range.Anchor, nameof(selection));
                ArgumentOutOfRangeException.ThrowIfNegative(range.Head, nameof(selection));
                ArgumentOutOfRangeException.ThrowIfGreaterThan(range.Anchor, length, nameof(selection));
                ArgumentOutOfRangeException.ThrowIfGreaterThan(range.Head, length, nameof(selection));
            }
            StepLocked(new PresenceLocal([.. selection.Select(r => new SelectedRange(r.Anchor, r.Head))]));
        }
        RunWork();
        return Task.CompletedTask;
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
                // The join was refused for good: a new session asks again.
                _failed = false;
                StepLocked(new Connected());
            }
        }
        RunWork();
        if (transport.State != ConnectionState.Connected)
        {
            transport.ReconnectNow();
        }
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
            if (_engine.SyncKind == ClientSyncState.Synchronized)
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
        Task leaving;
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
            if (_firstJoin is { } first)
            {
                _firstJoin = null;
                _work.Enqueue(() => first.TrySetException(new ObjectDisposedException(nameof(CollabDocument), $"Document '{DocId}' was disposed before it was joined.")));
            }
            StepLocked(new Leave());
            leaving = _leaving?.Task ?? Task.CompletedTask;
        }
        RunWork();
        await leaving.ConfigureAwait(false);
        _disposeCts.Cancel();
        transport.Detach(this);
        _onDisposed?.Invoke(this);
    }
}
