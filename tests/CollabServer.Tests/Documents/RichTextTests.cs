using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;

namespace CollabServer.Tests.Documents;

/// <summary>
/// Rich-text documents (PROTOCOL §1, §3, §7) through the real server: deltas over both wire
/// protocols, the type fixed when a document is made, REST's delta, history and restore, and the
/// content back from the files after a restart.
/// </summary>
public sealed class RichTextTests() : HostedTest(new Dictionary<string, string?> { ["Collab:SnapshotInterval"] = "3" })
{
    private static Dictionary<string, object?> Insert(string text, object? attributes = null) =>
        attributes is null ? new() { ["insert"] = text } : new() { ["insert"] = text, ["attributes"] = attributes };

    private static Dictionary<string, object?> Retain(int n, object? attributes = null) =>
        attributes is null ? new() { ["retain"] = n } : new() { ["retain"] = n, ["attributes"] = attributes };

    private static Task<JoinResult> JoinRichAsync(HubConnection c, string docId, string clientId, string? type = "rich-text", int? sinceVersion = null)
    {
        var args = Wire.JoinArgs(docId, clientId, sinceVersion);
        if (type is not null)
        {
            args["type"] = type;
        }
        return c.InvokeAsync<JoinResult>("Join", args).WaitAsync(Wire.Timeout);
    }

