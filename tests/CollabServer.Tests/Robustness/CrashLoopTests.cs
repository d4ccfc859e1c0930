using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;
using Collab.Testing;

namespace CollabServer.Tests.Robustness;

/// <summary>
/// SIGKILL at seeded random moments during group commits, 20 times on one data
/// directory. Every acknowledged op is present exactly once at its acknowledged version, ops in
/// flight at a kill land at most once and exactly once after their resubmission with the same
/// ids, and <c>PRAGMA integrity_check</c> is clean after every kill.
/// </summary>
public sealed class CrashLoopTests(ITestOutputHelper output)
{
    private const string DocId = "crash-loop";
    private const int Rounds = 20;
    private const int Writers = 3;

    [Fact]
    public async Task TwentySigkillsDuringGroupCommitsLoseNoAcknowledgedOpAndLeaveTheDatabasesIntact()
    {
        var rng = new Random(20_260_807);
        var dataDir = TestHost.NewDataDir();
        var acked = new Dictionary<(string ClientId, long OpId), int>();
        var tokens = new Dictionary<(string ClientId, long OpId), string>();
        var unacked = new Dictionary<(string ClientId, long OpId), string>();
        var nextOpId = Enumerable.Range(0, Writers).ToDictionary(w => $"w{w}", _ => 1L);
        var resubmitted = 0;
        var committedUnacked = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            for (var round = 0; round < Rounds; round++)
            {
                var killAfter = rng.Next(2, 16);
                using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Full");
                using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };

                // What the last kill left: every acknowledged op once, at its version; each op that
                // was in flight at most once.
                if (round > 0)
                {
                    var log = await AssertLogAsync(http, acked, unacked.Keys, $"after kill {round}:\n{server.Output}");
                    committedUnacked += log.Count(o => unacked.ContainsKey((o.ClientId, o.OpId)));
                }

                // Resubmit what was in flight, with the same ids: each lands exactly once.
                foreach (var ((clientId, opId), token) in unacked)
                {
                    var c = await Wire.ConnectAsync(server.BaseUrl);
                    var join = await c.JoinAsync(DocId, clientId);
                    var version = (await c.SubmitAsync(DocId, join.Version, [token], opId)).Version;
                    Assert.Equal(version, (await c.SubmitAsync(DocId, join.Version, [token], opId)).Version);
                    acked[(clientId, opId)] = version;
                    resubmitted++;
                    await c.DisposeAsync();
                }
                unacked.Clear();
                await AssertLogAsync(http, acked, [], $"after resubmitting in round {round}");

                // Writers submit until the kill, one op in flight each.
                var roundAcks = new ConcurrentDictionary<(string, long), int>();
                var inFlight = new ConcurrentDictionary<(string, long), string>();
                using var stop = new CancellationTokenSource();
                var writers = new List<Task>();
                for (var w = 0; w < Writers; w++)
                {
                    var clientId = $"w{w}";
                    var firstOpId = nextOpId[clientId];
                    writers.Add(Task.Run(() => WriteUntilKilledAsync(server.BaseUrl, clientId, firstOpId, roundAcks, inFlight, stop.Token)));
                }
                var deadline = Stopwatch.StartNew();
                while (roundAcks.Count < killAfter && deadline.Elapsed < TimeSpan.FromSeconds(120) && writers.Any(t => !t.IsCompleted))
                {
                    await Task.Delay(2);
                }
                server.Kill(); // SIGKILL, while the other writers' ops are being committed
                stop.Cancel();
                await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(120));
                Assert.True(roundAcks.Count >= killAfter, $"round {round}: only {roundAcks.Count} of {killAfter} ops were acknowledged before the kill:\n{server.Output}");

