using System.Net;
using System.Net.Sockets;
using Collab.Testing;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Robustness;

/// <summary>
/// Issue 21, row 1: idle TCP connections, never authenticated, held open. Every one holds a file
/// descriptor; without a limit they took all of the process's, so new documents could not be
/// opened and the process later died. Run with a low open-file limit so the flood reaches it.
/// </summary>
public sealed class ConnectionFloodTests
{
    private const int FileLimit = 1024;
    private const int Flood = 1500;

    [Fact]
    public async Task IdleConnectionsPastTheLimitAreRefusedAndAMemberGoesOnCreatingDocuments()
    {
        var dataDir = TestHost.NewDataDir();
        var flood = new List<Socket>();
        try
        {
            using var server = await ServerProcess.StartWithFileLimitAsync(dataDir, FileLimit);
            await using var member = await Probe.ConnectAsync(server.BaseUrl);
            await member.JoinAsync("before");
            Assert.Equal("1", await member.SubmitAsync("before", 0, 0, "written before the flood"));

            // More connections than the process has files: each sends nothing and stays open.
            for (var i = 0; i < Flood; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                flood.Add(socket);
                try
                {
                    await socket.ConnectAsync(IPAddress.Loopback, server.Port).WaitAsync(Wire.Timeout);
                }
                catch (SocketException)
                {
                    // Refused outright: the attacker is held off; what matters is what the member sees.
                }
            }
            // Past the limit they are closed by the server: wait until it has closed some.
            await Eventually.TrueAsync(() => Task.FromResult(flood.Count(Closed) > 0), "the server closes connections past its limit");

            // The member on its WebSocket is unaffected, and new documents (new database files) still open.
            for (var d = 0; d < 20; d++)
            {
                await member.JoinAsync($"during-{d}");
                Assert.Equal("1", await member.SubmitAsync($"during-{d}", 0, 0, "written during the flood"));
            }
            Assert.False(server.HasExited, server.Output);

            foreach (var socket in flood)
            {
                socket.Dispose();
            }
            flood.Clear();
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(10) };
            await Eventually.TrueAsync(async () => (await http.GetAsync("/healthz")).IsSuccessStatusCode, "new connections are answered again once the flood ends");
            var metrics = await http.GetStringAsync("/metrics");
            var rejected = metrics.Split('\n').Where(l => l.StartsWith("kestrel_rejected_connections_total", StringComparison.Ordinal))
                .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            Assert.True(rejected > 0, "the refused connections are counted in /metrics");
            Assert.False(server.HasExited, server.Output);
        }
        finally
        {
            foreach (var socket in flood)
            {
                socket.Dispose();
            }
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>Whether the server has closed the connection (a read returns 0 bytes or fails at once).</summary>
    private static bool Closed(Socket socket)
    {
        try
        {
            return socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0;
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }
}