    private async Task<JsonElement> GetAsync(string path)
    {
        var response = await Host.Http.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    /// <summary>The document's delta composed from its ops as REST lists them: what every member that applied the broadcasts holds.</summary>
    private async Task<string> ComposedFromOpsAsync(string id)
    {
        var composed = Delta.Empty;
        foreach (var op in (await GetAsync($"/api/docs/{id}/ops")).EnumerateArray())
        {
            composed = composed.Compose(JsonSerializer.Deserialize<Delta>(op.GetProperty("op").GetRawText())!);
        }
        return composed.ToString();
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task TwoMembersTypeAndFormatAtOnceAndEveryoneConvergesToTheServersDelta(WireProtocol protocol)
    {
        var ada = await Host.ConnectAsync(protocol);
        var bob = await Host.ConnectAsync(protocol);
        var joined = await JoinRichAsync(ada, "rich", "ada");
        Assert.Equal(("rich-text", 0, "[]"), (joined.Type, joined.Version, joined.Delta!.ToString()));
        Assert.Null(joined.Text);
        Assert.Equal(1, (await ada.SubmitAsync("rich", 0, [Insert("Hello world\n")], 1)).Version);

        var bobJoined = await JoinRichAsync(bob, "rich", "bob", type: null); // the type is used only to make a document
        Assert.Equal(("rich-text", """[{"insert":"Hello world\n"}]"""), (bobJoined.Type, bobJoined.Delta!.ToString()));
        var adaOps = ada.Collect<OpMessage>("Op");

        // Both at version 1: Ada makes "Hello" bold, Bob types at the start.
        Assert.Equal(2, (await ada.SubmitAsync("rich", 1, [Retain(5, new Dictionary<string, object?> { ["bold"] = true })], 2)).Version);
        Assert.Equal(3, (await bob.SubmitAsync("rich", 1, [Insert("Big ", new Dictionary<string, object?> { ["italic"] = true })], 1)).Version);

        var bobsOp = await adaOps.NextAsync();
        Assert.Equal((3, "bob"), (bobsOp.Version, bobsOp.ClientId));
        Assert.Equal("""[{"insert":"Big ","attributes":{"italic":true}}]""", bobsOp.Delta!.ToString());
        const string expected = """[{"insert":"Big ","attributes":{"italic":true}},{"insert":"Hello","attributes":{"bold":true}},{"insert":" world\n"}]""";
        var doc = await GetAsync("/api/docs/rich");
        Assert.Equal(("rich-text", 3, "Big Hello world\n"), (doc.GetProperty("type").GetString(), doc.GetProperty("version").GetInt32(), doc.GetProperty("text").GetString()));
        Assert.Equal(expected, JsonSerializer.Deserialize<Delta>(doc.GetProperty("delta").GetRawText())!.ToString());
        Assert.Equal(expected, await ComposedFromOpsAsync("rich"));

        // At a tie the op sequenced later goes first, as with text: Bob's "B" before Ada's "A".
        Assert.Equal(4, (await ada.SubmitAsync("rich", 3, [Insert("A")], 3)).Version);
        Assert.Equal(5, (await bob.SubmitAsync("rich", 3, [Insert("B")], 2)).Version);
        Assert.Equal("BABig Hello world\n", (await GetAsync("/api/docs/rich")).GetProperty("text").GetString());

        // A member that resumes gets the ops it missed as deltas.
        var carol = await Host.ConnectAsync(protocol);
        var resumed = await JoinRichAsync(carol, "rich", "carol", sinceVersion: 1);
        Assert.Equal([2, 3, 4, 5], resumed.Ops!.Select(o => o.Version));
        Assert.Equal("""[{"retain":5,"attributes":{"bold":true}}]""", resumed.Ops![0].Delta!.ToString());
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task AnotherTypeAnUnknownTypeAndOpsThatDoNotFitAreRefusedAndChangeNothing(WireProtocol protocol)
    {
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync("plain", "c");
        await c.SubmitAsync("plain", 0, ["text"], 1);
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => JoinRichAsync(c, "plain", "c2"));
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => JoinRichAsync(c, "other", "c", type: "json"));

        await JoinRichAsync(c, "rich", "c");
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => JoinRichAsync(c, "rich", "c3", type: "text"));
        await c.SubmitAsync("rich", 0, [Insert("abc")], 1);
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.SubmitAsync("rich", 1, ["text op"], 2));
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.SubmitAsync("rich", 1, [Retain(4, new Dictionary<string, object?> { ["bold"] = true })], 3));
        var tooMany = Enumerable.Range(0, 33).ToDictionary(i => $"k{i}", object? (_) => true);
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.SubmitAsync("rich", 1, [Insert("x", tooMany)], 4));
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.SubmitAsync("rich", 1, [new Dictionary<string, object?> { ["insert"] = new Dictionary<string, object?> { ["image"] = new string('x', 5000) } }], 5));

        Assert.Equal((1, "text"), await Host.GetDocAsync("plain"));
        var rich = await GetAsync("/api/docs/rich");
        Assert.Equal((1, """[{"insert":"abc"}]"""), (rich.GetProperty("version").GetInt32(), rich.GetProperty("delta").GetRawText()));
    }

    [Fact]
    public async Task RestCreatesReadsReplacesAndRestoresARichTextDocumentThatOutlivesARestart()
    {
        const string first = """[{"insert":"Title","attributes":{"header":1}},{"insert":"\n"},{"insert":{"image":"https://example.org/a.png"}},{"insert":"body\n"}]""";
        var put = await Host.Http.PutAsync("/api/docs/made", Json($$"""{"type":"rich-text","delta":{{first}}}"""));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        var doc = await GetAsync("/api/docs/made");
        Assert.Equal(("rich-text", 1, "Title\nbody\n"), (doc.GetProperty("type").GetString(), doc.GetProperty("version").GetInt32(), doc.GetProperty("text").GetString()));
        Assert.Equal(first, doc.GetProperty("delta").GetRawText());

        // A text body for a rich-text document, or a delta that is not a document: refused, nothing changes.
        await AssertRefusedAsync(await Host.Http.PutAsync("/api/docs/made", Json("""{"text":"plain"}""")));
        await AssertRefusedAsync(await Host.Http.PutAsync("/api/docs/made", Json("""{"type":"rich-text","delta":[{"retain":2}]}""")));
        await AssertRefusedAsync(await Host.Http.PutAsync("/api/docs/made", Json("""{"type":"rich-text","delta":[{"insert":"x","attributes":{"bold":null}}]}""")));
        await AssertRefusedAsync(await Host.Http.PutAsync("/api/docs/made", Json("""{"type":"json","delta":[]}""")));
        Assert.Equal(1, (await GetAsync("/api/docs/made")).GetProperty("version").GetInt32());

        const string second = """[{"insert":"Title","attributes":{"header":2}},{"insert":"\nnew body\n"}]""";
        Assert.Equal(HttpStatusCode.OK, (await Host.Http.PutAsync("/api/docs/made", Json($$"""{"type":"rich-text","delta":{{second}}}"""))).StatusCode);
        var past = await GetAsync("/api/docs/made?version=1");
        Assert.Equal(first, past.GetProperty("delta").GetRawText());
        Assert.Equal(HttpStatusCode.OK, (await Host.Http.PostAsJsonAsync("/api/docs/made/restore", new { version = 1 })).StatusCode);
        var restored = await GetAsync("/api/docs/made");
        Assert.Equal((3, first), (restored.GetProperty("version").GetInt32(), restored.GetProperty("delta").GetRawText()));
        Assert.Equal(first, await ComposedFromOpsAsync("made"));

        // A text document takes no delta either.
        await Host.Http.PutAsync("/api/docs/plain", Json("""{"text":"abc"}"""));
        await AssertRefusedAsync(await Host.Http.PutAsync("/api/docs/plain", Json($$"""{"type":"rich-text","delta":{{first}}}""")));

        // From the files (a snapshot every 3 ops, and the ops after it): the same content, and joins get it.
        await Host.DisposeAsync();
        await using var again = new TestHost(Host.DataDir, new Dictionary<string, string?> { ["Collab:SnapshotInterval"] = "3" });
        var reloaded = await (await again.Http.GetAsync("/api/docs/made")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal((3, first), (reloaded.GetProperty("version").GetInt32(), reloaded.GetProperty("delta").GetRawText()));
        var member = await again.ConnectAsync();
        var joined = await JoinRichAsync(member, "made", "m", type: null);
        Assert.Equal(("rich-text", first), (joined.Type, joined.Delta!.ToString()));
        Assert.Equal((1, "abc"), await again.GetDocAsync("plain"));
    }

    private static StringContent Json(string body) => new(body, System.Text.Encoding.UTF8, "application/json");

    private static async Task AssertRefusedAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(ErrorCodes.InvalidOp, problem.GetProperty("type").GetString());
    }
}
