using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;

namespace CollabServer.Tests.Hub;

/// <summary>
/// The limits of PROTOCOL §6, each held against the attack that would exhaust it: each
/// refusal has its code, and an honest client next to the attacker is unaffected. Work is
/// bounded by counting what was stored or sent, never by timing.
/// </summary>
public sealed class LimitsTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:MaxDocumentsPerConnection"] = "5",
    ["Collab:DocumentsCreatedPerMinute"] = "3",
    ["Collab:MaxTransformOps"] = "20",
    ["Collab:PresencePerSecond"] = "0.001",
    ["Collab:PresenceBurst"] = "5",
    ["Collab:MaxSelectionRanges"] = "3",
    ["Collab:MaxRestBodyBytes"] = "1024",
})
{
    private int DatabaseFiles => Directory.Exists(Path.Combine(Host.DataDir, "docs")) ? Directory.EnumerateFiles(Path.Combine(Host.DataDir, "docs"), "*.db").Count() : 0;

    [Fact]
    public async Task JoinsCreateNothingOnDiskAndOneConnectionJoinsAndCreatesABoundedNumber()
    {
        var attacker = await Host.ConnectAsync();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(0, (await attacker.JoinAsync($"spam-{i}", "a")).Version);
        }
        await Wire.AssertErrorAsync(ErrorCodes.RateLimited, () => attacker.JoinAsync("spam-5", "a"));
        Assert.Equal(0, DatabaseFiles); // joined, never written

        // Writing creates, three a minute per connection.
        for (var i = 0; i < 3; i++)
        {
            await attacker.SubmitAsync($"spam-{i}", 0, ["x"], 1);
        }
        await Wire.AssertErrorAsync(ErrorCodes.RateLimited, () => attacker.SubmitAsync("spam-3", 0, ["x"], 1));
        Assert.Equal(3, DatabaseFiles);
        // Writing to a document that exists is not creating.
        Assert.Equal(2, (await attacker.SubmitAsync("spam-0", 1, ["y"], 2)).Version);

        // Leaving makes room to join; an honest connection has its own budget.
        await attacker.InvokeAsync("Leave", "spam-4");
        Assert.Equal(0, (await attacker.JoinAsync("spam-6", "a")).Version);
        var honest = await Host.ConnectAsync();
        await honest.JoinAsync("mine", "h");
        Assert.Equal(1, (await honest.SubmitAsync("mine", 0, ["hello"], 1)).Version);
    }

    [Fact]
    public async Task AnOpBasedTooFarBackIsUnknownVersionAndTheDocumentGoesOn()
    {
        var writer = await Host.ConnectAsync();
        await writer.JoinAsync("long", "w");
        var version = 0;
        for (var i = 1; i <= 30; i++)
        {
            version = (await writer.SubmitAsync("long", version, ["x"], i)).Version;
        }
        var late = await Host.ConnectAsync();
        await late.JoinAsync("long", "late");
        await Wire.AssertErrorAsync(ErrorCodes.UnknownVersion, () => late.SubmitAsync("long", 0, ["old"], 1));
        // Within MaxTransformOps it is transformed as usual; the honest writer never noticed.
        Assert.Equal(31, (await late.SubmitAsync("long", 10, ["ok"], 1)).Version);
        Assert.Equal(32, (await writer.SubmitAsync("long", 31, ["y"], 31)).Version);
    }

    [Fact]
    public async Task PresenceIsRateLimitedCappedAndClampedToTheText()
    {
        var sender = await Host.ConnectAsync();
        var watcher = await Host.ConnectAsync();
        await sender.JoinAsync("pres", "s");
        await sender.SubmitAsync("pres", 0, ["hello"], 1);
        var seen = watcher.Collect<PresenceMessage>("Presence");
        await watcher.JoinAsync("pres", "w");

        await Wire.AssertErrorAsync(ErrorCodes.TooLarge, () => sender.InvokeAsync("SetPresence", new PresenceRequest
        {
            DocId = "pres",
            Version = 1,
            Selection = [.. Enumerable.Range(0, 4).Select(i => new SelectionRange { Anchor = i, Head = i })],
        }));
        await sender.InvokeAsync("SetPresence", new PresenceRequest { DocId = "pres", Version = 1, Selection = [new SelectionRange { Anchor = -5, Head = 1_000_000_000 }] });
        var clamped = await seen.NextAsync();
        Assert.Equal((0, 5), (clamped.Selection![0].Anchor, clamped.Selection[0].Head));

        // A burst of 5 (one went to the refused update above), then rate_limited; nothing more reaches the watcher.
        var sent = 1;
        string? error = null;
        for (var i = 0; i < 10 && error is null; i++)
        {
            try
            {
                await sender.InvokeAsync("SetPresence", new PresenceRequest { DocId = "pres", Version = 1, Selection = [new SelectionRange { Anchor = 1, Head = 1 }] });
                sent++;
            }
            catch (Microsoft.AspNetCore.SignalR.HubException ex)
            {
                error = ex.Message;
            }
        }
        Assert.Equal(ErrorCodes.RateLimited, ErrorCodes.FromMessage(error));
        Assert.Equal(4, sent);
        await watcher.InvokeAsync("Leave", "pres"); // a barrier: the watcher's queue holds every presence sent before it
        var received = 1;
        while (seen.Reader.TryRead(out _))
        {
            received++;
        }
        Assert.Equal(sent, received);
    }

    [Fact]
    public async Task ARestBodyOverTheLimitIs413AndListingIsPaged()
    {
        var big = await Host.Http.PutAsJsonAsync("/api/docs/big", new { text = new string('x', 2000) });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, big.StatusCode);
        Assert.Equal(ErrorCodes.TooLarge, (await big.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
        Assert.Equal(0, DatabaseFiles);

        foreach (var id in new[] { "a", "b", "c", "d", "e" })
        {
            (await Host.Http.PutAsJsonAsync($"/api/docs/{id}", new { text = id })).EnsureSuccessStatusCode();
        }
        var ids = new List<string>();
        var next = "/api/docs?limit=2";
        var pages = 0;
        while (next is not null && pages++ < 10)
        {
            var page = await Host.Http.GetAsync(next);
            ids.AddRange((await page.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().Select(d => d.GetProperty("id").GetString()!));
            next = page.Headers.TryGetValues("Link", out var link) ? link.Single().Split('<', '>')[1] : null;
        }
        Assert.Equal(["a", "b", "c", "d", "e"], ids);
        Assert.Equal(3, pages);
    }
}
