using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CollabServer.Tests.Hub;

/// <summary>
/// A member that never reads its socket (PROTOCOL §6): once the kernel's buffers are full its
/// outbox fills, the server closes that connection, and the writers never notice. A real server
/// process and a real TCP socket, since only they have buffers that fill.
/// </summary>
public sealed class SlowReaderTests
{
    [Fact]
    public async Task AMemberThatStopsReadingIsClosedAndTheWritersGoOn()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:OutboundQueueLimit=50", "--Collab:OpsPerSecond=100000", "--Collab:OpsBurst=100000", "--Collab:Sync=Off");
            // The slow member: joins over a raw WebSocket, then never reads again.
            using var slow = new ClientWebSocket();
            await slow.ConnectAsync(new Uri($"ws://127.0.0.1:{server.Port}/hubs/collab"), CancellationToken.None);
            await slow.SendAsync(Encoding.UTF8.GetBytes("{\"protocol\":\"json\",\"version\":1}\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);
            await slow.SendAsync(Encoding.UTF8.GetBytes("{\"type\":1,\"invocationId\":\"1\",\"target\":\"Join\",\"arguments\":[{\"docId\":\"busy\",\"clientId\":\"slow\"}]}\u001e"), WebSocketMessageType.Text, true, CancellationToken.None);

            var writer = new HubConnectionBuilder().WithUrl(new Uri(server.BaseUrl, "hubs/collab")).AddMessagePackProtocol().Build();
            await writer.StartAsync();
            var version = (await writer.JoinAsync("busy", "writer")).Version;
            using var http = new HttpClient { BaseAddress = server.BaseUrl };
            async Task<double> ConnectionsAsync()
            {
                var text = await http.GetStringAsync("/metrics");
                var line = text.Split('\n').First(l => l.StartsWith("collab_connections", StringComparison.Ordinal));
                return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
            Assert.Equal(2, await ConnectionsAsync());

            // Each op replaces the whole text with 32 K new characters, so the text stays small while
            // every broadcast carries 64 KB: the slow socket's buffers (tens of MB on loopback here)
            // fill within a thousand or so ops.
            var chunk = new string('x', 32 * 1024);
            var written = 0;
            while (written < 5_000 && await ConnectionsAsync() > 1)
            {
                for (var i = 0; i < 50; i++)
                {
                    object?[] op = written == 0 ? [chunk] : [chunk, -chunk.Length];
                    version = (await writer.SubmitAsync("busy", version, op, ++written)).Version;
                }
            }
            Assert.True(await ConnectionsAsync() == 1, $"the slow member was still connected after {written} ops of 32 K characters:\n{server.Output}");
            // The writer never waited on the slow member: everything it sent is committed, and it goes on.
            Assert.Equal(written + 1, (await writer.SubmitAsync("busy", version, ["after"], ++written)).Version);
            var doc = await http.GetFromJsonAsync<JsonElement>("/api/docs/busy");
            Assert.Equal(written, doc.GetProperty("version").GetInt32());
            await writer.DisposeAsync();
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
