using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Xunit.Abstractions;
using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>
/// Owners that die, drain, move or freeze, in a real three-node cluster, while clients type
/// through the real .NET client: every acknowledged token is in the document exactly once, in
/// the order it was typed. The times measured are printed (docs/PERFORMANCE.md), never asserted.
/// </summary>
public sealed class FailoverTests(ITestOutputHelper output)
{
    /// <summary>How many owners are killed in a row (COLLAB_FAILOVER_KILLS; 10 for the figures in the docs).</summary>
    private static int Kills => int.TryParse(Environment.GetEnvironmentVariable("COLLAB_FAILOVER_KILLS"), out var n) ? n : 2;

    [Fact]
    public async Task KillingTheOwnerWhileClientsWriteLosesNoAcknowledgedOp()
    {
        await using var cluster = await TestCluster.StartAsync();
        var typists = await Typists.OpenAsync(cluster, "crash", 6);
        try
        {
            Typists.StartAll(typists);
            var resumed = new List<double>();
            for (var kill = 0; kill < Kills; kill++)
            {
                await Typists.WaitForProgressAsync(typists, 10);
                var owner = await cluster.OwnerAsync("crash", via: 0);
                if (owner == -1)
                {
                    owner = await cluster.OwnerAsync("crash", via: 1);
                }
                cluster.Node(owner).Kill();
                var killedAt = Stopwatch.GetTimestamp(); // the process is gone: any acknowledgement from now on is the new owner's
                await Typists.WaitForProgressAsync(typists, 3);
                resumed.Add(typists.Max(t => Stopwatch.GetElapsedTime(killedAt, t.FirstAckAfter(killedAt)!.Value).TotalMilliseconds));
                await cluster.StartNodeAsync(owner); // back for the next round, as an operator would
            }
            await Typists.StopAllAndCheckAsync(typists);
            resumed.Sort();
            output.WriteLine($"{Kills} SIGKILLs of the owner, 6 clients writing (lease TTL {TestCluster.LeaseTtl.TotalSeconds} s): writing again after p50 {resumed[resumed.Count / 2]:0} ms, max {resumed[^1]:0} ms; {typists.Sum(t => t.Typed)} tokens typed and acknowledged, 0 lost");
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }

    [Fact]
    public async Task SigtermDrainsTheOwnerWithNothingLost()
    {
        await using var cluster = await TestCluster.StartAsync();
        var typists = await Typists.OpenAsync(cluster, "drain", 6);
        try
        {
            Typists.StartAll(typists);
            await Typists.WaitForProgressAsync(typists, 10);
            var owner = await cluster.OwnerAsync("drain");
            var node = cluster.Node(owner);
            var stoppedAt = Stopwatch.GetTimestamp();
            node.Terminate();
            Assert.True(await node.WaitForExitAsync(TimeSpan.FromSeconds(30)), "the drained node did not exit; its log ends:\n" + node.Output[^Math.Min(node.Output.Length, 6000)..]);
            var exited = Stopwatch.GetElapsedTime(stoppedAt);
            await Typists.WaitForProgressAsync(typists, 5);
            var newOwner = await cluster.OwnerAsync("drain", via: (owner + 1) % 3);
            Assert.NotEqual(owner, newOwner);
            Assert.Contains("Draining: moving 1 documents to 2 other nodes.", node.Output);
            await Typists.StopAllAndCheckAsync(typists);
            output.WriteLine($"SIGTERM of the owner: exited after {exited.TotalMilliseconds:0} ms; longest pause a client saw {typists.Max(t => t.LongestGap()).TotalMilliseconds:0} ms");
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }

    [Fact]
    public async Task ALiveMoveWhileTenClientsTypeLosesAndReordersNothing()
    {
        await using var cluster = await TestCluster.StartAsync();
        var typists = await Typists.OpenAsync(cluster, "moving", 10);
        try
        {
            Typists.StartAll(typists);
            for (var move = 0; move < 3; move++)
            {
                await Typists.WaitForProgressAsync(typists, 5);
                var owner = await cluster.OwnerAsync("moving");
                var target = TestCluster.NodeId((owner + 1) % 3);
                // Asked of a node that is not the owner: it is forwarded there. The last move is
                // asked of the node the document goes to.
                var via = move == 2 ? (owner + 1) % 3 : (owner + 2) % 3;
                var answer = await cluster.Http.PostAsJsonAsync(new Uri(cluster.Url(via), "/api/docs/moving/move"), new { node = target });
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                Assert.Equal((owner + 1) % 3, await cluster.OwnerAsync("moving"));
                await Typists.WaitForProgressAsync(typists, 3);
            }
            await Typists.StopAllAndCheckAsync(typists);
            // Each client's longest wait between two acknowledgements over the whole run (three moves in it).
            var pauses = typists.Select(t => t.LongestGap().TotalMilliseconds).Order().ToList();
            output.WriteLine($"3 live moves with 10 clients typing: the longest pause between two acknowledgements, per client: p50 {pauses[pauses.Count / 2]:0} ms, max {pauses[^1]:0} ms");

            var moves = 0.0;
            for (var i = 0; i < 3; i++)
            {
                moves += await cluster.MetricAsync(i, "collab_cluster_moves_total");
            }
            Assert.Equal(3, moves);
            var bad = await cluster.Http.PostAsJsonAsync(new Uri(cluster.Url(0), "/api/docs/moving/move"), new { node = "n9" });
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }
}
