using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Api;

public sealed class RestApiTests() : HostedTest
{
    [Fact]
    public async Task PutCreatesAndReplacesAsOneOpThatMembersReceive()
    {
        var member = await Host.ConnectAsync();
        var ops = member.Collect<OpMessage>("Op");
        var created = await Host.Http.PutAsJsonAsync("/api/docs/notes", new { text = "hello world" });
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        await member.JoinAsync("notes", "m");

        var replaced = await Host.Http.PutAsJsonAsync("/api/docs/notes", new { text = "hello brave world" });
        Assert.Equal(2, (await replaced.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("version").GetInt32());
        var op = await ops.NextAsync();
        Assert.Equal((2, "[6,\"brave \"]"), (op.Version, op.Op.ToString()));
        Assert.Equal((2, "hello brave world"), await Host.GetDocAsync("notes"));

        // Same text again: no op.
        await Host.Http.PutAsJsonAsync("/api/docs/notes", new { text = "hello brave world" });
        Assert.Equal(2, (await Host.GetDocAsync("notes")).Version);
    }

    [Fact]
    public async Task ListShowsEveryDocumentLiveOrOnDisk()
    {
        await Host.Http.PutAsJsonAsync("/api/docs/b-doc", new { text = "bb" });
        await Host.Http.PutAsJsonAsync("/api/docs/a-doc", new { text = "a" });
        var list = await Host.Http.GetFromJsonAsync<JsonElement>("/api/docs");
        var rows = list.EnumerateArray().Select(e => (e.GetProperty("id").GetString(), e.GetProperty("version").GetInt32(), e.GetProperty("length").GetInt32())).ToList();
        Assert.Equal([("a-doc", 1, 1), ("b-doc", 1, 2)], rows);
        Assert.True(list[0].GetProperty("updatedAt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(-1));
    }

    [Fact]
    public async Task AnUnreadableFileIsLeftOutOfTheListingInsteadOfFailingIt()
    {
        await Host.Http.PutAsJsonAsync("/api/docs/good", new { text = "fine" });
        await File.WriteAllBytesAsync(Path.Combine(Host.DataDir, "docs", "junk.db"), new byte[4096]);
        var list = await Host.Http.GetFromJsonAsync<JsonElement>("/api/docs");
        Assert.Equal(["good"], list.EnumerateArray().Select(e => e.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task OpsArePagedOldestFirstWithTheirTimes()
    {
        for (var i = 0; i < 5; i++)
        {
            await Host.Http.PutAsJsonAsync("/api/docs/paged", new { text = new string('x', i + 1) });
        }
        var page = await Host.Http.GetFromJsonAsync<JsonElement>("/api/docs/paged/ops?from=1&limit=2");
        Assert.Equal([2, 3], page.EnumerateArray().Select(o => o.GetProperty("version").GetInt32()));
        Assert.Equal("[1,\"x\"]", page[0].GetProperty("op").GetRawText().Replace(" ", ""));
        Assert.True(page[0].TryGetProperty("createdAt", out _));
    }

    [Fact]
    public async Task DeleteRemovesTheFilesAndResetsMembers()
    {
        await Host.Http.PutAsJsonAsync("/api/docs/gone", new { text = "bye" });
        var member = await Host.ConnectAsync();
        var resets = member.Collect<ResetMessage>("Reset");
        await member.JoinAsync("gone", "m");

        Assert.Equal(HttpStatusCode.NoContent, (await Host.Http.DeleteAsync("/api/docs/gone")).StatusCode);
        Assert.Equal("gone", (await resets.NextAsync()).DocId);
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/gone")).StatusCode);
        Assert.False(File.Exists(Path.Combine(Host.DataDir, "docs", "gone.db")));
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.DeleteAsync("/api/docs/gone")).StatusCode);

        // Joining again starts a new, empty document.
        var again = await member.JoinAsync("gone", "m");
        Assert.Equal((0, ""), (again.Version, again.Text));
    }

    [Theory]
    [InlineData("GET", "/api/docs/.dot")]
    [InlineData("GET", "/api/docs/a%20b")]
    [InlineData("PUT", "/api/docs/.dot")]
    [InlineData("DELETE", "/api/docs/.dot")]
    [InlineData("GET", "/api/docs/.dot/ops")]
    public async Task BadIdsAreProblemDetailsWithTheCode(string method, string url)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method == "PUT")
        {
            request.Content = JsonContent.Create(new { text = "x" });
        }
        var response = await Host.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(ErrorCodes.InvalidDocId, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
        Assert.Empty(Directory.EnumerateFiles(Host.DataDir, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task MissingDocumentsAre404WithoutCreatingAnything()
    {
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/nothing")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/nothing/ops")).StatusCode);
        Assert.Empty(Directory.EnumerateFiles(Host.DataDir, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A404CarriesTheNotFoundCodeLikeEveryOtherRestError()
    {
        foreach (var response in new[] { await Host.Http.GetAsync("/api/docs/nothing"), await Host.Http.DeleteAsync("/api/docs/nothing") })
        {
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(ErrorCodes.NotFound, problem.GetProperty("type").GetString());
            Assert.Equal("document 'nothing' does not exist", problem.GetProperty("title").GetString());
        }
    }

    [Fact]
    public async Task PutWithoutTextOrWithALoneSurrogateIsRejected()
    {
        var noText = await Host.Http.PutAsJsonAsync("/api/docs/put-bad", new { body = "x" });
        Assert.Equal(HttpStatusCode.BadRequest, noText.StatusCode);
        var lone = await Host.Http.PutAsync("/api/docs/put-bad", new StringContent("{\"text\":\"a\\ud83d\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, lone.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Host.Http.GetAsync("/api/docs/put-bad")).StatusCode);
    }

    [Fact]
    public async Task HealthAndReadinessAnswer()
    {
        Assert.Equal(HttpStatusCode.OK, (await Host.Http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Host.Http.GetAsync("/readyz")).StatusCode);
    }
}
