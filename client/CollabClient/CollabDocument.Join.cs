using Collab.Client.Internal;
using Collab.Messages;
using Microsoft.AspNetCore.SignalR;

namespace Collab.Client;

// The document's I/O: joining (first time, after a reconnect, after a reset or an error),
// submitting the in-flight op, and what to do when either fails. The connection calls in through
// the internal On* methods; everything that touches the network runs after _gate is released.
public sealed partial class CollabDocument
{
    private const int MaxRedirects = 5; // as the TypeScript client

    private enum JoinPhase
    {
        /// <summary>Not joined on the current connection: server ops are held, nothing is submitted.</summary>
        Joining,

        /// <summary>Joined: server ops are applied and the in-flight op is submitted.</summary>
        Joined,
    }

    // Ordered by strength: a pending Fresh join is not weakened by a later Resume request.
    private enum JoinKind
    {
        None,

        /// <summary>Join with <c>sinceVersion</c>: the server answers with the ops we missed.</summary>
        Resume,

        /// <summary>Join without <c>sinceVersion</c>: the server answers with the whole text.</summary>
        Fresh,
    }

    private sealed record PendingSubmit(IDocumentTransport Transport, SubmitRequest Request, long Generation);

    private JoinPhase _phase = JoinPhase.Joining;
    private JoinKind _pendingJoin;
    private bool _joinLoopRunning;
    private bool _failed;
    // Server ops received while not joined; applied (or dropped as duplicates) after the join.
    private List<OpMessage> _held = [];

    // Whether the in-flight op was handed to the current connection (so it is not sent again).
    private bool _inflightSent;
    // Numbers each Submit call, to tell a stale call's outcome from the current one's.
    private long _sendGeneration;
    // The Submit call on the current connection whose outcome is still unknown, or 0. A join
    // waits for it: its result says whether the op is in the text the join brings back.
    private long _outstandingSubmit;
    private bool _resendScheduled;
    private int _resendAttempt;

