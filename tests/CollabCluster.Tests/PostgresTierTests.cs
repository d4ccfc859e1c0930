using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab.Testing;
using Xunit.Abstractions;

namespace CollabCluster.Tests;

/// <summary>
/// PostgreSQL as the durable tier, with real <c>postgres</c> and server processes: three nodes
/// with a data directory each, as on three machines. An owner's machine is lost (killed, its disk
/// deleted), frozen past its lease, or PostgreSQL itself restarts, while clients type through the
/// real .NET client: every acknowledged token is served exactly once, in order. Times are
/// printed (docs/PERFORMANCE.md), never asserted.
/// </summary>
public sealed class PostgresTierTests(ITestOutputHelper output)
{
    [Fact]
    public async Task LosingTheOwnersMachineLosesNoAcknowledgedOp()
    {
        using var postgres = PostgresServer.Start();
        await using var cluster = await TestCluster.StartWithPostgresAsync(postgres.ConnectionString);
        var typists = await Typists.OpenAsync(cluster, "lost", 6);
        try
        {
            Typists.StartAll(typists);
            await Typists.WaitForProgressAsync(typists, 10);
            var owner = await cluster.OwnerAsync("lost");
            cluster.Node(owner).Kill();
            var killedAt = Stopwatch.GetTimestamp();
            cluster.WipeDisk(owner); // the machine is gone, and its disk with it
            await Typists.WaitForProgressAsync(typists, 5);
            var resumed = typists.Max(t => Stopwatch.GetElapsedTime(killedAt, t.FirstAckAfter(killedAt)!.Value));
            await Typists.StopAllAndCheckAsync(typists);

            var survivor = (owner + 1) % 3;
            var newOwner = await cluster.OwnerAsync("lost", via: survivor);
            Assert.NotEqual(owner, newOwner);
            var text = await AssertServedWholeAsync(cluster, survivor, "lost");
            foreach (var t in typists)
            {
                t.AssertAllOnceInOrder(text);
            }

            // The new owner takes edits again, and a node back with an empty disk joins and serves it too.
            await cluster.StartNodeAsync(owner);
            await cluster.WaitAllListedAsync();
            var put = await cluster.Http.PutAsJsonAsync(new Uri(cluster.Url(owner), "/api/docs/lost"), new { text = text + "!" });
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            Assert.Equal(text + "!", await TextAsync(cluster, owner, "lost"));
            output.WriteLine($"owner SIGKILLed and its disk deleted, 6 clients typing (lease TTL {TestCluster.LeaseTtl.TotalSeconds} s): writing again after {resumed.TotalMilliseconds:0} ms; {typists.Sum(t => t.Typed)} tokens acknowledged, 0 lost");
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }

    [Fact]
    public async Task ANodeAddedWithAnEmptyDiskTakesADocumentOverByALiveMove()
    {
        using var postgres = PostgresServer.Start();
        await using var cluster = await TestCluster.StartWithPostgresAsync(postgres.ConnectionString, nodes: 3, running: 2);
        var typists = await Typists.OpenAsync(cluster, "moved", 4, nodes: 2);
        try
        {
            Typists.StartAll(typists);
            await Typists.WaitForProgressAsync(typists, 20);
            await cluster.StartNodeAsync(2); // a new machine: nothing on its disk
            await cluster.WaitAllListedAsync();
            Assert.False(File.Exists(Path.Combine(cluster.NodeDataDir(2), "docs", "moved.db")));

            var answer = await cluster.Http.PostAsJsonAsync(new Uri(cluster.Url(0), "/api/docs/moved/move"), new { node = TestCluster.NodeId(2) });
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal(2, await cluster.OwnerAsync("moved"));
            await Typists.WaitForProgressAsync(typists, 5);
            await Typists.StopAllAndCheckAsync(typists);
            var text = await AssertServedWholeAsync(cluster, 2, "moved");
            foreach (var t in typists)
            {
                t.AssertAllOnceInOrder(text);
            }
            Assert.True(File.Exists(Path.Combine(cluster.NodeDataDir(2), "docs", "moved.db")), "the new owner keeps a working copy");
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }

    [Fact]
    public async Task AnOwnerFrozenPastItsLeaseIsRefusedByPostgres()
    {
        using var postgres = PostgresServer.Start();
        await using var cluster = await TestCluster.StartWithPostgresAsync(postgres.ConnectionString);
        await using var stale = await Probe.ConnectAsync(cluster.Url(0));
        Assert.Null((await stale.JoinAsync("frozen")).Redirect); // unowned: node 0 claims it
        Assert.Equal("1", await stale.SubmitAsync("frozen", 0, 0, "a"));
        Assert.Equal(0, await cluster.OwnerAsync("frozen"));

        cluster.Node(0).Pause();
        try
        {
            await Eventually.TrueAsync(async () => await cluster.OwnerAsync("frozen", via: 1) != 0, "n1's lease runs out");
            await using var writer = await Typist.OpenAsync("w", cluster.Url(1), "frozen");
            writer.Start(limit: 5);
            await writer.WaitForAckedAsync(5);

            // Sent to the frozen node: they wait in its socket until it wakes.
            var late = Enumerable.Range(0, 3).Select(i => stale.SubmitAsync("frozen", 1, 1, $"STALE{i}")).ToList();
            cluster.Node(0).Continue();
            var answers = await Task.WhenAll(late);
            output.WriteLine($"the woken node answered: {string.Join(" | ", answers)}");

            // Each is refused: its commit fenced off by PostgreSQL (and counted), or not_joined when
            // the node learned of the loss first and sent its members away.
            Assert.All(answers, a => Assert.True(a.StartsWith("unavailable:") || a.StartsWith("not_joined:"), a));
            // One fenced batch refuses every op waiting behind it with the same answer: the
            // metrics count batches, the answers ops.
            var fenced = answers.Count(a => a.Contains("fenced off by epoch", StringComparison.Ordinal) && a.Contains("PostgreSQL", StringComparison.Ordinal));
            var fencedBatches = await cluster.MetricAsync(0, "collab_postgres_failures_total");
            Assert.Equal(fenced > 0, fencedBatches > 0);
            Assert.True(fencedBatches <= fenced, $"{fencedBatches} batches fenced, {fenced} ops answered so");
            Assert.Equal(fencedBatches, await cluster.MetricAsync(0, "collab_cluster_fenced_commits_total"));
            var text = await AssertServedWholeAsync(cluster, 2, "frozen");
            Assert.Equal("a" + string.Concat(Enumerable.Range(0, 5).Select(i => Typist.Token("w", i))), text);
            Assert.Equal("0", postgres.Psql("SELECT count(*) FROM collab_ops WHERE op LIKE '%STALE%'").Trim());
        }
        finally
        {
            cluster.Node(0).Continue();
        }
    }

    [Fact]
    public async Task RestartingPostgresUnderLoadLosesNothingAndServiceComesBack()
    {
        using var postgres = PostgresServer.Start();
        await using var cluster = await TestCluster.StartWithPostgresAsync(postgres.ConnectionString);
        var typists = await Typists.OpenAsync(cluster, "pgdown", 6);
        try
        {
            Typists.StartAll(typists);
            await Typists.WaitForProgressAsync(typists, 10);
            postgres.StopImmediate();
            var stoppedAt = Stopwatch.GetTimestamp();
            // While it is down, nothing is acknowledged and a REST write answers unavailable.
            var owner = await cluster.OwnerAsync("pgdown");
            var during = await cluster.Http.PutAsJsonAsync(new Uri(cluster.Url(owner), "/api/docs/pgdown"), new { text = "lost?" });
            Assert.Equal(HttpStatusCode.ServiceUnavailable, during.StatusCode);
            var down = Stopwatch.GetElapsedTime(stoppedAt);
            postgres.Restart();
            var restartedAt = Stopwatch.GetTimestamp();
            await Typists.WaitForProgressAsync(typists, 10);
            var back = typists.Max(t => Stopwatch.GetElapsedTime(restartedAt, t.FirstAckAfter(restartedAt)!.Value));
            await Typists.StopAllAndCheckAsync(typists);
            var text = await AssertServedWholeAsync(cluster, (owner + 1) % 3, "pgdown");
            Assert.DoesNotContain("lost?", text);
            foreach (var t in typists)
            {
                t.AssertAllOnceInOrder(text);
            }
            output.WriteLine($"PostgreSQL stopped (immediate) for {down.TotalMilliseconds:0} ms under 6 clients: every client writing again {back.TotalMilliseconds:0} ms after it was ready again; {await cluster.MetricAsync(owner, "collab_postgres_failures_total")} batches refused meanwhile, 0 acknowledged ops lost");
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }

    [Fact]
    public async Task LosingThePrimaryToAPromotedSynchronousStandbyLosesNoAcknowledgedOp()
    {
        using var primary = PostgresServer.Start();
        using var s1 = primary.StartStandby("s1");
        using var s2 = primary.StartStandby("s2");
        // A commit returns once one of the two standbys has it on disk.
        primary.SetSynchronousStandbys("ANY 1 (s1, s2)");
        // The nodes know all three; Npgsql finds the primary among them (rechecking each second).
        var hosts = PostgresServer.MultiHost(primary, s1, s2) + ";Host Recheck Seconds=1";
        await using var cluster = await TestCluster.StartWithPostgresAsync(hosts);
        var typists = await Typists.OpenAsync(cluster, "failover", 6);
        try
        {
            Typists.StartAll(typists);
            await Typists.WaitForProgressAsync(typists, 10);
            primary.Kill();
            var killedAt = Stopwatch.GetTimestamp();
            // The operator promotes the standby that has received the most.
            var chosen = s1.ReceivedLsn() >= s2.ReceivedLsn() ? s1 : s2;
            chosen.Promote();
            var promoted = Stopwatch.GetElapsedTime(killedAt);
            var promotedAt = Stopwatch.GetTimestamp();
            await Typists.WaitForProgressAsync(typists, 10);
            var back = typists.Max(t => Stopwatch.GetElapsedTime(promotedAt, t.FirstAckAfter(promotedAt)!.Value));
            await Typists.StopAllAndCheckAsync(typists);
            var text = await AssertServedWholeAsync(cluster, 0, "failover");
            foreach (var t in typists)
            {
                t.AssertAllOnceInOrder(text);
            }
            output.WriteLine($"primary SIGKILLed, standby promoted {promoted.TotalMilliseconds:0} ms later, 6 clients typing: every client writing again {back.TotalMilliseconds:0} ms after the promotion; {typists.Sum(t => t.Typed)} tokens acknowledged, 0 lost");
        }
        finally
        {
            await Typists.DisposeAllAsync(typists);
        }
    }

    [Fact]
    public async Task ARenameOnOneNodeRedirectsOnEveryNodeUntilTheOldIdIsWrittenAgain()
    {
        using var postgres = PostgresServer.Start();
        // Each node has a data directory of its own: only PostgreSQL can tell the others about the rename.
        await using var cluster = await TestCluster.StartWithPostgresAsync(postgres.ConnectionString, nodes: 2);
        using var pages = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
        foreach (var (id, text) in new[] { ("plan", "v1"), ("plan", "v2"), ("plan-2026", "v2") })
        {
            Assert.Equal(HttpStatusCode.OK, (await cluster.Http.PutAsJsonAsync(new Uri(cluster.Url(0), $"/api/docs/{id}"), new { text })).StatusCode);
        }

        // Asked of the node that does not own it: forwarded to the owner, query and all.
        var stale = await cluster.Http.DeleteAsync(new Uri(cluster.Url(1), "/api/docs/plan?version=1&movedTo=plan-2026"));
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await cluster.Http.DeleteAsync(new Uri(cluster.Url(1), "/api/docs/plan?version=2&movedTo=plan-2026"))).StatusCode);

        for (var node = 0; node < 2; node++)
        {
            var page = await pages.GetAsync(new Uri(cluster.Url(node), "/d/plan"));
            Assert.True(page.StatusCode == HttpStatusCode.Found, $"{TestCluster.NodeId(node)}: {(int)page.StatusCode}");
            Assert.Equal("/d/plan-2026", page.Headers.Location?.OriginalString);
            var missing = await cluster.Http.GetAsync(new Uri(cluster.Url(node), "/api/docs/plan"));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            Assert.Equal("plan-2026", (await missing.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("movedTo").GetString());
        }

        Assert.Equal(HttpStatusCode.OK, (await cluster.Http.PutAsJsonAsync(new Uri(cluster.Url(1), "/api/docs/plan"), new { text = "new plan" })).StatusCode);
        for (var node = 0; node < 2; node++)
        {
            // Served, not redirected (these processes run without the pages in their content root, so the page itself is a 500).
            var page = await pages.GetAsync(new Uri(cluster.Url(node), "/d/plan"));
            Assert.True(page.StatusCode != HttpStatusCode.Found && page.Headers.Location is null, $"{TestCluster.NodeId(node)}: {(int)page.StatusCode} {page.Headers.Location}");
            Assert.Equal("new plan", await TextAsync(cluster, node, "plan"));
        }
    }

    /// <summary>
    /// The document as node <paramref name="via"/> serves it over REST, checked against its op log:
    /// versions 1..N each once, and the ops replayed give the text. Returns the text.
    /// </summary>
    private static async Task<string> AssertServedWholeAsync(TestCluster cluster, int via, string docId)
    {
        var answer = await cluster.Http.GetAsync(new Uri(cluster.Url(via), $"/api/docs/{docId}"));
        Assert.True(answer.IsSuccessStatusCode, $"GET /api/docs/{docId} on {TestCluster.NodeId(via)}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
        var doc = await answer.Content.ReadFromJsonAsync<JsonElement>();
        var version = doc.GetProperty("version").GetInt32();
        var text = doc.GetProperty("text").GetString()!;
        var replayed = Collab.Ot.Rope.Empty;
        var next = 1;
        while (next <= version)
        {
            var ops = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(via), $"/api/docs/{docId}/ops?from={next - 1}"));
            var page = ops.ValueKind == JsonValueKind.Array ? ops : ops.GetProperty("ops");
            Assert.True(page.GetArrayLength() > 0, $"the op log ends at {next - 1}, below version {version}");
            foreach (var op in page.EnumerateArray())
            {
                Assert.Equal(next, op.GetProperty("version").GetInt32());
                replayed = System.Text.Json.JsonSerializer.Deserialize<Collab.Ot.TextOperation>(op.GetProperty("op").GetRawText())!.Apply(replayed);
                next++;
            }
        }
        Assert.Equal(text, replayed.ToString());
        return text;
    }

    private static async Task<string> TextAsync(TestCluster cluster, int via, string docId) =>
        (await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(via), $"/api/docs/{docId}"))).GetProperty("text").GetString()!;
}
