using System.Buffers;
using System.Threading.Channels;
using CollabServer.Documents;
using CollabServer.Identity;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Hubs;

/// <summary>
/// Our side of one SignalR connection: its bounded outbound queue with the loop that drains it,
/// its rate limit, and the documents it joined. Documents hand it messages and never wait: a
/// connection that falls <see cref="CollabOptions.OutboundQueueLimit"/> messages behind is closed
/// (the client reconnects and resumes from its last version), so one slow socket never slows a
/// document. Closing it stops it counting as open at once, drops what its queue holds, and aborts
/// its TCP connection: SignalR's own close would first wait for the socket to take a close
/// message, which a peer that never reads again holds up for the transport's send and close
/// timeouts (15 s by default).
/// </summary>
public sealed class ClientConnection : IMemberConnection
{
    internal const string ItemKey = "collab.connection";
    private const int MaxMessagesPerFrame = 256;
    private const int MaxFrameBytes = 256 * 1024;

    private readonly HubConnectionContext _context;
    private readonly Channel<SerializedHubMessage> _outbox;
    private readonly ILogger _logger;
    private readonly int _limit;
    private readonly TokenBucket _rate;
    private readonly TokenBucket _presence;
    private readonly TokenBucket _creations;
    private readonly TokenBucket _joins;
    private readonly Func<bool> _subjectCreation;
    private readonly Action<ClientConnection> _closedCallback;
    private int _closed;

    /// <summary>A connection's queue and pump; <paramref name="closed"/> is called once, when it closes for any reason.</summary>
    public ClientConnection(HubConnectionContext context, CollabOptions options, ILogger logger, ConnectionIdentity identity, Func<bool> subjectCreation, Action<ClientConnection> closed)
    {
        _subjectCreation = subjectCreation;
        _context = context;
        _closedCallback = closed;
        Identity = identity;
        _logger = logger;
        _limit = options.OutboundQueueLimit;
        // Many documents write, one loop reads; writers never wait (TryWrite), see Send.
        _outbox = Channel.CreateBounded<SerializedHubMessage>(new BoundedChannelOptions(_limit)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
            AllowSynchronousContinuations = false,
        });
        _rate = new TokenBucket(options.OpsPerSecond, options.OpsBurst);
        _presence = new TokenBucket(options.PresencePerSecond, options.PresenceBurst);
        _creations = new TokenBucket(options.DocumentsCreatedPerMinute / 60.0, options.DocumentsCreatedPerMinute);
        _joins = new TokenBucket(options.JoinsPerSecond, options.JoinsBurst);
        Pump = Task.Run(PumpAsync);
    }

    public string ConnectionId => _context.ConnectionId;

    /// <summary>Who the connection is, resolved once when it connected.</summary>
    public ConnectionIdentity Identity { get; }

    /// <summary>Whether the connection has closed (or is closing).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) == 1 || _context.ConnectionAborted.IsCancellationRequested;

    /// <summary>Messages waiting to be written.</summary>
    public int QueuedMessages => _outbox.Reader.Count;

    /// <summary>Documents this connection joined, for leaving them when it closes.</summary>
    public HashSet<string> Documents { get; } = [];

    /// <summary>The loop that writes queued messages to the socket.</summary>
    public Task Pump { get; }

    /// <summary>Takes one op from the connection's rate limit; false when it is used up.</summary>
    public bool TryTakeOp() => _rate.TryTake();

    /// <summary>Takes one presence update from the connection's presence limit.</summary>
    public bool TryTakePresence() => _presence.TryTake();

    /// <summary>Takes one join or leave from the connection's join rate.</summary>
    public bool TryTakeJoin() => _joins.TryTake();

    /// <summary>Takes one document creation from the connection's per-minute budget, and from its subject's (shared with REST PUT) when authenticated.</summary>
    public bool TryTakeCreation() => _creations.TryTake() && _subjectCreation();

    /// <summary>Queues a message without waiting. Closes the connection when its queue is full.</summary>
    public void Send(SerializedHubMessage message)
    {
        if (_outbox.Writer.TryWrite(message))
        {
            return;
        }
        if (MarkClosed())
        {
            _context.Abort();
            try
            {
                // The socket itself: its buffers are full and its peer may never read them.
                _context.GetHttpContext()?.Abort();
            }
            catch (Exception ex) when (ex is ObjectDisposedException or InvalidOperationException)
            {
                // The request ended meanwhile: the socket is gone already. Send runs on a
                // document's loop, which must go on broadcasting to the other members.
            }
            Log.OutboxOverflow(_logger, ConnectionId, _limit);
        }
    }

    /// <summary>Stops the loop; called when the connection has closed.</summary>
    public void Close() => MarkClosed();

    /// <summary>True for the one call that closed the connection.</summary>
    private bool MarkClosed()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return false;
        }
        _outbox.Writer.TryComplete();
        _closedCallback(this);
        return true;
    }

    private async Task PumpAsync()
    {
        var reader = _outbox.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                if (!reader.TryRead(out var first))
                {
                    continue;
                }
                if (!reader.TryPeek(out _))
                {
                    await _context.WriteAsync(first, _context.ConnectionAborted).ConfigureAwait(false);
                    continue;
                }
                // Several queued: one write and one flush for all of them, so the socket sends one
                // frame instead of one per message (a socket send per message per member was the
                // largest cost in a profile of the hot workload). Hub messages delimit themselves
                // in both protocols, so a frame may carry many; each message's bytes come from its
                // per-protocol cache, shared by every member.
                var protocol = _context.Protocol;
                var parts = new List<ReadOnlyMemory<byte>>(16) { first.GetSerializedMessage(protocol) };
                var length = parts[0].Length;
                while (parts.Count < MaxMessagesPerFrame && length < MaxFrameBytes && reader.TryRead(out var next))
                {
                    parts.Add(next.GetSerializedMessage(protocol));
                    length += parts[^1].Length;
                }
                var frame = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    var offset = 0;
                    foreach (var part in parts)
                    {
                        part.Span.CopyTo(frame.AsSpan(offset));
                        offset += part.Length;
                    }
                    var combined = new SerializedHubMessage([new SerializedMessage(protocol.Name, frame.AsMemory(0, length))]);
                    // The bytes are copied into the connection's pipe before this completes.
                    await _context.WriteAsync(combined, _context.ConnectionAborted).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(frame);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The connection closed: what is left in the queue has nowhere to go.
        }
        catch (Exception ex)
        {
            Log.SendFailed(_logger, ConnectionId, ex);
            _context.Abort();
        }
        finally
        {
            // Nothing more will be written: let go of what is still queued.
            MarkClosed();
            while (reader.TryRead(out _))
            {
            }
        }
    }
}
