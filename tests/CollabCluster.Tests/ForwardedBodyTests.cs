using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>
/// A PUT sent to a node that does not own the document: its body goes to the owner as it arrives,
/// never held or parsed on the way, and a body announced over the limit is refused before it is read.
/// </summary>
public sealed class ForwardedBodyTests
{
    private const long Limit = 32L * 1024 * 1024;

    [Fact]
    public async Task AForwardedBodyIsStreamedToTheOwnerNotHeldByTheNodeInBetween()
    {
        await using var cluster = await TestCluster.StartAsync(2, $"--Collab:MaxRestBodyBytes={Limit}");
        var (owner, other) = await OwnedAsync(cluster, "streamed");
        // A 12 MB text through the other node: a node that parses it holds the body and its
        // string (about 36 MB allocated); one that streams it allocates only its buffers.
        var text = new string('s', 12 * 1000 * 1000);
        var before = await cluster.MetricAsync(other, "dotnet_gc_heap_total_allocated_bytes_total");
        var put = await cluster.Http.PutAsJsonAsync(new Uri(cluster.Url(other), "/api/docs/streamed"), new { text });
        var allocated = await cluster.MetricAsync(other, "dotnet_gc_heap_total_allocated_bytes_total") - before;
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var doc = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(owner), "/api/docs/streamed"));
        Assert.Equal(text.Length, doc.GetProperty("text").GetString()!.Length);
        Assert.True(allocated < text.Length / 2, $"the node in between allocated {allocated / 1e6:F1} MB while forwarding a {text.Length / 1e6:F0} MB body");
    }

    [Fact]
    public async Task ABodyAnnouncedOverTheLimitIsRefusedByTheNodeInBetweenBeforeItIsSent()
    {
        await using var cluster = await TestCluster.StartAsync(2, $"--Collab:MaxRestBodyBytes={Limit}");
        var (owner, other) = await OwnedAsync(cluster, "announced");
        // Only the headers and 64 KiB of the announced body are ever sent: the answer comes while
        // the client is still sending.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, cluster.Url(other).Port);
        await socket.SendAsync(Encoding.ASCII.GetBytes(
            $"PUT /api/docs/announced HTTP/1.1\r\nHost: 127.0.0.1:{cluster.Url(other).Port}\r\nContent-Type: application/json\r\nContent-Length: {Limit + 1}\r\nConnection: close\r\n\r\n"));
        await socket.SendAsync(Encoding.ASCII.GetBytes("{\"text\":\"" + new string('x', 64 * 1024)));
        var answer = new MemoryStream();
        var buffer = new byte[8192];
        int n;
        while (!Encoding.UTF8.GetString(answer.ToArray()).Contains("too_large", StringComparison.Ordinal)
            && (n = await socket.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(60))) > 0)
        {
            answer.Write(buffer, 0, n);
        }
        var response = Encoding.UTF8.GetString(answer.ToArray());
        Assert.StartsWith("HTTP/1.1 413", response, StringComparison.Ordinal);
        Assert.Contains("\"type\":\"too_large\"", response, StringComparison.Ordinal);
        Assert.Equal(0, await cluster.MetricAsync(other, "collab_cluster_redirects_total"));
        var doc = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(owner), "/api/docs/announced"));
        Assert.Equal("owned", doc.GetProperty("text").GetString());
    }

    /// <summary>Creates <paramref name="id"/> through node 0 (which then owns it) and returns the owner and the other node.</summary>
    private static async Task<(int Owner, int Other)> OwnedAsync(TestCluster cluster, string id)
    {
        Assert.Equal(HttpStatusCode.OK, (await cluster.Http.PutAsJsonAsync(new Uri(cluster.Url(0), $"/api/docs/{id}"), new { text = "owned" })).StatusCode);
        var owner = await cluster.OwnerAsync(id);
        Assert.Equal(owner, await cluster.OwnerAsync(id, via: 1));
        return (owner, 1 - owner);
    }
}
