using System.Net;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CollabBrowser.Tests;

/// <summary>
/// The real server on a real Kestrel port (with a fresh data directory) and one headless
/// Debian Chromium driven by Playwright, shared by every browser test and stopped at the end.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    /// <summary>The flags Debian's Chromium needs headless on a machine with no network.</summary>
    internal static readonly string[] ChromiumArgs =
    [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];

    private WebApplicationFactory<Program>? _factory;
    private IPlaywright? _playwright;
    private string? _dataDir;

    public string BaseUrl { get; private set; } = "";

    public IBrowser Browser { get; private set; } = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>The colors of the two people the browser tests play.</summary>
    public const string AdaColor = "#e5484d", GraceColor = "#0090ff";

    /// <summary>A document id no other test uses: <paramref name="name"/>, a random suffix, then <paramref name="extension"/>.</summary>
    public static string NewDocId(string name, string extension = "") => $"{name}-{Guid.NewGuid():N}"[..(name.Length + 9)] + extension;

    /// <summary>Sets a document's text through the REST API.</summary>
    public async Task PutAsync(string docId, string text)
    {
        using var response = await Http.PutAsJsonAsync($"/api/docs/{docId}", new { text });
        response.EnsureSuccessStatusCode();
    }

    public async Task InitializeAsync()
    {
        _dataDir = Directory.CreateTempSubdirectory("collab-browser-").FullName;
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(b =>
        {
            b.UseSetting("Collab:DataDir", _dataDir);
            b.UseEnvironment("Production");
            b.UseSetting("Logging:LogLevel:Default", "Warning");
        });
        _factory.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _factory.StartServer();
        var addresses = _factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        BaseUrl = addresses.First().TrimEnd('/');
        Http.BaseAddress = new Uri(BaseUrl);

        try
        {
            // Debian's headless Chromium with the flags above, shared by every browser test.
            _playwright = await Playwright.CreateAsync();
            Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = "/usr/bin/chromium",
                Headless = true,
                Args = ChromiumArgs,
                Timeout = 60_000,
            });
        }
        catch
        {
            await DisposeAsync(); // nothing started may outlive a failed start
            throw;
        }
    }

    /// <summary>Stops what started; safe to call again (a failed start calls it first).</summary>
    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.CloseAsync();
            Browser = null!;
        }
        _playwright?.Dispose();
        _playwright = null;
        if (_factory is not null)
        {
            await _factory.DisposeAsync();
            _factory = null;
        }
        Http.Dispose();
        if (Interlocked.Exchange(ref _dataDir, null) is { } dataDir)
        {
            try
            {
                Directory.Delete(dataDir, recursive: true);
            }
            catch (IOException)
            {
                // A file still held open by a closing document: the temp folder is cleaned later.
            }
        }
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}

/// <summary>artifacts/browser under the repository root: build output, not committed.</summary>
internal static class TestArtifacts
{
    public static string Dir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CollabServer.sln")))
        {
            dir = dir.Parent;
        }
        var path = Path.Combine(dir?.FullName ?? AppContext.BaseDirectory, "artifacts", "browser");
        Directory.CreateDirectory(path);
        return path;
    }
}