    /// <summary>
    /// Joins for the first time, following redirects; throws what went wrong, so that
    /// <see cref="CollabClient.OpenAsync"/> can report it.
    /// </summary>
    internal async Task JoinInitialAsync(CancellationToken cancellationToken)
    {
        var request = new JoinRequest { DocId = DocId, ClientId = _clientId, User = _user };
        JoinResult result;
        try
        {
            result = await JoinWithRedirectsAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (HubException ex)
        {
            throw CollabException.FromHubError(ex);
        }
        catch (Exception ex) when (ex is not CollabException and not OperationCanceledException)
        {
            throw new CollabException(ErrorCodes.Unavailable, $"Could not join document '{DocId}': {ex.Message}", ex);
        }
        lock (_gate)
        {
            ApplyJoinResultLocked(result);
            // Hand the join loop over: it runs again only if a reconnect or a reset came meanwhile.
            _joinLoopRunning = false;
        }
        Flush();
    }

    internal void OnOp(OpMessage message)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            if (_phase != JoinPhase.Joined)
            {
                _held.Add(message);
                return;
            }
            AddIncomingLocked(message);
            DrainLocked();
        }
        Flush();
    }

    internal void OnReset(ResetMessage reset)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            Log.ResetRequested(_logger, DocId, reset.Reason);
            RequestJoinLocked(JoinKind.Fresh);
            Enqueue(reset);
        }
        Flush();
    }

    internal void OnConnectionLost()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            DropConnectionLocked();
            UpdateStateLocked();
        }
        Flush();
    }

    /// <summary>The connection is gone: the document joins again once there is one.</summary>
    private void DropConnectionLocked()
    {
        _phase = JoinPhase.Joining;
        // Its outcome, if it ever comes, is a failure; the resume learns whether the op was
        // committed from the ops it brings, and otherwise sends it again with the same id.
        _inflightSent = false;
        _outstandingSubmit = 0;
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
            DropConnectionLocked();
            _failed = true;
            UpdateStateLocked();
            Enqueue(new CollabErrorEventArgs(error, localChangesDiscarded: false));
        }
        Flush();
    }

    /// <summary>The connection that had stopped retrying is trying again: the document is Reconnecting, not failed.</summary>
    internal void OnRetrying()
    {
        lock (_gate)
        {
            if (_disposed || _phase == JoinPhase.Joined)
            {
                return;
            }
            _failed = false;
            UpdateStateLocked();
        }
        Flush();
    }

    internal void OnConnectionRestored()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            // A reconnect is also the moment to retry a join that failed for good before.
            _failed = false;
            RequestJoinLocked(JoinKind.Resume);
        }
        Flush();
    }

    private void RequestJoinLocked(JoinKind kind)
    {
        if (kind > _pendingJoin)
        {
            _pendingJoin = kind;
        }
        _phase = JoinPhase.Joining;
        UpdateStateLocked();
    }

    private void ResyncLocked(string reason)
    {
        Log.Resynchronizing(_logger, DocId, reason);
        RequestJoinLocked(JoinKind.Fresh);
    }

    private bool TakeJoinStartLocked()
    {
        if (_joinLoopRunning || !CanJoinLocked())
        {
            return false;
        }
        _joinLoopRunning = true;
        return true;
    }

    /// <summary>
    /// Whether a join is due and can be sent now. A Submit still awaiting its result on this
    /// connection is let finish first: its result says whether the op is in the text the join
    /// brings back, which keeps a reset from applying the op twice.
    /// </summary>
    private bool CanJoinLocked() =>
        _pendingJoin != JoinKind.None && !_disposed && !_failed && _transport.State == ConnectionState.Connected && _outstandingSubmit == 0;

    /// <summary>Joins until no join is pending; one loop per document at a time.</summary>
    private async Task RunJoinLoopAsync()
    {
        var attempt = 0;
        while (true)
        {
            JoinKind kind;
            JoinRequest request;
            lock (_gate)
            {
                if (!CanJoinLocked())
                {
                    // Started again by Flush: after OnConnectionRestored, or when the awaited Submit completes.
                    _joinLoopRunning = false;
                    return;
                }
                kind = _pendingJoin;
                _pendingJoin = JoinKind.None;
                _phase = JoinPhase.Joining;
                request = new JoinRequest
                {
                    DocId = DocId,
                    ClientId = _clientId,
                    // With a settled op waiting for the whole text (_settledOp), ops since _version would not apply.
                    // Diverged: the whole text, to merge ours into (ReconcileLocked).
                    SinceVersion = kind == JoinKind.Resume && _settledOp is null && !_diverged ? _version : null,
                    User = _user,
                };
            }
            try
            {
                var result = await JoinWithRedirectsAsync(request, _disposeCts.Token).ConfigureAwait(false);
                SubmitRequest? settle;
                IDocumentTransport transport;
                lock (_gate)
                {
                    if (_disposed)
                    {
                        _joinLoopRunning = false;
                        return;
                    }
                    settle = ApplyJoinResultLocked(result, request.SinceVersion);
                    transport = _transport;
                }
                if (settle is not null)
                {
                    await SettleOutstandingAsync(transport, settle).ConfigureAwait(false);
                }
                attempt = 0;
                Flush();
            }
            catch (OperationCanceledException) when (_disposeCts.IsCancellationRequested)
            {
                lock (_gate)
                {
                    _joinLoopRunning = false;
                }
                return;
            }
            catch (Exception ex)
            {
                // Loop boundary: every failure ends here, and the join is asked for again.
                Log.JoinFailed(_logger, DocId, ex);
                var error = ex as CollabException ?? (ex is HubException ? CollabException.FromHubError(ex) : null);
                if (error?.Code == ErrorCodes.UnknownVersion && kind == JoinKind.Resume)
                {
                    // The server will not resume from our version: join for the whole text.
                    lock (_gate)
                    {
                        RequestJoinLocked(JoinKind.Fresh);
                    }
                    continue;
                }
                if (error is not null && ErrorCodes.RetryOf(error.Code) == ErrorRetry.Never)
                {
                    lock (_gate)
                    {
                        _failed = true;
                        _joinLoopRunning = false;
                        // Kept for ReconnectNow (or the next reconnect), which asks again.
                        if (kind > _pendingJoin)
                        {
                            _pendingJoin = kind;
                        }
                        UpdateStateLocked();
                        Enqueue(new CollabErrorEventArgs(error, localChangesDiscarded: false));
                    }
                    Flush();
                    return;
                }
                lock (_gate)
                {
                    RequestJoinLocked(kind);
                }
                try
                {
                    await _delay(Backoff.Delay(attempt++, _minRetryDelay, _maxRetryDelay), _disposeCts.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    lock (_gate)
                    {
                        _joinLoopRunning = false;
                    }
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Submits the outstanding op again, with its original op id, after a join that brought the
    /// whole text (see <c>RebaseOntoTextLocked</c>), then asks for a fresh join. A transient
    /// refusal (or a lost connection) is thrown to the join loop, which joins again later and
    /// comes back here: the op may still be committed.
    /// </summary>
    private async Task SettleOutstandingAsync(IDocumentTransport transport, SubmitRequest request)
    {
        try
        {
            await transport.SubmitAsync(request, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (HubException ex) when (!ErrorCodes.IsBeforeDuplicateCheck(CollabException.FromHubError(ex).Code))
        {
            // Refused after the server's duplicate check (unknown_version, invalid_op, ...), so not
            // committed: it is rebased with the other pending edits, under a new op id.
            Log.SubmitRejected(_logger, DocId, request.OpId, CollabException.FromHubError(ex).Code, ex);
            lock (_gate)
            {
                if (_sync.Outstanding?.OpId == request.OpId)
                {
                    _everSentOpId = null;
                }
                RequestJoinLocked(JoinKind.Fresh);
            }
            return;
        }
        lock (_gate)
        {
            SettledLocked(request.OpId);
        }
    }

    private async Task<JoinResult> JoinWithRedirectsAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        IDocumentTransport transport;
        lock (_gate)
        {
            transport = _transport;
        }
        for (var redirects = 0; ; redirects++)
        {
            var result = await transport.JoinAsync(request, cancellationToken).ConfigureAwait(false);
            if (string.IsNullOrEmpty(result.Redirect))
            {
                return result;
            }
            if (redirects == MaxRedirects)
            {
                throw new CollabException(ErrorCodes.Unavailable, $"Joining document '{DocId}' was redirected more than {MaxRedirects} times (last to {result.Redirect}).");
            }
            Log.Redirected(_logger, DocId, result.Redirect);
            transport = await transport.RedirectAsync(this, result.Redirect, cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                _transport = transport;
            }
        }
    }

    /// <summary>The in-flight op's Submit, when it is due: joined, connected, not sent yet, not acknowledged.</summary>
    private PendingSubmit? TakeSubmitLocked()
    {
        if (_disposed || _phase != JoinPhase.Joined || _sync.Outstanding is null || _inflightSent || _inflightAck is not null
            || _resendScheduled || _transport.State != ConnectionState.Connected)
        {
            return null;
        }
        var outstanding = _sync.Outstanding;
        _inflightSent = true;
        _everSentOpId = outstanding.OpId;
        _outstandingSubmit = ++_sendGeneration;
        // The outstanding op is kept rebased onto _serverText, so its base is always _version; a
        // resend after a resume carries the same op id, and the server deduplicates it.
        var request = new SubmitRequest { DocId = DocId, BaseVersion = _version, Op = outstanding.Op, OpId = outstanding.OpId };
        return new PendingSubmit(_transport, request, _outstandingSubmit);
    }

    private async Task SendSubmitAsync(PendingSubmit submit)
    {
        try
        {
            var result = await submit.Transport.SubmitAsync(submit.Request, _disposeCts.Token).ConfigureAwait(false);
            lock (_gate)
            {
                EndSubmitLocked(submit);
                OnSubmittedLocked(submit, result.Version);
            }
        }
        catch (HubException ex)
        {
            lock (_gate)
            {
                EndSubmitLocked(submit);
                OnSubmitRejectedLocked(submit, ex);
            }
        }
        catch (Exception ex)
        {
            // Loop boundary: the connection went away (or the document was disposed).
            Log.SubmitFailed(_logger, DocId, submit.Request.OpId, ex);
            lock (_gate)
            {
                EndSubmitLocked(submit);
                if (IsCurrentLocked(submit))
                {
                    _inflightSent = false;
                    if (!_disposed && _transport.State == ConnectionState.Connected)
                    {
                        // The connection still looks fine: try again shortly rather than wait for a reconnect that may not come.
                        ScheduleResendLocked();
                    }
                }
            }
        }
        Flush();
    }

    private void EndSubmitLocked(PendingSubmit submit)
    {
        if (_outstandingSubmit == submit.Generation)
        {
            _outstandingSubmit = 0;
        }
    }

    private bool IsCurrentLocked(PendingSubmit submit) =>
        submit.Request.OpId == _sync.Outstanding?.OpId && submit.Generation == _sendGeneration;

    private void OnSubmittedLocked(PendingSubmit submit, int version)
    {
        if (_disposed || submit.Request.OpId != _sync.Outstanding?.OpId)
        {
            // Stale: the op was already confirmed through the op stream, or replaced by a rebase.
            return;
        }
        if (version <= _version)
        {
            ResyncLocked($"op {submit.Request.OpId} was acknowledged at version {version}, which we applied as another op");
            return;
        }
        _inflightAck = version;
        DrainLocked();
    }

    private void OnSubmitRejectedLocked(PendingSubmit submit, HubException exception)
    {
        if (_disposed || !IsCurrentLocked(submit))
        {
            return;
        }
        _inflightSent = false;
        var error = CollabException.FromHubError(exception);
        Log.SubmitRejected(_logger, DocId, submit.Request.OpId, error.Code, exception);
        switch (ErrorCodes.RetryOf(error.Code))
        {
            case ErrorRetry.Later:
                ScheduleResendLocked();
                break;
            case ErrorRetry.Rejoin:
                // not_joined: the server forgot our membership (it restarted, or moved the
                // document). unknown_version: it has no version we can name (the document was
                // deleted and made anew, or lost ops), which the application hears of. Either
                // way: resume. A server behind us answers with the whole text, and the op is
                // settled against it (RebaseOntoTextLocked).
                if (error.Code != ErrorCodes.NotJoined)
                {
                    Enqueue(new CollabErrorEventArgs(error, localChangesDiscarded: false));
                }
                RequestJoinLocked(JoinKind.Resume);
                break;
            default:
                // invalid_op, forbidden, too_large, ...: sending it again cannot succeed. Drop our
                // edits, so the document goes on instead of stalling, and resume: our text is
                // the server's at our version again.
                DiscardPendingLocked();
                Enqueue(new CollabErrorEventArgs(error, localChangesDiscarded: true));
                RequestJoinLocked(JoinKind.Resume);
                break;
        }
    }

    private void ScheduleResendLocked()
    {
        _resendScheduled = true;
        var delay = Backoff.Delay(_resendAttempt++, _minRetryDelay, _maxRetryDelay);
        _ = ResendLaterAsync(delay);
    }

    private async Task ResendLaterAsync(TimeSpan delay)
    {
        try
        {
            await _delay(delay, _disposeCts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        lock (_gate)
        {
            _resendScheduled = false;
        }
        Flush();
    }
}
