using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using CollabServer.Auth;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Playwright;

namespace CollabBrowser.Tests;

/// <summary>
/// The editor against a server that requires tokens (PROTOCOL §8): a link carrying a token in its
/// fragment opens and edits; a page that cannot connect (no token, an expired one, a document it
/// may not open, an origin the server does not allow) says why and what to do, and stops retrying;
/// "Restore this version" is offered only to a token with collab:admin.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class AuthenticatedEditorTests(BrowserFixture fixture) : IAsyncLifetime
{
    private const string Key = "browser-test-signing-key-32-bytes-at-least";

    private WebApplicationFactory<Program>? _factory;
    private string? _dataDir;
    private string _baseUrl = "";

    private static string Token(string scope, string name = "Ada") =>
        TokenCommand.Mint(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Key)), new AuthOptions(), name.ToLowerInvariant(), name, scope, TimeSpan.FromHours(1));

    /// <summary>A token of the server's key that expired an hour ago.</summary>
    private static string ExpiredToken(string scope)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", "ada"), new Claim("scope", scope)]),
            IssuedAt = now.AddHours(-2),
            NotBefore = now.AddHours(-2),
            Expires = now.AddHours(-1),
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Key)), SecurityAlgorithms.HmacSha256),
        });
    }

    /// <summary>
    /// Waits until the page has given up on connecting: it says "Not connected", shows
    /// <paramref name="problem"/> in its banner and in place of the editor, and offers no "Retry now".
    /// </summary>
    private static async Task ExpectRefusedAsync(EditorPage page, string problem, string screenshot)
    {
        await Expect.EventuallyAsync(async () => await page.StatusAsync() == "Not connected", "the page says it is not connected");
        Assert.Equal(problem, await page.Page.Locator("#banner-text").InnerTextAsync());
        Assert.True(await page.Page.Locator("#banner").IsVisibleAsync(), "the reason is shown");
        Assert.Equal(problem, await page.Page.Locator("#editor .placeholder").InnerTextAsync());
        Assert.True(await page.Page.Locator("#retry").IsHiddenAsync(), "no Retry now where retrying cannot help");
        Assert.Equal("failed", await page.Page.Locator("#status").GetAttributeAsync("data-state"));
        var path = Path.Combine(TestArtifacts.Dir(), screenshot);
        await page.Page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        Assert.True(new FileInfo(path).Length > 5_000, "the screenshot was written");
    }

    public Task InitializeAsync()
    {
        _dataDir = Directory.CreateTempSubdirectory("collab-browser-auth-").FullName;
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b =>
        {
            b.UseSetting("Collab:DataDir", _dataDir);
            b.UseSetting("Collab:Auth:SigningKey", Key);
            b.UseEnvironment("Production");
            b.UseSetting("Logging:LogLevel:Default", "Warning");
        });
        _factory.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _factory.StartServer();
        _baseUrl = _factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return Task.CompletedTask;
    }

    [Fact]
    public async Task ALinkWithATokenOpensTheEditorAndItsEditsReachTheServerWithoutOneItCannotConnect()
    {
        var token = Token("doc:team-*:edit");
        await using (var page = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-notes#token={token}", "Ada Lovelace", "#e5484d"))
        {
            await page.Page.WaitForFunctionAsync("() => window.collab && window.collab.view && window.collab.client.status === 'connected'");
            // The token left the address bar and stays for the tab.
            Assert.DoesNotContain("token", page.Page.Url);
            await page.SetCursorAsync(0);
            await page.TypeAsync("signed in");
            await page.WaitSynchronizedAsync();
            Assert.Empty(page.ConsoleErrors);
        }
        using var http = new HttpClient { BaseAddress = new Uri(_baseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        Assert.Equal("signed in", (await http.GetFromJsonAsync<JsonElement>("/api/docs/team-notes")).GetProperty("text").GetString());

        await using var anonymous = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-notes", "Mallory", "#0090ff");
        // Its connection attempt is refused (401): it says so and what to do, and stops.
        await ExpectRefusedAsync(anonymous,
            "You are not signed in: this server needs a token. Open the document with a link that carries one (…/d/name#token=…).",
            "refused-no-token.png");
    }

    [Fact]
    public async Task AnExpiredTokenIsShownAsAnExpiredSignIn()
    {
        await using var page = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-expired#token={ExpiredToken("doc:team-*:edit")}", "Ada Lovelace", "#e5484d");
        await ExpectRefusedAsync(page, "Your sign-in has expired: get a new link (or token) and open the document with it.", "refused-expired-token.png");
    }

    [Fact]
    public async Task ADocumentOutsideTheTokensGrantsIsShownAsNoAccess()
    {
        await using var page = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/finance-plan#token={Token("doc:team-*:edit")}", "Ada Lovelace", "#e5484d");
        await ExpectRefusedAsync(page, "You don't have access to this document: ask its owner for a link that grants it.", "refused-forbidden-document.png");
        Assert.Equal(HttpStatusCode.NotFound, (await GetDocumentAsAdminAsync("finance-plan")).StatusCode);
    }

    [Fact]
    public async Task AnOriginTheServerDoesNotAllowIsShownWithTheSettingToChange()
    {
        // A reverse proxy that passes the server its own Host (127.0.0.1:port) while the page's
        // origin is the proxy's: the server refuses the page's WebSocket with 403 (PROTOCOL §8).
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        builder.Services.AddHttpForwarder();
        await using var proxy = builder.Build();
        proxy.MapForwarder("/{**catch-all}", _baseUrl);
        await proxy.StartAsync();
        var proxyUrl = proxy.Urls.First().TrimEnd('/');

        await using var page = await EditorPage.OpenAsync(fixture.Browser, $"{proxyUrl}/d/team-proxied#token={Token("doc:team-*:edit")}", "Ada Lovelace", "#e5484d");
        await ExpectRefusedAsync(page,
            $"This page's address (origin {proxyUrl}) is not allowed by the server: ask the operator to add it to Collab:AllowedOrigins.",
            "refused-origin.png");
        await proxy.StopAsync();
    }

    [Fact]
    public async Task RestoreIsOfferedToATokenWithCollabAdminOnly()
    {
        var member = Token("doc:team-*:edit");
        await using (var page = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-restore#token={member}", "Grace Hopper", "#0090ff"))
        {
            await page.Page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
            await page.TypeAsync("first");
            await page.WaitSynchronizedAsync();
            await page.Page.Locator("#history-toggle").ClickAsync();
            await page.Page.Locator("#history-panel").WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
            await page.Page.Locator(".history-entry").First.WaitForAsync();
            Assert.True(await page.Page.Locator("#history-restore").IsHiddenAsync(), "no restore button without collab:admin");
            Assert.Contains("collab:admin", await page.Page.Locator("#history-restore-note").InnerTextAsync());
            Assert.True(await page.Page.Locator("#history-restore-note").IsVisibleAsync());
            var path = Path.Combine(TestArtifacts.Dir(), "history-panel-member.png");
            await page.Page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
            Assert.Empty(page.ConsoleErrors);
        }

        await using var admin = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-restore#token={Token("collab:admin")}", "Ada Lovelace", "#e5484d");
        await admin.Page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
        await admin.Page.Locator("#history-toggle").ClickAsync();
        var restore = admin.Page.Locator("#history-restore");
        await restore.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
        Assert.True(await admin.Page.Locator("#history-restore-note").IsHiddenAsync());
        // An admin restores for real: version 0 (empty) becomes the text again.
        await admin.Page.Locator("#history-slider").FocusAsync();
        await admin.Page.Keyboard.PressAsync("Home");
        await Expect.EventuallyAsync(async () => await admin.Page.EvaluateAsync<int?>("() => window.collab.history.version ?? null") == 0, "version 0 is shown");
        await restore.ClickAsync();
        await admin.Page.Locator("#restore-confirm").ClickAsync();
        await Expect.EventuallyAsync(async () => (await GetDocumentAsAdminAsync("team-restore")).StatusCode == HttpStatusCode.OK
            && (await (await GetDocumentAsAdminAsync("team-restore")).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("text").GetString() == "",
            "the admin's restore emptied the document");
        Assert.Empty(admin.ConsoleErrors);
    }

    [Fact]
    public async Task RenameAndDeleteAreOfferedToATokenWithCollabAdminOnly()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_baseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token("collab:admin"));
        (await http.PutAsJsonAsync("/api/docs/team-minutes.md", new { text = "# Minutes\n\n- agreed on **Friday**\n" })).EnsureSuccessStatusCode();
        (await http.PutAsJsonAsync("/api/docs/team-taken", new { text = "someone else's" })).EnsureSuccessStatusCode();

        // A member (no collab:admin) is offered neither; she stays on the document meanwhile.
        await using var member = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-minutes.md#token={Token("doc:team-*:edit", "Grace")}", "Grace Hopper", "#0090ff");
        await member.Page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
        Assert.True(await member.Page.Locator("#rename-doc").IsHiddenAsync(), "no rename without collab:admin");
        Assert.True(await member.Page.Locator("#delete-doc").IsHiddenAsync(), "no delete without collab:admin");

        var admin = await EditorPage.OpenAsync(fixture.Browser, $"{_baseUrl}/d/team-minutes.md#token={Token("collab:admin")}", "Ada Lovelace", "#e5484d");
        await using (admin)
        {
            var page = admin.Page;
            await page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
            await page.Locator("#rename-doc").ClickAsync();
            var input = page.Locator("#rename-name");
            Assert.Equal("team-minutes.md", await input.InputValueAsync());
            var message = page.Locator("#rename-message");
            // A name that exists is refused in words, and so is one that is not an id.
            await input.FillAsync("team-taken");
            await page.Locator("#rename-confirm").ClickAsync();
            await Expect.EventuallyAsync(async () => await message.InnerTextAsync() == "“team-taken” already exists: choose another name.", "the taken name is refused");
            Assert.Equal("true", await input.GetAttributeAsync("aria-invalid"));
            var shot = Path.Combine(TestArtifacts.Dir(), "rename-taken.png");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot });
            Assert.True(new FileInfo(shot).Length > 5_000, "the screenshot was written");
            await input.FillAsync(".hidden");
            await page.Locator("#rename-confirm").ClickAsync();
            await Expect.EventuallyAsync(async () => await message.InnerTextAsync() == "Use 1 to 128 letters, digits, dots, dashes or underscores, not starting with a dot.", "an invalid id is refused");
            Assert.Equal("someone else's", (await http.GetFromJsonAsync<JsonElement>("/api/docs/team-taken")).GetProperty("text").GetString());

            // A free name: the text moves there, the page opens it, the old name is gone.
            await input.FillAsync("team-decisions.md");
            await page.Locator("#rename-confirm").ClickAsync();
            await page.WaitForURLAsync($"{_baseUrl}/d/team-decisions.md");
            await page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
            Assert.Equal("# Minutes\n\n- agreed on **Friday**\n", await admin.TextAsync());
            Assert.Equal("team-decisions.md", await page.Locator("#doc-title").InnerTextAsync());
            Assert.Equal("# Minutes\n\n- agreed on **Friday**\n", (await http.GetFromJsonAsync<JsonElement>("/api/docs/team-decisions.md")).GetProperty("text").GetString());
            // The member of the old name is taken to the new one (her token's grants cover it) and told why.
            await member.Page.WaitForURLAsync($"{_baseUrl}/d/team-decisions.md");
            await member.Page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
            Assert.Equal("# Minutes\n\n- agreed on **Friday**\n", await member.TextAsync());
            Assert.Equal("“team-minutes.md” was renamed to “team-decisions.md” by someone; this is it now.", await member.Page.Locator("#banner-text").InnerTextAsync());
            Assert.Empty(member.ConsoleErrors);
            await member.DisposeAsync();
            // The old name is gone (nobody joined it again), and its 404 says where it went.
            var old = await http.GetAsync("/api/docs/team-minutes.md");
            Assert.Equal(HttpStatusCode.NotFound, old.StatusCode);
            Assert.Equal("team-decisions.md", (await old.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("movedTo").GetString());

            // Delete asks first; Cancel changes nothing.
            await page.Locator("#delete-doc").ClickAsync();
            var dialog = page.Locator("#delete-dialog");
            await dialog.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
            Assert.Contains("“team-decisions.md” and its history are removed for everyone", await page.Locator("#delete-dialog-text").InnerTextAsync());
            shot = Path.Combine(TestArtifacts.Dir(), "delete-confirm.png");
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = shot });
            Assert.True(new FileInfo(shot).Length > 5_000, "the screenshot was written");
            await page.Locator("#delete-cancel").ClickAsync();
            Assert.True(await dialog.IsHiddenAsync());
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/docs/team-decisions.md")).StatusCode);
            Assert.Equal(page.Url, $"{_baseUrl}/d/team-decisions.md");

            // Delete, confirmed: the page goes back to the list, and the document is gone.
            await page.Locator("#delete-doc").ClickAsync();
            await page.Locator("#delete-confirm").ClickAsync();
            await page.WaitForURLAsync($"{_baseUrl}/");
            await Expect.EventuallyAsync(async () => (await http.GetAsync("/api/docs/team-decisions.md")).StatusCode == HttpStatusCode.NotFound, "the deleted document is gone");
            await Expect.EventuallyAsync(async () => await page.Locator("#doc-list").GetAttributeAsync("aria-busy") == "false", "the list is shown");
            var listed = await page.Locator("#doc-list").InnerTextAsync();
            Assert.Contains("team-taken", listed);
            Assert.DoesNotContain("team-decisions.md", listed);
            Assert.DoesNotContain("team-minutes.md", listed);
            // The only console errors: Chromium's lines for the 404 that told the page the new name was free.
            Assert.All(admin.ConsoleErrors, e => Assert.True(
                e.StartsWith("Failed to load resource: the server responded with a status of 404", StringComparison.Ordinal) && e.Contains($"({_baseUrl}/api/docs/team-decisions.md:", StringComparison.Ordinal),
                $"an unexpected console error: {e}"));
        }
    }

    private async Task<HttpResponseMessage> GetDocumentAsAdminAsync(string docId)
    {
        using var http = new HttpClient { BaseAddress = new Uri(_baseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Token("collab:admin"));
        return await http.GetAsync($"/api/docs/{docId}");
    }

    public async Task DisposeAsync()
    {
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
        }
        if (_dataDir is not null)
        {
            Directory.Delete(_dataDir, recursive: true);
        }
    }
}
