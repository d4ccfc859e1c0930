using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Tests.Infrastructure;
using Collab.Testing;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Data.Sqlite;

namespace CollabServer.Tests.History;

/// <summary>Reading the past, restoring it and the history listing (PROTOCOL §7), with snapshots every 10 ops, one kept every 25 versions.</summary>
public sealed class HistoryTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:SnapshotInterval"] = "10",
    ["Collab:History:SnapshotSpacing"] = "25",
})
{
    private static object?[] Wire(TextOperation op) =>
        JsonSerializer.Deserialize<JsonElement>(op.ToString()).EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.Number ? (object?)e.GetInt32() : e.GetString())
            .ToArray();

    private static string Iso(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Two members alternate a seeded random history of inserts and deletes; returns the final text.</summary>
    private async Task<string> SeedAsync(string docId, int ops, int seed)
    {
        var rng = new Random(seed);
        var members = new[] { await Host.ConnectAsync(), await Host.ConnectAsync() };
        await members[0].JoinAsync(docId, "m0");
        await members[1].JoinAsync(docId, "m1");
        var text = "";
        for (var v = 0; v < ops; v++)
        {
            var op = v == 0 ? TextOperation.Insert(0, "seed text") : OpGen.Op(rng, text);
            if (op.IsNoop)
            {
                op = TextOperation.Insert(0, "x");
            }
            var who = rng.Next(2);
            Assert.Equal(v + 1, (await members[who].SubmitAsync(docId, v, Wire(op), v + 1)).Version);
            text = op.Apply(text);
        }
        return text;
    }

    private async Task<List<JsonElement>> OpsAsync(string docId) =>
        (await Host.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{docId}/ops?from=0&limit=10000"))!.EnumerateArray().ToList();

    private async Task<JsonElement> GetAsync(string path)
    {
        var response = await Host.Http.GetAsync(path);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, string code, HttpStatusCode status = HttpStatusCode.BadRequest)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{status} expected: {response.StatusCode} {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("type").GetString());
    }

    [Fact]
    public async Task EveryVersionOfARandomHistoryIsItsOpsReplayedFromZero()
    {
        var final = await SeedAsync("past", 300, seed: 9);
        var ops = await OpsAsync("past");
        Assert.Equal(300, ops.Count);

        // Several snapshots are kept for history, at least 25 versions apart, besides the newest two.
        using (var db = new SqliteConnection($"Data Source={Path.Combine(Host.DataDir, "docs", "past.db")};Mode=ReadOnly;Pooling=False"))
        {
            db.Open();
            using var query = db.CreateCommand();
            query.CommandText = "SELECT version FROM snapshots ORDER BY version";
            var snapshots = new List<int>();
            using (var reader = query.ExecuteReader())
            {
                while (reader.Read())
                {
                    snapshots.Add(reader.GetInt32(0));
                }
            }
            Assert.True(snapshots.Count >= 8, string.Join(",", snapshots));
            var kept = snapshots.Take(snapshots.Count - 2).Prepend(0).ToList();
            Assert.All(kept.Zip(kept.Skip(1)), p => Assert.True(p.Second - p.First >= 25, string.Join(",", snapshots)));
        }

        var text = "";
        for (var v = 0; v <= 300; v++)
        {
            if (v > 0)
            {
                text = ops[v - 1].GetProperty("op").Deserialize<TextOperation>()!.Apply(text);
            }
            var doc = await GetAsync($"/api/docs/past?version={v}");
            Assert.Equal("past", doc.GetProperty("id").GetString());
            Assert.Equal(v, doc.GetProperty("version").GetInt32());
            Assert.Equal(text, doc.GetProperty("text").GetString());
            if (v > 0)
            {
                Assert.Equal(ops[v - 1].GetProperty("createdAt").GetDateTimeOffset(), doc.GetProperty("at").GetDateTimeOffset());
            }
        }
        Assert.Equal(final, text);
        Assert.Equal((300, final), await Host.GetDocAsync("past"));
    }

    [Fact]
    public async Task AtPicksTheLastVersionCommittedAtOrBeforeTheInstant()
    {
        await SeedAsync("times", 60, seed: 3);
        var ops = await OpsAsync("times");
        var times = ops.Select(o => o.GetProperty("createdAt").GetDateTimeOffset().ToUnixTimeMilliseconds()).ToList();
        // Op times never go backwards.
        Assert.All(times.Zip(times.Skip(1)), p => Assert.True(p.First <= p.Second));
        int Expected(long ms) => times.Count(t => t <= ms); // versions are 1…n in time order

        foreach (var t in times.Distinct())
        {
            foreach (var ms in new[] { t - 1, t, t + 1 })
            {
                var path = $"/api/docs/times?at={Iso(ms)}";
                if (ms < times[0])
                {
                    // Before the document was created (its first op made it).
                    await AssertProblemAsync(await Host.Http.GetAsync(path), ErrorCodes.UnknownVersion);
                    continue;
                }
                var doc = await GetAsync(path);
                var v = Expected(ms);
                Assert.Equal(v, doc.GetProperty("version").GetInt32());
                Assert.Equal(times[v - 1], doc.GetProperty("at").GetDateTimeOffset().ToUnixTimeMilliseconds());
                Assert.Equal((await GetAsync($"/api/docs/times?version={v}")).GetProperty("text").GetString(), doc.GetProperty("text").GetString());
            }
        }
        // An offset other than Z (with '+' escaped in the query) and a time in the future.
        var local = DateTimeOffset.FromUnixTimeMilliseconds(times[10]).ToOffset(TimeSpan.FromHours(2)).ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", CultureInfo.InvariantCulture);
        Assert.Equal(Expected(times[10]), (await GetAsync($"/api/docs/times?at={Uri.EscapeDataString(local)}")).GetProperty("version").GetInt32());
        Assert.Equal(60, (await GetAsync($"/api/docs/times?at={Iso(times[^1] + 3_600_000)}")).GetProperty("version").GetInt32());
    }

    [Fact]
    public async Task ARestoreIsOneOpBroadcastToMembersAndARestoreOfARestoreBringsTheTextBack()
    {
        Assert.Equal(HttpStatusCode.OK, (await Host.Http.PutAsJsonAsync("/api/docs/r", new { text = "hello world" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Host.Http.PutAsJsonAsync("/api/docs/r", new { text = "hello brave new world" })).StatusCode);
        var bob = await Host.ConnectAsync();
        var bobOps = bob.Collect<OpMessage>("Op");
        var joined = await bob.JoinAsync("r", "bob");
        var bobText = joined.Text!;
        Assert.Equal(3, (await bob.SubmitAsync("r", 2, [21, "!"], 1)).Version);
        bobText = "hello brave new world!";

        async Task<int> RestoreAsync(object body)
        {
            var response = await Host.Http.PostAsJsonAsync("/api/docs/r/restore", body);
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            var result = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("r", result.GetProperty("id").GetString());
            return result.GetProperty("version").GetInt32();
        }

        async Task BobReceivesAsync(int version)
        {
            var op = await bobOps.NextAsync();
            Assert.Equal((version, ""), (op.Version, op.ClientId));
            bobText = op.Op.Apply(bobText);
        }

        Assert.Equal(4, await RestoreAsync(new { version = 1 }));
        await BobReceivesAsync(4);
        Assert.Equal("hello world", bobText);
        Assert.Equal((4, "hello world"), await Host.GetDocAsync("r"));

        // Undo the restore by restoring the version before it: nothing was lost.
        Assert.Equal(5, await RestoreAsync(new { version = 3 }));
        await BobReceivesAsync(5);
        Assert.Equal("hello brave new world!", bobText);
        Assert.Equal((5, bobText), await Host.GetDocAsync("r"));

        // By time: the instant version 2 was committed.
        var at = (await GetAsync("/api/docs/r?version=2")).GetProperty("at").GetString()!;
        Assert.Equal(6, await RestoreAsync(new { at }));
        await BobReceivesAsync(6);
        Assert.Equal((6, "hello brave new world"), await Host.GetDocAsync("r"));
        Assert.Equal("hello brave new world", bobText);

        // Restoring the text it already has appends nothing.
        Assert.Equal(6, await RestoreAsync(new { version = 6 }));
        Assert.Equal(6, (await OpsAsync("r")).Count);
    }

    [Fact]
    public async Task OldVersionsAndHistoryAreReadWithoutLoadingTheDocument()
    {
        var dataDir = TestHost.NewDataDir();
        var settings = new Dictionary<string, string?> { ["Collab:SnapshotInterval"] = "10", ["Collab:History:SnapshotSpacing"] = "0" };
        try
        {
            await using (var first = new TestHost(dataDir, settings))
            {
                for (var i = 1; i <= 30; i++)
                {
                    await first.Http.PutAsJsonAsync("/api/docs/cold", new { text = $"text {i}" });
                }
            }
            await using var second = new TestHost(dataDir, settings);
            var registry = second.GetService<CollabServer.Documents.DocumentRegistry>();
            var doc = await second.Http.GetFromJsonAsync<JsonElement>("/api/docs/cold?version=17");
            Assert.Equal("text 17", doc.GetProperty("text").GetString());
            Assert.Equal(30, (await second.Http.GetFromJsonAsync<JsonElement>("/api/docs/cold/history")).GetArrayLength());
            Assert.Equal(0, registry.ActiveCount); // no actor was started for them
            Assert.Equal("text 30", (await second.Http.GetFromJsonAsync<JsonElement>("/api/docs/cold?version=30")).GetProperty("text").GetString());
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task HistoryNamesEachMemberAndSaysWhatEachServerWriteWasAfterARestartToo()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            await using (var first = new TestHost(dataDir))
            {
                var ada = await first.ConnectAsync();
                var bob = await first.ConnectAsync();
                await ada.InvokeAsync<JoinResult>("Join", new JoinRequest { DocId = "named", ClientId = "ada-pen", User = new UserInfo { Name = "Ada", Color = "#f00" } });
                await bob.InvokeAsync<JoinResult>("Join", new JoinRequest { DocId = "named", ClientId = "bob-pen", User = new UserInfo { Name = "Bob", Color = "#00f" } });
                await ada.SubmitAsync("named", 0, ["one"], 1);
                await bob.SubmitAsync("named", 1, [3, " two"], 1);
                // Ada renames herself: her next op is hers under the new name.
                await ada.InvokeAsync("SetPresence", new PresenceRequest { DocId = "named", Version = 2, User = new UserInfo { Name = "Ada L.", Color = "#f00" } });
                await ada.SubmitAsync("named", 2, [7, " three"], 2);
                Assert.Equal(HttpStatusCode.OK, (await first.Http.PutAsJsonAsync("/api/docs/named", new { text = "replaced" })).StatusCode);
                Assert.Equal(HttpStatusCode.OK, (await first.Http.PostAsJsonAsync("/api/docs/named/restore", new { version = 2 })).StatusCode);
            }
            // Another server process on the same files: the names come from the database.
            await using var second = new TestHost(dataDir);
            var history = (await second.Http.GetFromJsonAsync<JsonElement>("/api/docs/named/history"))!.EnumerateArray()
                .Select(e => (e.GetProperty("version").GetInt32(), e.GetProperty("clientId").GetString(), e.GetProperty("author").GetProperty("kind").GetString(),
                    e.GetProperty("author").TryGetProperty("name", out var name) ? name.GetString() : null))
                .ToList();
            Assert.Equal([(5, "", "restore", null), (4, "", "edit", null), (3, "ada-pen", "member", "Ada L."), (2, "bob-pen", "member", "Bob"), (1, "ada-pen", "member", "Ada L.")], history);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task BadParametersAnswer400WithTheProtocolsCodes()
    {
        await Host.Http.PutAsJsonAsync("/api/docs/bad", new { text = "one" });
        await Host.Http.PutAsJsonAsync("/api/docs/bad", new { text = "two" });
        foreach (var (query, code) in new[]
        {
            ("?version=-1", ErrorCodes.UnknownVersion),
            ("?version=3", ErrorCodes.UnknownVersion),
            ("?version=abc", ErrorCodes.InvalidOp),
            ("?version=1.5", ErrorCodes.InvalidOp),
            ("?at=yesterday", ErrorCodes.InvalidOp),
            ("?at=2025-13-01T00:00:00Z", ErrorCodes.InvalidOp),
            ("?at=2000-01-01T00:00:00Z", ErrorCodes.UnknownVersion),
            ("?version=1&at=2030-01-01T00:00:00Z", ErrorCodes.InvalidOp),
            ("/history?before=0", ErrorCodes.UnknownVersion),
            ("/history?before=4", ErrorCodes.UnknownVersion),
            ("/history?before=x", ErrorCodes.InvalidOp),
            ("/history?limit=0", ErrorCodes.InvalidOp),
            ("/history?limit=501", ErrorCodes.InvalidOp),
            ("/history?limit=ten", ErrorCodes.InvalidOp),
        })
        {
            await AssertProblemAsync(await Host.Http.GetAsync($"/api/docs/bad{query}"), code);
        }
        foreach (var (body, code) in new[]
        {
            ("{}", ErrorCodes.InvalidOp),
            ("{\"version\":\"1\"}", ErrorCodes.InvalidOp),
            ("{\"version\":1,\"at\":\"2030-01-01T00:00:00Z\"}", ErrorCodes.InvalidOp),
            ("[1]", ErrorCodes.InvalidOp),
            ("not json", ErrorCodes.InvalidOp),
            ("{\"at\":\"soon\"}", ErrorCodes.InvalidOp),
            ("{\"version\":9}", ErrorCodes.UnknownVersion),
            ("{\"version\":-1}", ErrorCodes.UnknownVersion),
            ("{\"at\":\"2000-01-01T00:00:00Z\"}", ErrorCodes.UnknownVersion),
        })
        {
            await AssertProblemAsync(await Host.Http.PostAsync("/api/docs/bad/restore", new StringContent(body)), code);
        }
        Assert.Equal((2, "two"), await Host.GetDocAsync("bad"));
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/none?version=0")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/none/history")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.PostAsJsonAsync("/api/docs/none/restore", new { version = 0 })).StatusCode);
        await AssertProblemAsync(await Host.Http.GetAsync("/api/docs/.x/history"), ErrorCodes.InvalidDocId);
    }

    [Fact]
    public async Task HistoryGroupsOneMembersRunAndSeparatesAlternatingMembers()
    {
        var alice = await Host.ConnectAsync();
        var bob = await Host.ConnectAsync();
        await alice.JoinAsync("g", "alice");
        await bob.JoinAsync("g", "bob");
        var v = 0;
        async Task TypeAsync(HubConnection who, int count)
        {
            for (var i = 0; i < count; i++, v++)
            {
                await who.SubmitAsync("g", v, ["x"], v + 1);
            }
        }
        await TypeAsync(alice, 3);  // 1..3
        await TypeAsync(bob, 1);    // 4
        await TypeAsync(alice, 1);  // 5
        await TypeAsync(bob, 1);    // 6
        await TypeAsync(alice, 1);  // 7
        await TypeAsync(bob, 4);    // 8..11
        await Host.Http.PutAsJsonAsync("/api/docs/g", new { text = "server" }); // 12
        await Host.Http.PutAsJsonAsync("/api/docs/g", new { text = "server 2" }); // 13: the server's ops are never grouped

        var ops = await OpsAsync("g");
        var expected = new[] { (13, 13, ""), (12, 12, ""), (11, 8, "bob"), (7, 7, "alice"), (6, 6, "bob"), (5, 5, "alice"), (4, 4, "bob"), (3, 1, "alice") };
        var history = (await GetAsync("/api/docs/g/history")).EnumerateArray().ToList();
        Assert.Equal(expected, history.Select(e => (e.GetProperty("version").GetInt32(), e.GetProperty("fromVersion").GetInt32(), e.GetProperty("clientId").GetString()!)));
        Assert.All(history, e => Assert.Equal(
            ops[e.GetProperty("version").GetInt32() - 1].GetProperty("createdAt").GetDateTimeOffset(),
            e.GetProperty("at").GetDateTimeOffset()));
        Assert.All(history, e => Assert.False(e.TryGetProperty("user", out _)));

        // Paged: three at a time, following the Link header or the last fromVersion.
        var page = await Host.Http.GetAsync("/api/docs/g/history?limit=3");
        Assert.Equal("</api/docs/g/history?before=8&limit=3>; rel=\"next\"", page.Headers.GetValues("Link").Single());
        var second = (await GetAsync("/api/docs/g/history?before=8&limit=3")).EnumerateArray()
            .Select(e => (e.GetProperty("version").GetInt32(), e.GetProperty("fromVersion").GetInt32(), e.GetProperty("clientId").GetString()!));
        Assert.Equal(expected[3..6], second);
        var last = await Host.Http.GetAsync("/api/docs/g/history?before=5&limit=3");
        Assert.False(last.Headers.Contains("Link"));
        Assert.Equal(2, (await last.Content.ReadFromJsonAsync<JsonElement>()).GetArrayLength());
        Assert.Equal(0, (await GetAsync("/api/docs/g/history?before=1")).GetArrayLength());
    }
}