                foreach (var (id, version) in roundAcks)
                {
                    acked[id] = version;
                }
                foreach (var (id, token) in inFlight)
                {
                    unacked[id] = token;
                }
                foreach (var id in roundAcks.Keys.Concat(inFlight.Keys))
                {
                    tokens[id] = Token(id.Item1, id.Item2);
                    nextOpId[id.Item1] = Math.Max(nextOpId[id.Item1], id.Item2 + 1);
                }
                AssertIntegrity(dataDir, $"after kill {round + 1}");
                output.WriteLine($"round {round + 1}: killed after {roundAcks.Count} acks (target {killAfter}), {inFlight.Count} in flight; {acked.Count} acknowledged so far; {clock.Elapsed.TotalSeconds:F0} s");
            }

            // After the last kill: recover, resubmit, and check the whole document.
            using (var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Full"))
            {
                using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
                var last = await AssertLogAsync(http, acked, unacked.Keys, $"after kill {Rounds}");
                committedUnacked += last.Count(o => unacked.ContainsKey((o.ClientId, o.OpId)));
                foreach (var ((clientId, opId), token) in unacked)
                {
                    var c = await Wire.ConnectAsync(server.BaseUrl);
                    var join = await c.JoinAsync(DocId, clientId);
                    acked[(clientId, opId)] = (await c.SubmitAsync(DocId, join.Version, [token], opId)).Version;
                    resubmitted++;
                    await c.DisposeAsync();
                }
                var ops = await AssertLogAsync(http, acked, [], "at the end");
                Assert.Equal(acked.Count, ops.Count);
                await DocumentLog.AssertTextIsReplayOfLogAsync(http, DocId);
                var text = (await http.GetFromJsonAsync<JsonElement>($"/api/docs/{DocId}")).GetProperty("text").GetString()!;
                foreach (var id in acked.Keys)
                {
                    Assert.Equal(1, Count(text, tokens[id]));
                }
                output.WriteLine($"{Rounds} kills, {acked.Count} ops acknowledged, {resubmitted} resubmitted after a kill (of which {committedUnacked} had been committed before it, unacknowledged), {clock.Elapsed.TotalSeconds:F0} s");
            }
            AssertIntegrity(dataDir, "at the end");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static string Token(string clientId, long opId) => $"<{clientId}:{opId}>";

    /// <summary>
    /// The log's versions are 1..n, no (clientId, opId) appears twice, every acknowledged op is at
    /// its acknowledged version, and each op in <paramref name="inFlight"/> appears at most once.
    /// </summary>
    private static async Task<List<Collab.Messages.OpMessage>> AssertLogAsync(HttpClient http, Dictionary<(string, long), int> acked, IEnumerable<(string, long)> inFlight, string when)
    {
        var ops = acked.Count == 0 && !inFlight.Any() && !(await DocumentLog.ListIdsAsync(http)).Contains(DocId) ? [] : await DocumentLog.ReadOpsAsync(http, DocId, limit: 37);
        Assert.Equal(Enumerable.Range(1, ops.Count), ops.Select(o => o.Version));
        var byId = ops.GroupBy(o => (o.ClientId, o.OpId)).ToDictionary(g => g.Key, g => g.Select(o => o.Version).ToList());
        foreach (var (id, versions) in byId)
        {
            Assert.True(versions.Count == 1, $"{when}: op {id} is in the log {versions.Count} times (versions {string.Join(", ", versions)})");
        }
        foreach (var (id, version) in acked)
        {
            Assert.True(byId.TryGetValue(id, out var found), $"{when}: acknowledged op {id} (version {version}) is missing");
            Assert.True(found[0] == version, $"{when}: acknowledged op {id} is at version {found[0]}, not {version}");
        }
        return ops;
    }

    /// <summary>PRAGMA integrity_check on every document database, opened read-only with the server stopped.</summary>
    private static void AssertIntegrity(string dataDir, string when)
    {
        var files = Directory.EnumerateFiles(Path.Combine(dataDir, "docs"), "*.db").ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            using var db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            db.Open();
            using var command = db.CreateCommand();
            command.CommandText = "PRAGMA integrity_check";
            var result = new List<string>();
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    result.Add(reader.GetString(0));
                }
            }
            Assert.True(result is ["ok"], $"{when}: integrity_check of {Path.GetFileName(file)}: {string.Join("; ", result)}");
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

    /// <summary>Inserts unique tokens at the start, one op in flight at a time, until the server dies.</summary>
    private static async Task WriteUntilKilledAsync(Uri baseUrl, string clientId, long firstOpId, ConcurrentDictionary<(string, long), int> acked, ConcurrentDictionary<(string, long), string> inFlight, CancellationToken stop)
    {
        HubConnection? c = null;
        HubException? refusal = null;
        try
        {
            c = await Wire.ConnectAsync(baseUrl);
            var version = (await c.JoinAsync(DocId, clientId)).Version;
            for (var opId = firstOpId; !stop.IsCancellationRequested; opId++)
            {
                inFlight[(clientId, opId)] = Token(clientId, opId);
                version = (await c.SubmitAsync(DocId, version, [Token(clientId, opId)], opId)).Version;
                acked[(clientId, opId)] = version;
                inFlight.TryRemove((clientId, opId), out _);
            }
        }
        catch (HubException ex)
        {
            // The server answered, and refused a well-formed op: that is a failure, not the kill.
            refusal = ex;
        }
        catch (Exception)
        {
            // The server was killed: what this writer had in flight stays in 'inFlight'.
        }
        await Wire.EndWriterAsync(c, refusal, clientId);
    }
}
