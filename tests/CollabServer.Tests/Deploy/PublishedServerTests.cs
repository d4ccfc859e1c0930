using System.Net;
using System.Net.Http.Json;
using Collab.Testing;

namespace CollabServer.Tests.Deploy;

/// <summary>
/// The server as an operator runs it: `dotnet publish` into a folder, then `dotnet DIR/CollabServer.dll`
/// started from a directory that has nothing to do with the repository. Pages, the editor bundle
/// and the client library must come from the published folder; data from ./data of the working
/// directory unless configured.
/// </summary>
public sealed class PublishedServerTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("collab-publish-").FullName;

    [Fact]
    public async Task APublishedServerStartedFromAnyDirectoryServesTheEditorAndKeepsDataInItsWorkingDirectory()
    {
        var publish = Path.Combine(_root, "publish");
        await PublishAsync(publish);
        Assert.True(File.Exists(Path.Combine(publish, "wwwroot", "dist", "collab-client.js")), "the editor bundle was not published");
        // The runtime settings the systemd unit of docs/OPERATIONS.md loads with EnvironmentFile=.
        var runtimeSettings = Path.Combine(publish, "collab.env");
        Assert.True(File.Exists(runtimeSettings), "collab.env was not published");
        Assert.Contains("DOTNET_TC_CallCountingDelayMs=0", File.ReadAllLines(runtimeSettings));

        // From the filesystem root, with the data directory given (the default would be /data).
        var dataDir = Path.Combine(_root, "data-from-root");
        using (var server = await ServerProcess.StartDllAsync(Path.Combine(publish, "CollabServer.dll"), "/", $"--Collab:DataDir={dataDir}"))
        {
            await AssertServesTheEditorAsync(server);
        }

        // From an empty directory with the documented default: ./data of the working directory.
        var work = Directory.CreateDirectory(Path.Combine(_root, "work")).FullName;
        using (var server = await ServerProcess.StartDllAsync(Path.Combine(publish, "CollabServer.dll"), work))
        {
            await AssertServesTheEditorAsync(server);
            using var http = new HttpClient { BaseAddress = server.BaseUrl };
            (await http.PutAsJsonAsync("/api/docs/deployed", new { text = "from a published build" })).EnsureSuccessStatusCode();
            Assert.True(File.Exists(Path.Combine(work, "data", "docs", "deployed.db")), server.Output);
        }
        Assert.False(Directory.Exists(Path.Combine(publish, "data")), "data was written into the published folder");
    }

    [Fact]
    public void DotnetRunStartsTheServerWithTheRuntimeSettingsOfItsCollabEnv()
    {
        // collab.env is what a deployment loads (docs/OPERATIONS.md); dotnet run cannot read it, so its launch
        // profile repeats the settings, and must say the same.
        var project = Path.Combine(Repo.Root, "server", "CollabServer");
        var deployed = File.ReadAllLines(Path.Combine(project, "collab.env"))
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => line.Split('=', 2))
            .ToDictionary(pair => pair[0], pair => pair[1]);
        using var launch = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(project, "Properties", "launchSettings.json")));
        var run = launch.RootElement.GetProperty("profiles").GetProperty("CollabServer").GetProperty("environmentVariables")
            .EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetString()!);

        Assert.NotEmpty(deployed);
        Assert.Equal(deployed.OrderBy(e => e.Key), run.OrderBy(e => e.Key));
    }

    private static async Task AssertServesTheEditorAsync(ServerProcess server)
    {
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        foreach (var (path, type, marker) in new[]
        {
            ("/", "text/html", "<html"),
            ("/d/x", "text/html", "<html"),
            ("/dist/collab-client.js", "text/javascript", "export"),
        })
        {
            var response = await http.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)response.StatusCode} {body}\n{server.Output}");
            Assert.StartsWith(type, response.Content.Headers.ContentType?.MediaType ?? "");
            Assert.Contains(marker, body);
        }
        // The pages load their scripts from /dist; each one they name must be served too.
        var page = await http.GetStringAsync("/d/x");
        foreach (var script in System.Text.RegularExpressions.Regex.Matches(page, "src=\"(/dist/[^\"]+)\"").Select(m => m.Groups[1].Value))
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(script)).StatusCode);
        }
    }

    /// <summary>Publishes the server as built for this test run (same configuration), without building again.</summary>
    private static Task PublishAsync(string output)
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/{Debug|Release}/net10.0
        return Tool.RunAsync("dotnet", Repo.Root,
            ["publish", "server/CollabServer/CollabServer.csproj", "-c", configuration, "--no-build", "-o", output, "-nologo", "-v:q", "-p:SkipEditorBuild=true"]);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
