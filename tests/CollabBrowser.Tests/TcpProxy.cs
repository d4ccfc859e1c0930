using System.Net;
using System.Net.Sockets;

namespace CollabBrowser.Tests;

/// <summary>
/// A TCP forwarder in front of the server. <see cref="Cut"/> drops every connection through it
/// (so a page's WebSocket really dies, as on a network failure) and refuses new ones until
/// <see cref="Restore"/>. <see cref="HoldReplies"/> keeps back what the server sends on the
/// WebSockets open now while letting their requests through, as a network that fails one way: the
/// server acts on a request whose answer is lost. Plain HTTP connections (which the browser reuses
/// for the next page) and new connections are not held.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<(TcpClient Inbound, TcpClient Outbound)> _pairs = [];
    /// <summary>Per open connection: completed while its replies flow.</summary>
    private readonly Dictionary<TcpClient, TaskCompletionSource> _replies = [];
    /// <summary>The connections that were upgraded to a WebSocket (their first request asked for it).</summary>
    private readonly HashSet<TcpClient> _webSockets = [];
    private readonly Task _acceptLoop;
    private volatile bool _cut;

    public TcpProxy(Uri target)
    {
        _target = new IPEndPoint(IPAddress.Parse(target.Host), target.Port);
        _listener.Start();
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>The proxy's base URL; a page loaded from it connects its WebSocket through it too.</summary>
    public string Url => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Closes every connection through the proxy and refuses new ones.</summary>
    public void Cut()
    {
        _cut = true;
        List<(TcpClient, TcpClient)> pairs;
        lock (_gate)
        {
            pairs = [.. _pairs];
            _pairs.Clear();
        }
        foreach (var (inbound, outbound) in pairs)
        {
            Abort(inbound);
            Abort(outbound);
        }
    }

    /// <summary>Accepts connections again, and lets held replies flow.</summary>
    public void Restore()
    {
        _cut = false;
        lock (_gate)
        {
            foreach (var flow in _replies.Values)
            {
                flow.TrySetResult();
            }
        }
    }

    /// <summary>From now on, what the server sends on the WebSockets open now is kept back (until <see cref="Restore"/>); what clients send still arrives.</summary>
    public void HoldReplies()
    {
        lock (_gate)
        {
            foreach (var inbound in _webSockets)
            {
                if (_replies[inbound].Task.IsCompleted)
                {
                    _replies[inbound] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }
        }
    }

    /// <summary>Copies the client's bytes to the server, noting a connection whose first request asks for a WebSocket.</summary>
    private async Task RequestsAsync(TcpClient inbound, NetworkStream client, NetworkStream server)
    {
        var buffer = new byte[16 * 1024];
        var first = true;
        int read;
        while ((read = await client.ReadAsync(buffer, _stop.Token)) > 0)
        {
            if (first)
            {
                first = false;
                if (System.Text.Encoding.ASCII.GetString(buffer, 0, read).Contains("upgrade: websocket", StringComparison.OrdinalIgnoreCase))
                {
                    lock (_gate)
                    {
                        _webSockets.Add(inbound);
                    }
                }
            }
            await server.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    /// <summary>Copies the server's bytes to the client; while its replies are held, each waits.</summary>
    private async Task RepliesAsync(TcpClient inbound, NetworkStream server, NetworkStream client)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await server.ReadAsync(buffer, _stop.Token)) > 0)
        {
            // Looked up after the read: a read already waiting when the hold began must not slip through.
            Task flowing;
            lock (_gate)
            {
                flowing = _replies.TryGetValue(inbound, out var flow) ? flow.Task : Task.CompletedTask;
            }
            await flowing.WaitAsync(_stop.Token);
            await client.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    private static void Abort(TcpClient client)
    {
        try
        {
            // A reset, not a polite close: what a dead network looks like to both ends.
            if (client.Client is { } socket)
            {
                socket.LingerState = new LingerOption(true, 0);
            }
            client.Close();
        }
        catch (Exception ex) when (ex is ObjectDisposedException or SocketException)
        {
            // expected: already closed
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                break; // expected: disposing
            }
            catch (SocketException)
            {
                break; // expected: the listener was stopped
            }
            if (_cut)
            {
                Abort(inbound);
                continue;
            }
            _ = ForwardAsync(inbound);
        }
    }

    private async Task ForwardAsync(TcpClient inbound)
    {
        var outbound = new TcpClient();
        try
        {
            await outbound.ConnectAsync(_target, _stop.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            Abort(inbound);
            outbound.Dispose();
            return;
        }
        lock (_gate)
        {
            _pairs.Add((inbound, outbound));
            var flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            flowing.SetResult();
            _replies[inbound] = flowing;
        }
        try
        {
            var a = inbound.GetStream();
            var b = outbound.GetStream();
            await Task.WhenAny(RequestsAsync(inbound, a, b), RepliesAsync(inbound, b, a));
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // expected: one side was cut or closed
        }
        finally
        {
            lock (_gate)
            {
                _pairs.Remove((inbound, outbound));
                _replies.Remove(inbound);
                _webSockets.Remove(inbound);
            }
            inbound.Dispose();
            outbound.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Cut();
        await _acceptLoop;
        _stop.Dispose();
    }
}
