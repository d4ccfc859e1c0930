using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>Clients through any node of a real three-node cluster end up on the document's owner; REST answers from any node.</summary>
public sealed class RoutingTests
{
    [Fact]
    public async Task ClientsJoiningThroughEveryNodeEndUpOnTheOwnerAndConverge()
    {
        await using var cluster = await TestCluster.StartAsync();
        var typists = new List<Typist>();
        try
        {
            for (var i = 0; i < 6; i++)
            {
                typists.Add(await Typist.OpenAsync($"t{i}", cluster.Url(i % 3), "shared"));
            }
            foreach (var t in typists)
            {
                t.Start(limit: 30);
            }
            foreach (var t in typists)
            {
                await t.WaitForAckedAsync(30);
            }
            await Eventually.TrueAsync(() => Task.FromResult(typists.All(t => t.Document.Text == typists[0].Document.Text && t.Typed == 30)), "every client has the same text");

            // One owner, known to every node; the other nodes own nothing.
            var owner = await cluster.OwnerAsync("shared", via: 0);
            Assert.InRange(owner, 0, 2);
            for (var via = 0; via < 3; via++)
            {
                Assert.Equal(owner, await cluster.OwnerAsync("shared", via));
            }
            // A node whose lease was taken over (a renewal late on a busy machine) lets go of it at
            // its next renewal, a third of a lease later: wait for that, not for an instant.
            await Eventually.TrueAsync(async () =>
            {
                for (var via = 0; via < 3; via++)
                {
                    if (await cluster.MetricAsync(via, "collab_cluster_documents_owned") != (via == owner ? 1 : 0))
                    {
                        return false;
                    }
                }
                return true;
            }, "only the owner counts the document as owned");
            // Each node publishes its count of documents with its registration, renewed every third of a lease.
            await Eventually.TrueAsync(async () =>
            {
                var listed = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(1), "/api/cluster"));
                return listed.EnumerateArray().Select(n => n.GetProperty("node").GetString()!).SequenceEqual(["n1", "n2", "n3"])
                    && listed.EnumerateArray().Sum(n => n.GetProperty("documents").GetInt32()) == 1;
            }, "GET /api/cluster lists the three nodes and the one document");
            // The four clients that came in through other nodes were redirected.
            Assert.Equal(4, await cluster.MetricAsync((owner + 1) % 3, "collab_cluster_redirects_total") + await cluster.MetricAsync((owner + 2) % 3, "collab_cluster_redirects_total"));

            var text = typists[0].Document.Text;
            foreach (var t in typists)
            {
                t.AssertAllOnceInOrder(text);
            }

            // REST through a node that does not own the document is answered by the owner.
            var other = cluster.Url((owner + 1) % 3);
            var doc = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(other, "/api/docs/shared"));
            Assert.Equal(text, doc.GetProperty("text").GetString());
            var put = await cluster.Http.PutAsJsonAsync(new Uri(other, "/api/docs/shared"), new { text = "replaced" });
            Assert.Equal(HttpStatusCode.OK, put.StatusCode);
            await Eventually.TrueAsync(() => Task.FromResult(typists.All(t => t.Document.Text == "replaced")), "the PUT through another node reached every client");
            var missing = await cluster.Http.GetAsync(new Uri(other, "/api/docs/nothing-here"));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
        finally
        {
            foreach (var t in typists)
            {
                await t.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task RedisSeesOnlyRegistryAndLeaseCommandsHoweverManyEditsAreMade()
    {
        await using var cluster = await TestCluster.StartAsync();
        await using var a = await Typist.OpenAsync("a", cluster.Url(0), "counted");
        await using var b = await Typist.OpenAsync("b", cluster.Url(1), "counted");
        var before = cluster.Redis.CommandStats();
        a.Start(limit: 300);
        b.Start(limit: 300);
        await a.WaitForAckedAsync(300);
        await b.WaitForAckedAsync(300);
        var after = cluster.Redis.CommandStats();

        // The routing store's own vocabulary (SETEX and SADD register a node; EVALSHA runs the lease scripts, whose GET/SET/
        // PEXPIRE/INCR/DEL calls Redis counts too), and what the client library says when it
        // connects (INFO, CLIENT, CONFIG, ECHO, PING, SUBSCRIBE, HELLO, CLUSTER, SCRIPT, EVAL).
        string[] routing = ["evalsha", "eval", "get", "set", "setex", "pexpire", "incr", "del", "sadd", "srem", "smembers", "mget", "script|load", "script"];
        string[] handshake = ["info", "client|setname", "client|setinfo", "client", "config|get", "config", "echo", "ping", "subscribe", "hello", "cluster|nodes", "cluster", "sentinel", "command", "command|docs", "command|count"];
        var grew = after.Where(kv => kv.Value > before.GetValueOrDefault(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value - before.GetValueOrDefault(kv.Key));
        Assert.All(grew.Keys, name => Assert.Contains(name, routing.Concat(handshake)));
        // 600 edits, and far fewer Redis commands: none of them is per edit.
        Assert.True(grew.Values.Sum() < 600, $"Redis saw {grew.Values.Sum()} commands during 600 edits: {string.Join(", ", grew)}");
    }

    [Fact]
    public async Task JoiningIdsNobodyWritesLeavesNoRedisKeyForEver()
    {
        await using var cluster = await TestCluster.StartAsync();
        await using var probe = await Probe.ConnectAsync(cluster.Url(0));
        for (var i = 0; i < 20; i++)
        {
            var id = $"never-written-{i}";
            var joined = await probe.JoinAsync(id);
            if (joined.Redirect is { } owner)
            {
                await using var there = await Probe.ConnectAsync(new Uri(owner));
                await there.JoinAsync(id);
            }
        }
        var keys = cluster.Redis.Cli("--scan", "--pattern", "collab:*never-written-*").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.NotEmpty(keys);
        // Every key an unwritten document left has an expiry (PTTL -1 means none; -2, already gone, cannot be listed above).
        Assert.All(keys, key => Assert.NotEqual("-1", cluster.Redis.Cli("PTTL", key).Trim()));
    }

    [Fact]
    public async Task ANodeOnADiskOfItsOwnWithoutPostgresRefusesToJoin()
    {
        await using var cluster = await TestCluster.StartAsync(nodes: 2);
        var ownDisk = Directory.CreateTempSubdirectory("collab-own-disk-").FullName;
        try
        {
            var port = ServerProcess.FreePort();
            using var node = await ServerProcess.StartDllAsync(ServerProcess.ServerDll, ownDisk, port, waitReady: false,
            [
                $"--Collab:DataDir={ownDisk}",
                $"--Collab:Redis={cluster.Redis.Configuration}",
                "--Collab:NodeId=n9",
                $"--Collab:NodeUrl=http://127.0.0.1:{port}",
            ]);
            Assert.True(await node.WaitForExitAsync(TimeSpan.FromSeconds(60)), "the node did not stop:\n" + node.Output);
            Assert.Equal(2, node.ExitCode);
            Assert.Contains("node n9 does not share its data directory", node.Output);
            Assert.Contains("with node(s) n1, n2 of this cluster, and Collab:Postgres is not set", node.Output);
            // It left the registry: the cluster still lists its two nodes only.
            Assert.Equal(["n1", "n2"], (await cluster.NodesAsync(0)).Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(ownDisk, recursive: true);
        }
    }
}
