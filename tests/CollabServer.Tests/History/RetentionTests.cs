using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using Microsoft.Extensions.DependencyInjection;
using Collab.Ot;
using CollabServer.Tests.Infrastructure;
using Collab.Testing;

namespace CollabServer.Tests.History;

/// <summary>
/// Retention: ops older than the boundary are folded into a snapshot there; every later
/// version still reads right, earlier ones answer the oldest version kept, the document loads and
/// takes edits as before, and a client based before the boundary gets the whole text.
/// </summary>
public sealed class RetentionTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:SnapshotInterval"] = "10",
    ["Collab:History:SnapshotSpacing"] = "25",
    ["Collab:History:Retention"] = "00:00:00", // no background pass: the test folds at a chosen instant
})
{
    private sealed record LoggedOp(int Version, JsonElement Op, long CreatedAt);

    private async Task<List<LoggedOp>> OpsAsync(string id, int from = 0) =>
        (await Host.Http.GetFromJsonAsync<List<JsonElement>>($"/api/docs/{id}/ops?from={from}&limit=10000"))!
            .Select(o => new LoggedOp(o.GetProperty("version").GetInt32(), o.GetProperty("op"), o.GetProperty("createdAt").GetDateTimeOffset().ToUnixTimeMilliseconds()))
            .ToList();

    private async Task<(HttpStatusCode Status, JsonElement Body)> ReadAsync(string query)
    {
        var response = await Host.Http.GetAsync(query);
        return (response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    [Fact]
    public async Task FoldedOpsLeaveEveryLaterVersionReadableAndEarlierOnesNameTheOldestKept()
    {
        var writer = await Host.ConnectAsync();
        await writer.JoinAsync("kept", "w");
        var version = 0;
        var texts = new List<string> { "" };
        var text = "";
        var rng = new Random(9);
        for (var i = 1; i <= 60; i++)
        {
            var op = OpGen.Op(rng, text);
            if (op.IsNoop)
            {
                op = TextOperation.Insert(0, "x");
            }
            text = op.Apply(text);
            texts.Add(text);
            var wire = JsonSerializer.Deserialize<JsonElement>(op.ToString()).EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number ? (object?)e.GetInt32() : e.GetString()).ToArray();
            version = (await writer.SubmitAsync("kept", version, wire, i)).Version;
        }
        var ops = await OpsAsync("kept");
        // Fold everything committed before op 35's instant (ops sharing its millisecond stay).
        var cutoff = ops[34].CreatedAt;
        var boundary = ops.Where(o => o.CreatedAt < cutoff).Max(o => o.Version);
        var retention = Host.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<CollabServer.History.RetentionService>().Single();
        Assert.Equal(boundary, await retention.FoldAsync("kept", cutoff));
        Assert.Null(await retention.FoldAsync("kept", cutoff)); // a second pass has nothing to do

        for (var v = boundary; v <= 60; v++)
        {
            var (status, body) = await ReadAsync($"/api/docs/kept?version={v}");
            Assert.True(status == HttpStatusCode.OK, $"version {v}: {body}");
            Assert.Equal(texts[v], body.GetProperty("text").GetString());
        }
        var (before, problem) = await ReadAsync($"/api/docs/kept?version={boundary - 1}");
        Assert.Equal(HttpStatusCode.BadRequest, before);
        Assert.Equal(ErrorCodes.UnknownVersion, problem.GetProperty("type").GetString());
        Assert.Contains($"oldest version kept is {boundary}", problem.GetProperty("title").GetString());
        var at = DateTimeOffset.FromUnixTimeMilliseconds(ops[0].CreatedAt).UtcDateTime.ToString("O");
        Assert.Equal(HttpStatusCode.BadRequest, (await ReadAsync($"/api/docs/kept?at={at}")).Status);

        // The log after the boundary is whole, the history stops there, and the current text is untouched.
        Assert.Equal(Enumerable.Range(boundary + 1, 60 - boundary), (await OpsAsync("kept", from: boundary)).Select(o => o.Version));
        // Asked for the ops after a folded version, the log says where it starts instead of skipping ahead.
        var (gap, gapProblem) = await ReadAsync($"/api/docs/kept/ops?from={boundary - 1}");
        Assert.Equal(HttpStatusCode.BadRequest, gap);
        Assert.Equal(ErrorCodes.UnknownVersion, gapProblem.GetProperty("type").GetString());
        Assert.Contains($"oldest version kept is {boundary}", gapProblem.GetProperty("title").GetString());
        var history = (await Host.Http.GetFromJsonAsync<List<JsonElement>>("/api/docs/kept/history?limit=500"))!;
        Assert.Equal(boundary + 1, history.Min(e => e.GetProperty("fromVersion").GetInt32()));
        Assert.Equal((60, text), await Host.GetDocAsync("kept"));

        // The live actor still transforms from memory; after a restart the folded ops are gone:
        // a member based before the boundary is told to resume, and a resume from there gets the
        // whole text (onto which the client rebases its pending edits).
        var dataDir = Host.DataDir;
        await Host.DisposeAsync();
        await using var again = new TestHost(dataDir);
        var late = await again.ConnectAsync();
        await late.JoinAsync("kept", "late");
        await Wire.AssertErrorAsync(ErrorCodes.UnknownVersion, () => late.SubmitAsync("kept", boundary - 1, ["late "], 1));
        var resumed = await again.ConnectAsync();
        var joined = await resumed.JoinAsync("kept", "late", sinceVersion: boundary - 1);
        Assert.Null(joined.Ops);
        Assert.Equal(text, joined.Text);
        Assert.Equal(61, (await resumed.SubmitAsync("kept", 60, ["after "], 1)).Version);
    }

    [Fact]
    public async Task AFoldedDocumentLoadsAfterARestartAndTheRetentionPassFoldsOnlyWhatIsOldEnough()
    {
        var c = await Host.ConnectAsync();
        await c.JoinAsync("restart", "c");
        for (var i = 1; i <= 30; i++)
        {
            await c.SubmitAsync("restart", i - 1, [i - 1, "a"], i);
        }
        var service = Host.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<CollabServer.History.RetentionService>().Single();
        await service.PassAsync(TimeSpan.FromDays(30)); // nothing is that old
        Assert.Equal(30, (await OpsAsync("restart")).Count);
        var newest = (await OpsAsync("restart"))[^1].CreatedAt;
        for (var i = 0; i < 1000 && DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() <= newest + 5; i++)
        {
            await Task.Delay(5); // until the clock has passed the newest op
        }
        await service.PassAsync(TimeSpan.FromMilliseconds(1)); // everything is: all but the newest op fold
        Assert.Equal([30], (await OpsAsync("restart", from: 29)).Select(o => o.Version));

        var dataDir = Host.DataDir;
        await Host.DisposeAsync();
        await using var again = new TestHost(dataDir);
        Assert.Equal((30, new string('a', 30)), await again.GetDocAsync("restart"));
        var d = await again.ConnectAsync();
        await d.JoinAsync("restart", "d");
        Assert.Equal(31, (await d.SubmitAsync("restart", 30, ["b"], 1)).Version);
        Assert.Equal(new string('a', 29), (await again.Http.GetFromJsonAsync<JsonElement>("/api/docs/restart?version=29")).GetProperty("text").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, (await again.Http.GetAsync("/api/docs/restart?version=28")).StatusCode);
    }

    [Fact]
    public async Task ADocumentLoadedOnlyToFoldItsHistoryIsLetGoAtOnce()
    {
        for (var i = 1; i <= 5; i++)
        {
            (await Host.Http.PutAsJsonAsync("/api/docs/cold", new { text = new string('c', i) })).EnsureSuccessStatusCode();
        }
        var dataDir = Host.DataDir;
        await Host.DisposeAsync();
        // A fresh node with nothing loaded, whose documents stay loaded an hour after their last use.
        await using var again = new TestHost(dataDir, new Dictionary<string, string?> { ["Collab:IdleTimeout"] = "01:00:00" });
        var registry = again.GetService<CollabServer.Documents.DocumentRegistry>();
        var service = again.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<CollabServer.History.RetentionService>().Single();
        Assert.Equal(0, registry.ActiveCount);

        await Task.Delay(5); // the clock passes the newest op
        await service.PassAsync(TimeSpan.FromMilliseconds(1));

        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (registry.ActiveCount > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.Equal(0, registry.ActiveCount);
        // It was folded: only the newest op is left.
        Assert.Equal(new[] { 5 }, (await again.Http.GetFromJsonAsync<List<JsonElement>>("/api/docs/cold/ops?from=4"))!.Select(o => o.GetProperty("version").GetInt32()));
        Assert.Equal(HttpStatusCode.BadRequest, (await again.Http.GetAsync("/api/docs/cold/ops?from=0")).StatusCode);
    }
}
