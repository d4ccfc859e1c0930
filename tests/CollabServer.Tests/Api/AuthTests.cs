using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Collab;
using CollabServer.Auth;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.IdentityModel.Tokens;

namespace CollabServer.Tests.Api;

/// <summary>Tokens, grants, origins and hosts (PROTOCOL §8), against a server with a signing key.</summary>
public sealed class AuthTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:Auth:SigningKey"] = Key,
    ["Collab:AllowedOrigins:0"] = "https://editor.example",
    // Outside Development, AllowedHosts defaults to the loopback names.
    ["environment"] = "Production",
})
{
    private const string Key = "test-signing-key-of-at-least-32-bytes!";

    private static string Token(string scope, string subject = "ada", TimeSpan? lifetime = null, string key = Key) =>
        TokenCommand.Mint(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(key)), new AuthOptions(), subject, null, scope, lifetime ?? TimeSpan.FromHours(1));

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? token, object? body = null, Action<HttpRequestMessage>? configure = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        configure?.Invoke(request);
        return Host.Http.SendAsync(request);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
    }

    [Fact]
    public async Task RestWithoutAnExpiredOrAForeignTokenIsUnauthorized()
    {
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/notes", null), HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/notes", Token("doc:*:edit", lifetime: TimeSpan.FromMinutes(-5))), HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/notes", Token("doc:*:edit", key: "another-key-that-is-also-32-bytes-long")), HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        Assert.Empty(Directory.EnumerateFiles(Host.DataDir, "*.db", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task GrantsAreExactIdsOrPrefixesAndReadIsNotEdit()
    {
        var token = Token("doc:notes-*:edit doc:plan:read");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, "/api/docs/notes-monday", token, new { text = "mine" })).StatusCode);
        await AssertProblemAsync(await SendAsync(HttpMethod.Put, "/api/docs/notes", token, new { text = "prefix only" }), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        await AssertProblemAsync(await SendAsync(HttpMethod.Put, "/api/docs/plan", token, new { text = "read only" }), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        await AssertProblemAsync(await SendAsync(HttpMethod.Put, "/api/docs/plan2", token, new { text = "exact only" }), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, "/api/docs/notes-monday", token)).StatusCode);
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/other", token), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
    }

    [Fact]
    public async Task HistoryNeedsTheReadGrantRestoreNeedsAdminAndEntriesShowOnlyTheClientId()
    {
        var writer = await Host.ConnectAsync(token: Token("doc:past:edit", subject: "writer"));
        await writer.JoinAsync("past", "pen");
        await writer.SubmitAsync("past", 0, ["one"], 1);
        await writer.SubmitAsync("past", 1, [3, " two"], 2);
        var reader = Token("doc:past:read");
        Assert.Equal("one", (await (await SendAsync(HttpMethod.Get, "/api/docs/past?version=1", reader)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("text").GetString());
        var history = await (await SendAsync(HttpMethod.Get, "/api/docs/past/history", reader)).Content.ReadFromJsonAsync<JsonElement>();
        var entry = history.EnumerateArray().Single();
        Assert.Equal((2, 1, "pen"), (entry.GetProperty("version").GetInt32(), entry.GetProperty("fromVersion").GetInt32(), entry.GetProperty("clientId").GetString()));
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/past?version=1", Token("doc:other:read")), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/past/history", Token("doc:other:edit")), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/past/history", null), HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        await AssertProblemAsync(await SendAsync(HttpMethod.Post, "/api/docs/past/restore", Token("doc:past:edit"), new { version = 1 }), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        var restored = await (await SendAsync(HttpMethod.Post, "/api/docs/past/restore", Token("collab:admin", subject: "root"), new { version = 1 })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(3, restored.GetProperty("version").GetInt32());
        Assert.Equal("one", (await (await SendAsync(HttpMethod.Get, "/api/docs/past", reader)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("text").GetString());
    }

    [Fact]
    public async Task ListingAndDeletingNeedAdmin()
    {
        var editor = Token("doc:*:edit");
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Put, "/api/docs/keep", editor, new { text = "x" })).StatusCode);
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs", editor), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        await AssertProblemAsync(await SendAsync(HttpMethod.Delete, "/api/docs/keep", editor), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        var admin = Token("collab:admin", subject: "root");
        var listed = await (await SendAsync(HttpMethod.Get, "/api/docs", admin)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(["keep"], listed.EnumerateArray().Select(d => d.GetProperty("id").GetString()));
        Assert.Equal(HttpStatusCode.NoContent, (await SendAsync(HttpMethod.Delete, "/api/docs/keep", admin)).StatusCode);
    }

    [Fact]
    public async Task TheHubRefusesAConnectionWithoutAValidToken()
    {
        var none = await Assert.ThrowsAnyAsync<Exception>(() => Host.ConnectAsync());
        Assert.Contains("401", none.ToString());
        var expired = await Assert.ThrowsAnyAsync<Exception>(() => Host.ConnectAsync(token: Token("doc:*:edit", lifetime: TimeSpan.FromMinutes(-5))));
        Assert.Contains("401", expired.ToString());
    }

    /// <summary>A correctly signed token that names no subject, only a display name.</summary>
    private static string TokenWithoutSubject(string scope, string name)
    {
        var now = DateTime.UtcNow;
        return new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = new System.Security.Claims.ClaimsIdentity([new("name", name), new("scope", scope)]),
            IssuedAt = now,
            NotBefore = now,
            Expires = now + TimeSpan.FromHours(1),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(Key)), SecurityAlgorithms.HmacSha256),
        });
    }

    [Fact]
    public async Task ATokenWithoutASubjectIsRefusedNotTakenForTheOneItsNameMatches()
    {
        // The real alice edits; a token with no sub but name "alice" must not become her.
        var alice = await Host.ConnectAsync(token: Token("doc:shared:edit", subject: "alice"));
        await alice.JoinAsync("shared", "alice-pen");
        await alice.SubmitAsync("shared", 0, ["hers"], 1);
        var nameless = TokenWithoutSubject("doc:*:edit", "alice");
        await AssertProblemAsync(await SendAsync(HttpMethod.Put, "/api/docs/shared", nameless, new { text = "not hers" }), HttpStatusCode.Unauthorized, ErrorCodes.Unauthorized);
        var hub = await Assert.ThrowsAnyAsync<Exception>(() => Host.ConnectAsync(token: nameless));
        Assert.Contains("401", hub.ToString());
        Assert.Equal("hers", (await (await SendAsync(HttpMethod.Get, "/api/docs/shared", Token("doc:shared:read"))).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("text").GetString());
    }

    /// <summary>A correctly signed token with a subject and one more claim (a display name under some claim type).</summary>
    private static string TokenWith(string scope, string subject, string claimType, string value)
    {
        var now = DateTime.UtcNow;
        return new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = new System.Security.Claims.ClaimsIdentity([new("sub", subject), new(claimType, value), new("scope", scope)]),
            IssuedAt = now,
            NotBefore = now,
            Expires = now + TimeSpan.FromHours(1),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(Key)), SecurityAlgorithms.HmacSha256),
        });
    }

    private static Dictionary<string, object?> Named(string name, string color) => new() { ["name"] = name, ["color"] = color };

    [Fact]
    public async Task ATokensNameIsTheMembersNameInPresenceWhateverTheClientSays()
    {
        // The editor names everyone after a random animal; a token minted with --name Bob is Bob.
        var bob = await Host.ConnectAsync(token: TokenCommand.Mint(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(Key)), new AuthOptions(), "bob", "Bob", "doc:names:edit", TimeSpan.FromHours(1)));
        var ada = await Host.ConnectAsync(token: Token("doc:names:edit", subject: "ada")); // no name claim
        var adaSees = ada.Collect<Collab.Messages.PresenceMessage>("Presence");
        var bobSees = bob.Collect<Collab.Messages.PresenceMessage>("Presence");
        await ada.InvokeAsync<Collab.Messages.JoinResult>("Join", new Dictionary<string, object?> { ["docId"] = "names", ["clientId"] = "ada", ["user"] = Named("Ada's animal", "#00f") }).WaitAsync(Wire.Timeout);
        var bobJoined = await bob.InvokeAsync<Collab.Messages.JoinResult>("Join", new Dictionary<string, object?> { ["docId"] = "names", ["clientId"] = "bob", ["user"] = Named("random-animal", "#0f0") }).WaitAsync(Wire.Timeout);

        // Without a name in her token, Ada is what her client says; Bob is his token's name, in his client's colour.
        var ada1 = Assert.Single(bobJoined.Presence).User!;
        Assert.Equal(("Ada's animal", "#00f"), (ada1.Name, ada1.Color));
        var joined = await adaSees.NextAsync();
        Assert.Equal(("bob", "Bob", "#0f0"), (joined.ClientId, joined.User!.Name, joined.User.Color));

        // A later presence with another name stays Bob, and a third member's join result says Bob too.
        await bob.InvokeAsync("SetPresence", new Dictionary<string, object?> { ["docId"] = "names", ["version"] = 0, ["user"] = Named("another-animal", "#f0f"), ["selection"] = Array.Empty<object>() }).WaitAsync(Wire.Timeout);
        var moved = await adaSees.NextAsync();
        Assert.Equal(("Bob", "#f0f"), (moved.User!.Name, moved.User.Color));
        var carol = await Host.ConnectAsync(token: TokenWith("doc:names:edit", "carol-sub", "preferred_username", "carol"));
        var carolJoined = await carol.InvokeAsync<Collab.Messages.JoinResult>("Join", new Dictionary<string, object?> { ["docId"] = "names", ["clientId"] = "carol", ["user"] = Named("a-third-animal", "#ff0") }).WaitAsync(Wire.Timeout);
        Assert.Equal("Bob", carolJoined.Presence.Single(p => p.ClientId == "bob").User!.Name);

        // Without a name in the token, preferred_username is the name.
        var carolArrived = await bobSees.NextAsync();
        Assert.Equal(("carol", "carol", "#ff0"), (carolArrived.ClientId, carolArrived.User!.Name, carolArrived.User.Color));
    }

    [Fact]
    public async Task AReadGrantJoinsReadOnlyAndItsSubmitIsForbiddenAnOutsideDocumentIsForbidden()
    {
        var reader = await Host.ConnectAsync(token: Token("doc:plan:read", subject: "reader"));
        var joined = await reader.JoinAsync("plan", "r");
        Assert.True(joined.ReadOnly);
        await Wire.AssertErrorAsync(ErrorCodes.Forbidden, () => reader.SubmitAsync("plan", 0, ["no"], 1));
        await Wire.AssertErrorAsync(ErrorCodes.Forbidden, () => reader.JoinAsync("secret", "r"));

        var writer = await Host.ConnectAsync(token: Token("doc:plan:edit", subject: "writer"));
        var ops = reader.Collect<Collab.Messages.OpMessage>("Op");
        Assert.False((await writer.JoinAsync("plan", "w")).ReadOnly);
        Assert.Equal(1, (await writer.SubmitAsync("plan", 0, ["yes"], 1)).Version);
        Assert.Equal("w", (await ops.NextAsync()).ClientId); // the reader receives
    }

    [Fact]
    public async Task KnowingAnotherMembersClientIdGivesNothing()
    {
        // Attack 3: the thief joins with the victim's clientId and submits the victim's next op ids first.
        var victim = await Host.ConnectAsync(token: Token("doc:shared:edit", subject: "victim"));
        var thief = await Host.ConnectAsync(token: Token("doc:shared:edit", subject: "thief"));
        await victim.JoinAsync("shared", "same-client-id");
        await thief.JoinAsync("shared", "same-client-id");
        for (var opId = 1; opId <= 4; opId++)
        {
            await thief.SubmitAsync("shared", opId - 1, ["T"], opId);
        }
        var version = 4;
        for (var opId = 1; opId <= 4; opId++)
        {
            version = (await victim.SubmitAsync("shared", version, ["v"], opId)).Version;
        }
        Assert.Equal(8, version);
        var text = await (await SendAsync(HttpMethod.Get, "/api/docs/shared", Token("doc:shared:read"))).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("vvvvTTTT", text.GetProperty("text").GetString());
        // Clients still see the clientId they sent, not the subject.
        var ops = await (await SendAsync(HttpMethod.Get, "/api/docs/shared/ops?from=0", Token("doc:shared:read"))).Content.ReadFromJsonAsync<JsonElement>();
        Assert.All(ops.EnumerateArray(), o => Assert.Equal("same-client-id", o.GetProperty("clientId").GetString()));
    }

    [Fact]
    public async Task ADisallowedOriginIsRefusedAnAllowedOneAndTheServersOwnAreNot()
    {
        var token = Token("doc:*:edit");
        await AssertProblemAsync(await SendAsync(HttpMethod.Get, "/api/docs/x", token, configure: r => r.Headers.Add("Origin", "http://evil.example")), HttpStatusCode.Forbidden, ErrorCodes.Forbidden);
        var hijack = await Assert.ThrowsAnyAsync<Exception>(() => Host.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, "/hubs/collab?access_token=" + token) { Headers = { { "Origin", "http://evil.example" } } }).ContinueWith(t => t.Result.EnsureSuccessStatusCode()));
        Assert.Contains("403", hijack.ToString());
        Assert.NotEqual(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Get, "/api/docs/x", token, configure: r => r.Headers.Add("Origin", "https://editor.example"))).StatusCode);
        Assert.NotEqual(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Get, "/api/docs/x", token, configure: r => r.Headers.Add("Origin", "http://localhost"))).StatusCode);
    }

    [Fact]
    public async Task AForeignHostHeaderIsRefused()
    {
        var response = await SendAsync(HttpMethod.Get, "/healthz", null, configure: r => r.Headers.Host = "attacker.example");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Get, "/healthz", null)).StatusCode);
    }
}
