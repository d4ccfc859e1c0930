using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Tests.Api;

/// <summary>
/// DELETE's precondition (<c>?version=</c>) and the rename's redirect record (<c>?movedTo=</c>,
/// PROTOCOL §7): a stale delete changes nothing, a renamed id's page redirects and its 404 says
/// where it went, its members are told, and a document made again under the old id is itself.
/// </summary>
public sealed class RenameTests() : HostedTest
{
    private async Task<HttpResponseMessage> PutAsync(string id, string text)
    {
        var response = await Host.Http.PutAsJsonAsync($"/api/docs/{id}", new { text });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response;
    }

    private static async Task<JsonElement> ProblemAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    [Fact]
    public async Task ADeleteAtAVersionThatIsNotTheHeadIs409ConflictAndDeletesNothing()
    {
        await PutAsync("notes", "one");
        await PutAsync("notes", "one two");

        var stale = await Host.Http.DeleteAsync("/api/docs/notes?version=1");
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        var problem = await ProblemAsync(stale);
        Assert.Equal(ErrorCodes.Conflict, problem.GetProperty("type").GetString());
        Assert.Equal(2, problem.GetProperty("version").GetInt32());
        Assert.Equal((2, "one two"), await Host.GetDocAsync("notes"));
        Assert.True(File.Exists(Path.Combine(Host.DataDir, "docs", "notes.db")));

        Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/notes?version=2")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/notes")).StatusCode);
    }

    [Fact]
    public async Task AMembersEditAndADeleteAtTheVersionBeforeItNeverBothSucceed()
    {
        await PutAsync("race", "base");
        var member = await Host.ConnectAsync();
        await member.JoinAsync("race", "m");
        for (var round = 0; round < 5; round++)
        {
            var version = (await Host.GetDocAsync("race")).Version;
            // Sent together: the actor takes one first, and the other must then fail.
            var submit = member.SubmitAsync("race", version, [0, "x"], opId: 100 + round);
            var delete = Host.Http.DeleteAsync($"/api/docs/race?version={version}");
            var deleted = (await delete).StatusCode;
            Exception? refused = null;
            try
            {
                await submit;
            }
            catch (HubException ex)
            {
                refused = ex;
            }
            if (deleted == HttpStatusCode.NoContent)
            {
                // The delete came first: the edit was not committed anywhere (the member was reset).
                Assert.NotNull(refused);
                Assert.Equal(ErrorCodes.NotJoined, ErrorCodes.FromMessage(refused.Message));
                return;
            }
            Assert.Equal(HttpStatusCode.Conflict, deleted);
            Assert.Null(refused);
            Assert.Equal(version + 1, (await Host.GetDocAsync("race")).Version);
        }
    }

    [Fact]
    public async Task BadVersionOrMovedToIs400AndDeletesNothing()
    {
        await PutAsync("keep", "text");
        foreach (var query in new[] { "version=abc", "version=-1", "version=1&movedTo=keep", "version=1&movedTo=.bad", "version=1&movedTo=nowhere" })
        {
            var response = await Host.Http.DeleteAsync($"/api/docs/keep?{query}");
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{query}: {response.StatusCode}");
            Assert.Equal(ErrorCodes.InvalidOp, (await ProblemAsync(response)).GetProperty("type").GetString());
        }
        Assert.Equal((1, "text"), await Host.GetDocAsync("keep"));
        Assert.False(Directory.Exists(Path.Combine(Host.DataDir, "redirects")));
    }

    [Fact]
    public async Task ARenameRedirectsTheOldPageTellsItsMembersAndNamesTheNewIdInTheOld404()
    {
        await PutAsync("old", "the text");
        await PutAsync("new", "the text");
        var member = await Host.ConnectAsync();
        var resets = member.Collect<ResetMessage>("Reset");
        await member.JoinAsync("old", "m");
        var json = await Host.ConnectAsync(WireProtocol.Json);
        var jsonResets = json.Collect<JsonElement>("Reset");
        await json.JoinAsync("old", "j");

        Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/old?version=1&movedTo=new")).StatusCode);

        var reset = await resets.NextAsync();
        Assert.Equal(("old", "renamed", "new"), (reset.DocId, reset.Reason, reset.MovedTo));
        var jsonReset = await jsonResets.NextAsync();
        Assert.Equal(("renamed", "new"), (jsonReset.GetProperty("reason").GetString(), jsonReset.GetProperty("movedTo").GetString()));

        var missing = await Host.Http.GetAsync("/api/docs/old");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var problem = await ProblemAsync(missing);
        Assert.Equal(ErrorCodes.NotFound, problem.GetProperty("type").GetString());
        Assert.Equal("new", problem.GetProperty("movedTo").GetString());

        using var pages = Host.CreateClientWithoutRedirects();
        var page = await pages.GetAsync("/d/old");
        Assert.Equal(HttpStatusCode.Found, page.StatusCode);
        Assert.Equal("/d/new", page.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await pages.GetAsync("/d/new")).StatusCode);
        Assert.Equal((1, "the text"), await Host.GetDocAsync("new"));

        // A member that missed the Reset (it was away) and joins the old id again learns where the text went.
        var late = await Host.ConnectAsync();
        var rejoined = await late.JoinAsync("old", "late", sinceVersion: 1);
        Assert.Equal(("new", 0), (rejoined.MovedTo, rejoined.Version));
        var jsonLate = await Host.ConnectAsync(WireProtocol.Json);
        Assert.Equal("new", (await jsonLate.JoinAsync("old", "late-json", sinceVersion: 1)).MovedTo);
        Assert.Null((await jsonLate.JoinAsync("old", "first-join")).MovedTo); // only a resume asks
        Assert.Null((await late.JoinAsync("new", "late", sinceVersion: 1)).MovedTo);
    }

    [Fact]
    public async Task ADeleteWithoutMovedToStillTellsMembersDeleted()
    {
        await PutAsync("plain", "x");
        var member = await Host.ConnectAsync(WireProtocol.Json);
        var resets = member.Collect<JsonElement>("Reset");
        await member.JoinAsync("plain", "m");
        Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/plain?version=1")).StatusCode);
        var reset = await resets.NextAsync();
        Assert.Equal("deleted", reset.GetProperty("reason").GetString());
        Assert.False(reset.TryGetProperty("movedTo", out _));
        using var pages = Host.CreateClientWithoutRedirects();
        Assert.Equal(HttpStatusCode.OK, (await pages.GetAsync("/d/plain")).StatusCode);
        Assert.False((await ProblemAsync(await Host.Http.GetAsync("/api/docs/plain"))).TryGetProperty("movedTo", out _));
    }

    [Fact]
    public async Task AnIdMadeAgainByAPutOrAMembersFirstEditNoLongerRedirects()
    {
        using var pages = Host.CreateClientWithoutRedirects();
        foreach (var old in new[] { "by-put", "by-edit" })
        {
            await PutAsync(old, "x");
            await PutAsync($"{old}-2", "x");
            Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync($"/api/docs/{old}?version=1&movedTo={old}-2")).StatusCode);
            Assert.Equal(HttpStatusCode.Found, (await pages.GetAsync($"/d/{old}")).StatusCode);
        }

        await PutAsync("by-put", "again");
        var member = await Host.ConnectAsync();
        await member.JoinAsync("by-edit", "m");
        // Joined but never written: it exists only while joined, and still redirects no page (the page route asks whether it exists).
        await member.SubmitAsync("by-edit", 0, ["again"], opId: 1);

        var other = await Host.ConnectAsync();
        foreach (var old in new[] { "by-put", "by-edit" })
        {
            Assert.Equal(HttpStatusCode.OK, (await pages.GetAsync($"/d/{old}")).StatusCode);
            Assert.Equal("again", (await Host.GetDocAsync(old)).Text);
            Assert.Null((await other.JoinAsync(old, "other", sinceVersion: 0)).MovedTo); // made again: a resume no longer points away
        }
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Host.DataDir, "redirects")));
    }

    [Fact]
    public async Task RedirectsFollowChainsStopAtLoopsPointAtDeletedTargetsAndSurviveARestart()
    {
        foreach (var id in new[] { "a", "b", "c" })
        {
            await PutAsync(id, id);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/a?movedTo=b")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/b?movedTo=c")).StatusCode);
        using (var pages = Host.CreateClientWithoutRedirects())
        {
            Assert.Equal("/d/c", (await pages.GetAsync("/d/a")).Headers.Location?.OriginalString);
            Assert.Equal("c", (await ProblemAsync(await Host.Http.GetAsync("/api/docs/a"))).GetProperty("movedTo").GetString());

            // The target deleted too: the old page still leads there (to an empty document).
            Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/c")).StatusCode);
            Assert.Equal("/d/c", (await pages.GetAsync("/d/b")).Headers.Location?.OriginalString);
        }

        // Records that loop (written by hand: renames cannot make one) redirect nowhere.
        var redirects = Host.GetService<CollabServer.Storage.IDocumentRedirects>();
        redirects.Set("x", "y");
        redirects.Set("y", "x");

        var dataDir = Host.DataDir;
        await Host.DisposeAsync();
        await using var restarted = new TestHost(dataDir);
        using var again = restarted.CreateClientWithoutRedirects();
        Assert.Equal("/d/c", (await again.GetAsync("/d/a")).Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.OK, (await again.GetAsync("/d/x")).StatusCode);
    }
}
