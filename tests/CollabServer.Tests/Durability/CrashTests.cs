using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Collab.Testing;

namespace CollabServer.Tests.Durability;

/// <summary>The server as a real process, killed with SIGKILL while clients write.</summary>
public sealed class CrashTests
{
    private const string DocId = "crash";

    [Fact]
    public async Task EveryAcknowledgedOpSurvivesSigkillExactlyOnce()
    {
        var dataDir = TestHost.NewDataDir();
        var acked = new ConcurrentDictionary<(string ClientId, long OpId), int>();
        var unacked = new ConcurrentDictionary<(string ClientId, long OpId), string>();
        try
        {
            using (var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Full"))
            {
                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, 4).Select(w => WriteUntilCutAsync(server.BaseUrl, $"writer-{w}", acked, unacked, stop.Token)).ToList();
                var deadline = DateTime.UtcNow.AddSeconds(30);
                while (acked.Count < 300 && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(20);
                }
                server.Kill();
                stop.Cancel();
                await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(120));
                Assert.True(acked.Count >= 300, $"only {acked.Count} ops were acknowledged before the deadline:\n{server.Output}");
            }

            using (var restarted = await ServerProcess.StartAsync(dataDir))
            {
                using var http = new HttpClient { BaseAddress = restarted.BaseUrl };
                var ops = await ReadAllOpsAsync(http);
                var versions = ops.Select(o => o.Version).ToList();
                Assert.Equal(Enumerable.Range(1, ops.Count), versions);
                var byId = ops.GroupBy(o => (o.ClientId, o.OpId)).ToDictionary(g => g.Key, g => g.ToList());
                Assert.All(byId, g => Assert.Single(g.Value));
                foreach (var ((clientId, opId), version) in acked)
                {
                    Assert.True(byId.TryGetValue((clientId, opId), out var found), $"acknowledged op {clientId}/{opId} (version {version}) is missing");
                    Assert.Equal(version, found[0].Version);
                }

                // Resubmitting what was in flight at the kill, with the same ids: each lands once at most.
                foreach (var ((clientId, opId), token) in unacked)
                {
                    var c = new HubConnectionBuilder().WithUrl(new Uri(restarted.BaseUrl, "hubs/collab")).AddMessagePackProtocol().Build();
                    await c.StartAsync();
                    var join = await c.JoinAsync(DocId, clientId);
                    await c.SubmitAsync(DocId, join.Version, [token], opId);
                    await c.SubmitAsync(DocId, join.Version, [token], opId);
                    await c.DisposeAsync();
                }
                var after = await ReadAllOpsAsync(http);
                Assert.All(after.GroupBy(o => (o.ClientId, o.OpId)), g => Assert.Single(g));
                var text = (await http.GetFromJsonAsync<JsonElement>($"/api/docs/{DocId}")).GetProperty("text").GetString()!;
                foreach (var (_, token) in unacked)
                {
                    Assert.Equal(1, Count(text, token));
                }
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static int Count(string text, string token)
    {
        var count = 0;
        for (var i = text.IndexOf(token, StringComparison.Ordinal); i >= 0; i = text.IndexOf(token, i + 1, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    private static async Task<List<OpMessage>> ReadAllOpsAsync(HttpClient http)
    {
        var all = new List<OpMessage>();
        while (true)
        {
            var page = await http.GetFromJsonAsync<List<OpMessage>>($"/api/docs/{DocId}/ops?from={all.Count}&limit=5000", new JsonSerializerOptions(JsonSerializerDefaults.Web));
            if (page is null || page.Count == 0)
            {
                return all;
            }
            all.AddRange(page);
        }
    }

    /// <summary>Inserts unique tokens at the start, one op in flight at a time, until the server dies.</summary>
    private static async Task WriteUntilCutAsync(Uri baseUrl, string clientId, ConcurrentDictionary<(string, long), int> acked, ConcurrentDictionary<(string, long), string> unacked, CancellationToken stop)
    {
        var c = new HubConnectionBuilder().WithUrl(new Uri(baseUrl, "hubs/collab")).AddMessagePackProtocol().Build();
        await c.StartAsync();
        var version = (await c.JoinAsync(DocId, clientId)).Version;
        try
        {
            for (long opId = 1; opId < 100_000 && !stop.IsCancellationRequested; opId++)
            {
                var token = $"<{clientId}:{opId}>";
                unacked[(clientId, opId)] = token;
                version = (await c.SubmitAsync(DocId, version, [token], opId)).Version;
                acked[(clientId, opId)] = version;
                unacked.TryRemove((clientId, opId), out _);
            }
        }
        catch (Exception)
        {
            // The server was killed: whatever this writer had in flight stays in 'unacked'. Any
            // other failure shows up as too few acknowledged ops.
        }
        try
        {
            await c.DisposeAsync();
        }
        catch (Exception)
        {
            // Closing a connection to a dead server may fail; nothing to clean up then.
        }
    }
}
