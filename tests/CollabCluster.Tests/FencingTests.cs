using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Xunit.Abstractions;
using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>
/// A node that lost its lease without knowing it (frozen with SIGSTOP past the lease, as in a long
/// GC pause or a partition) commits nothing when it wakes; and nodes that cannot reach Redis stop
/// acknowledging, then resume by themselves when it is back.
/// </summary>
public sealed class FencingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AnOwnerFrozenPastItsLeaseCommitsNothingAfterItWakes()
    {
        await using var cluster = await TestCluster.StartAsync();
        await using var stale = await Probe.ConnectAsync(cluster.Url(0));
        Assert.Null((await stale.JoinAsync("fenced")).Redirect); // unowned: node 0 claims it
        Assert.Equal("1", await stale.SubmitAsync("fenced", 0, 0, "a"));
        Assert.Equal(0, await cluster.OwnerAsync("fenced"));

        cluster.Node(0).Pause();
        try
        {
            // Node 0's registration and lease run out; node 1 takes the document over.
            await Eventually.TrueAsync(async () => !(await cluster.NodesAsync(1)).Contains("n1"), "n1 drops out of the cluster");
            await Eventually.TrueAsync(async () => await cluster.OwnerAsync("fenced", via: 1) != 0, "n1's lease runs out");
            await using var writer = await Typist.OpenAsync("w", cluster.Url(1), "fenced");
            writer.Start(limit: 5);
            await writer.WaitForAckedAsync(5);
            Assert.Equal(1, await cluster.OwnerAsync("fenced", via: 1));

            // Sent to the frozen node: they wait in its socket until it wakes.
            var late = Enumerable.Range(0, 3).Select(i => stale.SubmitAsync("fenced", 1, 1, $"STALE{i}")).ToList();
            cluster.Node(0).Continue();
            var answers = await Task.WhenAll(late);

            // Each is refused: with unavailable, its commit fenced off (and counted), or with
            // not_joined, when the node learned of the loss first and sent its members away.
            Assert.All(answers, a => Assert.True(a.StartsWith("unavailable:") || a.StartsWith("not_joined:"), a));
            var fenced = answers.Count(a => a.Contains("cannot write", StringComparison.Ordinal));
            output.WriteLine($"the woken node answered: {string.Join(" | ", answers)}");
            Assert.Equal(fenced, await cluster.MetricAsync(0, "collab_cluster_fenced_commits_total"));
            var doc = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(2), "/api/docs/fenced"));
            Assert.Equal(6, doc.GetProperty("version").GetInt32());
            Assert.Equal("a" + string.Concat(Enumerable.Range(0, 5).Select(i => Typist.Token("w", i))), doc.GetProperty("text").GetString());
            writer.AssertAllOnceInOrder(doc.GetProperty("text").GetString()!);

            // Node 0 is a member of the cluster again, and sends the document's clients to node 1.
            await cluster.WaitAllListedAsync();
            Assert.Equal(cluster.Url(1).AbsoluteUri.TrimEnd('/'), (await stale.JoinAsync("fenced")).Redirect);
        }
        finally
        {
            cluster.Node(0).Continue();
        }
    }

    [Fact]
    public async Task WithoutRedisNodesStopAcknowledgingAndAreNotReadyThenResumeWithoutARestart()
    {
        await using var cluster = await TestCluster.StartAsync();
        await using var a = await Typist.OpenAsync("a", cluster.Url(0), "outage");
        await using var b = await Typist.OpenAsync("b", cluster.Url(1), "outage");
        a.Start();
        b.Start();
        await a.WaitForAckedAsync(20);
        await b.WaitForAckedAsync(20);
        var owner = await cluster.OwnerAsync("outage");
        await using var probe = await Probe.ConnectAsync(cluster.Url(owner));

        cluster.Redis.Stop();
        for (var i = 0; i < cluster.Count; i++)
        {
            var node = cluster.Url(i);
            await Eventually.TrueAsync(async () => (await cluster.Http.GetAsync(new Uri(node, "/readyz"))).StatusCode == HttpStatusCode.ServiceUnavailable, $"{TestCluster.NodeId(i)} says it is not ready");
        }
        // A lease is trusted for less than its TTL after the last renewal was sent, and none was
        // sent since Redis stopped: one TTL later, the owner's lease has surely run out.
        await Task.Delay(TestCluster.LeaseTtl);
        // The owner cannot renew its lease, so it acknowledges nothing. (Joined now: a join
        // needs no Redis on the node whose actor is live, and gives the current version.)
        var joined = await probe.JoinAsync("outage");
        var refused = await probe.SubmitAsync("outage", joined.Version, joined.Text!.Length, "X");
        Assert.StartsWith("unavailable:", refused);

        cluster.Redis.Start(); // empty: every registration, lease and epoch is gone
        for (var i = 0; i < cluster.Count; i++)
        {
            var node = cluster.Url(i);
            await Eventually.TrueAsync(async () => (await cluster.Http.GetAsync(new Uri(node, "/readyz"))).StatusCode == HttpStatusCode.OK, $"{TestCluster.NodeId(i)} is ready again");
        }
        await a.WaitForAckedAsync(a.Acked + 20);
        await b.WaitForAckedAsync(b.Acked + 20);
        await a.StopAsync();
        await b.StopAsync();
        await Eventually.TrueAsync(() => Task.FromResult(a.Document.Text == b.Document.Text), "both clients have the same text");
        a.AssertAllOnceInOrder(a.Document.Text);
        b.AssertAllOnceInOrder(a.Document.Text);
        Assert.DoesNotContain("X", a.Document.Text);
    }
}
