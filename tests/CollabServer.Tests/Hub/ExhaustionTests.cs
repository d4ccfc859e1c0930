using System.Globalization;
using Collab;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;

namespace CollabServer.Tests.Hub;

/// <summary>
/// Issue 21's attacks on memory and on a document's loop, each against the limit that now holds
/// it: big ops held in memory (row 2), presence based far back (row 3), a Join/Leave loop and huge
/// user names (row 6). Bounded by counting what was kept or sent, never by timing. Runs with
/// <see cref="Api.MetricsTests"/>, alone: it reads /metrics, which other hosts would add to.
/// </summary>
[Collection(nameof(Api.MetricsTests))]
public sealed class ExhaustionTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:OpWindowBytes"] = "65536",
    ["Collab:PresenceMapBudget"] = "1000",
    ["Collab:JoinsPerSecond"] = "0.001",
    ["Collab:JoinsBurst"] = "10",
})
{
    /// <summary>The sum of a Prometheus metric's series, those with <paramref name="label"/> when given.</summary>
    private async Task<double> MetricAsync(string name, string? label = null)
    {
        var text = await Host.Http.GetStringAsync("/metrics");
        return text.Split('\n')
            .Where(l => l.StartsWith(name, StringComparison.Ordinal) && (l.Length == name.Length || l[name.Length] is ' ' or '{'))
            .Where(l => label is null || l.Contains(label, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task BigOpsAreHeldInMemoryOnlyUpToTheBudgetAndOlderBasesJoinAgain()
    {
        var writer = await Host.ConnectAsync();
        await writer.JoinAsync("big-ops", "w");
        var version = 0;
        var length = 0;
        for (var i = 1; i <= 60; i++)
        {
            var chunk = new string((char)('a' + i % 26), 1000);
            version = (await writer.SubmitAsync("big-ops", version, length == 0 ? [chunk] : [chunk, length], i)).Version;
            length += chunk.Length;
        }
        // 60 ops of 2 KB each: the window holds at most its budget of them.
        var held = await MetricAsync("collab_documents_op_window_bytes");
        Assert.InRange(held, 1, 65536);

        // An op based on a version whose ops left memory for their size is not replayed from disk:
        // the client joins again; one based on a recent version is transformed as usual.
        await Wire.AssertErrorAsync(ErrorCodes.UnknownVersion, () => writer.SubmitAsync("big-ops", 1, ["old", 1000], 1000));
        Assert.Equal(61, (await writer.SubmitAsync("big-ops", 59, ["new", 59_000], 61)).Version);
        var late = await Host.ConnectAsync();
        var resumed = await late.JoinAsync("big-ops", "late", sinceVersion: 1);
        Assert.Null(resumed.Ops);
        Assert.Equal(length + 3, resumed.Text!.Length);
        var recent = await Host.ConnectAsync();
        Assert.Single((await recent.JoinAsync("big-ops", "recent", sinceVersion: 60)).Ops!);
    }

    [Fact]
    public async Task PresenceBasedTooFarBackForItsCostIsRefusedAndTheDocumentGoesOn()
    {
        var writer = await Host.ConnectAsync();
        await writer.JoinAsync("far-back", "w");
        var version = (await writer.SubmitAsync("far-back", 0, [new string('x', 100)], 1)).Version;
        // 30 ops of 20 components (the trailing retain is dropped): mapping 3 ranges from version 1 walks 6 × 600.
        for (var i = 0; i < 30; i++)
        {
            var op = new List<object?>();
            for (var k = 0; k < 10; k++)
            {
                op.Add(1);
                op.Add("y");
            }
            op.Add(100 + 10 * i - 10);
            version = (await writer.SubmitAsync("far-back", version, [.. op], 2 + i)).Version;
        }
        var reader = await Host.ConnectAsync();
        await reader.JoinAsync("far-back", "r");
        var ranges = Enumerable.Range(0, 3).Select(i => new SelectionRange { Anchor = 90 + i, Head = 95 + i }).ToList();
        await Wire.AssertErrorAsync(ErrorCodes.UnknownVersion, () => reader.InvokeAsync("SetPresence", new PresenceRequest { DocId = "far-back", Version = 1, Selection = ranges }));
        Assert.Equal(1, await MetricAsync("collab_limits_refused_total", "limit=\"presence_map\""));
        // One op back costs 6 × 21: mapped, and the writer sees it at the current version.
        var seen = writer.Collect<PresenceMessage>("Presence");
        await reader.InvokeAsync("SetPresence", new PresenceRequest { DocId = "far-back", Version = version - 1, Selection = ranges });
        var presence = await seen.NextAsync();
        Assert.Equal(version, presence.Version);
        Assert.Equal(version + 1, (await writer.SubmitAsync("far-back", version, ["z"], 100)).Version);
    }

    [Fact]
    public async Task AJoinLeaveLoopIsRateLimitedAndItsPresenceFanOutWithIt()
    {
        var watcher = await Host.ConnectAsync();
        await watcher.JoinAsync("lobby", "watcher");
        var seen = watcher.Collect<PresenceMessage>("Presence");
        var attacker = await Host.ConnectAsync();
        var calls = 0;
        HubException? refused = null;
        for (var i = 0; i < 50 && refused is null; i++)
        {
            try
            {
                if (i % 2 == 0)
                {
                    await attacker.JoinAsync("lobby", "loop");
                }
                else
                {
                    await attacker.InvokeAsync("Leave", "lobby");
                }
                calls++;
            }
            catch (HubException ex)
            {
                refused = ex;
            }
        }
        Assert.Equal(ErrorCodes.RateLimited, ErrorCodes.FromMessage(refused?.Message));
        Assert.Equal(10, calls); // the burst, then nothing more
        await watcher.InvokeAsync("Leave", "lobby"); // a barrier: every presence sent before it has arrived
        var received = 0;
        while (seen.Reader.TryRead(out _))
        {
            received++;
        }
        Assert.InRange(received, 1, 10);
        Assert.True(await MetricAsync("collab_limits_refused_total", "limit=\"joins\"") >= 1);
    }

    [Fact]
    public async Task AUserNameOrColorPastItsLengthIsTooLargeAndReachesNobody()
    {
        var watcher = await Host.ConnectAsync();
        await watcher.JoinAsync("names", "watcher");
        var seen = watcher.Collect<PresenceMessage>("Presence");
        var attacker = await Host.ConnectAsync();
        Task Join(string name, string color) => attacker.InvokeAsync<JoinResult>("Join", new JoinRequest { DocId = "names", ClientId = "a", User = new UserInfo { Name = name, Color = color } });
        await Wire.AssertErrorAsync(ErrorCodes.TooLarge, () => Join(new string('n', 500_000), "#fff"));
        await Wire.AssertErrorAsync(ErrorCodes.TooLarge, () => Join(new string('n', 101), "#fff"));
        await Wire.AssertErrorAsync(ErrorCodes.TooLarge, () => Join("Ada", new string('c', 33)));
        await Join(new string('n', 100), "#fff");
        await Wire.AssertErrorAsync(ErrorCodes.TooLarge, () => attacker.InvokeAsync("SetPresence", new PresenceRequest { DocId = "names", Version = 0, User = new UserInfo { Name = new string('n', 100_000) } }));
        await watcher.InvokeAsync("Leave", "names");
        var names = new List<string?>();
        while (seen.Reader.TryRead(out var presence))
        {
            names.Add(presence.User?.Name);
        }
        Assert.Equal([new string('n', 100)], names);
    }
}

/// <summary>Issue 21, row 7: the bytes of ops one writer, and one document, may take.</summary>
public sealed class WriteBudgetTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:MaxMessageBytes"] = "4096",
    ["Collab:WriteBytesPerSecond"] = "1",
    ["Collab:WriteBytesBurst"] = "4096",
    ["Collab:DocumentWriteBytesPerSecond"] = "1",
    ["Collab:DocumentWriteBytesBurst"] = "8192",
})
{
    private static readonly string s_chunk = new('w', 900);

    // An op of 900 inserted characters costs about 1.9 KB of budget: two fit in a writer's 4 KB, four in a document's 8 KB.
    private static Task<SubmitResult> WriteAsync(HubConnection c, string docId, int version, long opId) =>
        c.SubmitAsync(docId, version, version == 0 ? [s_chunk] : [s_chunk, version * s_chunk.Length], opId);

    [Fact]
    public async Task OneWriterTakesItsBytesAndThenIsRateLimitedOthersAreNot()
    {
        var writer = await Host.ConnectAsync();
        await writer.JoinAsync("writer-budget", "w");
        Assert.Equal(1, (await WriteAsync(writer, "writer-budget", 0, 1)).Version);
        Assert.Equal(2, (await WriteAsync(writer, "writer-budget", 1, 2)).Version);
        var refusal = await Wire.AssertErrorAsync(ErrorCodes.RateLimited, () => WriteAsync(writer, "writer-budget", 2, 3));
        Assert.Contains("bytes of ops a second from one writer", refusal);
        var other = await Host.ConnectAsync();
        await other.JoinAsync("writer-budget", "o");
        Assert.Equal(3, (await WriteAsync(other, "writer-budget", 2, 1)).Version);
    }

    [Fact]
    public async Task ADocumentTakesItsBytesFromAllWritersTogether()
    {
        var writers = new List<HubConnection>();
        for (var i = 0; i < 3; i++)
        {
            var c = await Host.ConnectAsync();
            await c.JoinAsync("document-budget", $"w{i}");
            writers.Add(c);
        }
        var version = 0;
        for (var i = 0; i < 4; i++)
        {
            version = (await WriteAsync(writers[i / 2], "document-budget", version, 1 + i % 2)).Version;
        }
        var refusal = await Wire.AssertErrorAsync(ErrorCodes.RateLimited, () => WriteAsync(writers[2], "document-budget", version, 1));
        Assert.Contains("document 'document-budget'", refusal);
        // The third writer's own budget is whole: another document takes its op.
        await writers[2].JoinAsync("elsewhere", "w2");
        Assert.Equal(1, (await WriteAsync(writers[2], "elsewhere", 0, 1)).Version);
    }
}
