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

    private static string Token(string scope) =>
        TokenCommand.Mint(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Key)), new AuthOptions(), "ada", "Ada", scope, TimeSpan.FromHours(1));

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
