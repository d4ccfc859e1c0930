using System.Net;
using System.Net.Sockets;

namespace CollabBrowser.Tests;

/// <summary>
/// A TCP forwarder in front of the server. <see cref="Cut"/> drops every connection through it
/// (so a page's WebSocket really dies, as on a network failure) and refuses new ones until
/// <see cref="Restore"/>.
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly List<(TcpClient Inbound, TcpClient Outbound)> _pairs = [];
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

    /// <summary>Accepts connections again.</summary>
    public void Restore() => _cut = false;

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
        }
        try
        {
            var a = inbound.GetStream();
            var b = outbound.GetStream();
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
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
