using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CollabServer.Auth;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;

namespace CollabBrowser.Tests;

/// <summary>
/// The editor against a server that requires tokens (PROTOCOL §8): a link carrying a token in its
/// fragment opens and edits; without one the page cannot connect and says so.
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
        // Its connection attempt is refused (401), so it waits offline for the next try, never connected.
        await Expect.EventuallyAsync(async () => (await anonymous.StatusAsync()).StartsWith("Offline", StringComparison.Ordinal),
            "the page without a token shows Offline after its connection attempts were refused");
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
