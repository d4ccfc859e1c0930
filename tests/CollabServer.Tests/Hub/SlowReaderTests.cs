using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Collab.Testing;

namespace CollabServer.Tests.Hub;

/// <summary>
/// A member that never reads its socket (PROTOCOL §6): once the kernel's buffers are full its
/// outbox fills, the server closes that connection, and the writers never notice. A real server
/// process and a real TCP socket, since only they have buffers that fill.
/// </summary>
public sealed class SlowReaderTests
{
    private const string OverflowLog = "messages behind and was closed";

    [Fact]
    public async Task AMemberThatStopsReadingIsClosedAtOnceAndTheWritersGoOn()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:OutboundQueueLimit=50", "--Collab:OpsPerSecond=100000", "--Collab:OpsBurst=100000", "--Collab:Sync=Off",
                // The writer here is not the attack: its bytes are not limited either.
                "--Collab:WriteBytesPerSecond=1000000000", "--Collab:WriteBytesBurst=1000000000", "--Collab:DocumentWriteBytesPerSecond=1000000000", "--Collab:DocumentWriteBytesBurst=1000000000");
            // The slow member: joins over a raw WebSocket, then reads nothing until the end.
            using var slow = new ClientWebSocket();
            await slow.ConnectAsync(new Uri($"ws://127.0.0.1:{server.Port}/hubs/collab"), CancellationToken.None);
            await slow.SendAsync(Encoding.UTF8.GetBytes("{\"protocol\":\"json\",\"version\":1}\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
            await slow.SendAsync(Encoding.UTF8.GetBytes("{\"type\":1,\"invocationId\":\"1\",\"target\":\"Join\",\"arguments\":[{\"docId\":\"busy\",\"clientId\":\"slow\"}]}\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);

            var writer = new HubConnectionBuilder().WithUrl(new Uri(server.BaseUrl, "hubs/collab")).AddMessagePackProtocol().Build();
            await writer.StartAsync();
            var version = (await writer.JoinAsync("busy", "writer")).Version;
            using var http = new HttpClient { BaseAddress = server.BaseUrl };
            async Task<double> MetricAsync(string name)
            {
                var text = await http.GetStringAsync("/metrics");
                var line = text.Split('\n').First(l => l.StartsWith(name + " ", StringComparison.Ordinal) || l.StartsWith(name + "{", StringComparison.Ordinal));
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
            Assert.Equal(2, await MetricAsync("collab_connections"));

            // Each op replaces the whole text with 32 K new characters, so the text stays small while
            // every broadcast carries 64 KB: the slow socket's buffers (tens of MB on loopback here)
            // fill within a thousand or so ops. The writers go on until the server says it closed
            // the slow member, however long that takes on a busy machine.
            var chunk = new string('x', 32 * 1024);
            var written = 0;
            while (written < 20_000 && !server.Output.Contains(OverflowLog, StringComparison.Ordinal))
            {
                object?[] op = written == 0 ? [chunk] : [chunk, -chunk.Length];
                version = (await writer.SubmitAsync("busy", version, op, ++written)).Version;
            }
            Assert.True(server.Output.Contains(OverflowLog, StringComparison.Ordinal), $"the server never closed the slow member in {written} ops of 32 K characters:\n{server.Output}");

            // Closed means closed at once: it no longer counts as open and its queue is let go, even
            // though its peer has not read a byte of what the socket holds.
            Assert.Equal(1, await MetricAsync("collab_connections"));
            Assert.Equal(0, await MetricAsync("collab_outbox_depth"));

            // The writer never waited on the slow member: everything it sent is committed, and it goes on.
            Assert.Equal(written + 1, (await writer.SubmitAsync("busy", version, ["after"], ++written)).Version);
            var doc = await http.GetFromJsonAsync<JsonElement>("/api/docs/busy");
            Assert.Equal(written, doc.GetProperty("version").GetInt32());

            // The server let go of the socket too: reading it now ends in a close or a reset once
            // what the kernel buffered is read, not in a wait for more.
            var buffer = new byte[256 * 1024];
            var ended = false;
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try
            {
                while (!ended)
                {
                    ended = (await slow.ReceiveAsync(buffer, deadline.Token)).MessageType == WebSocketMessageType.Close;
                }
            }
            catch (WebSocketException)
            {
                ended = true;
            }
            catch (OperationCanceledException)
            {
            }
            Assert.True(ended, "the slow member's socket was never closed by the server");
            await writer.DisposeAsync();
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
