using System.IO.Compression;
using System.Net.Http.Json;
using System.Text.Json;
using System.Xml.Linq;
using CollabServer.Tests.Infrastructure;
using Collab.Testing;

namespace CollabServer.Tests.Deploy;

/// <summary>
/// The client libraries as people install them: packed (<c>dotnet pack</c>, <c>npm pack</c>), then
/// installed into new projects in a temporary folder outside the repository (a local NuGet source,
/// the npm tarballs) and used against a real server process. The programs are in <c>Consumers/</c>.
/// </summary>
public sealed class PackagesTests : IDisposable
{
    private static readonly string s_repo = Repo.Root;
    private static readonly string s_consumers = Path.Combine(s_repo, "tests", "CollabServer.Tests", "Deploy", "Consumers");
    private readonly string _root = Directory.CreateTempSubdirectory("collab-packages-").FullName;
    private readonly List<string> _restored = [];

    [Fact]
    public async Task TheNuGetPackagesInstallIntoANewProjectAndTwoClientsConverge()
    {
        // A version of its own, so that no package restored before (same id and version, other
        // bits) can stand in for the one packed now.
        var version = $"{RepoVersion()}-test.{Guid.NewGuid():N}"[..30];
        var feed = Path.Combine(_root, "feed");
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/{Debug|Release}/net10.0
        foreach (var project in new[] { "client/CollabProtocol/CollabProtocol.csproj", "client/CollabClient/CollabClient.csproj" })
        {
            await Tool.RunAsync("dotnet", s_repo, ["pack", project, "-c", configuration, "-o", feed, "-nologo", "-v:q", $"-p:PackageVersion={version}"]);
        }
        foreach (var id in new[] { "Collab.Protocol", "Collab.Client" })
        {
            AssertPackageIsComplete(Path.Combine(feed, $"{id}.{version}.nupkg"), id, version);
            Assert.True(File.Exists(Path.Combine(feed, $"{id}.{version}.snupkg")), $"{id} has no symbols package");
            _restored.Add(Path.Combine(GlobalPackagesFolder(), id.ToLowerInvariant(), version));
        }

        // A console project of its own, the local feed added to the machine's package sources.
        var app = Path.Combine(_root, "app");
        await Tool.RunAsync("dotnet", _root, ["new", "console", "-o", app, "--no-restore"]);
        File.WriteAllText(Path.Combine(app, "nuget.config"),
            $"""<configuration><packageSources><add key="local" value="{feed}" /></packageSources></configuration>""");
        await Tool.RunAsync("dotnet", app, ["add", "package", "Collab.Client", "--version", version]);
        File.Copy(Path.Combine(s_consumers, "Program.cs"), Path.Combine(app, "Program.cs"), overwrite: true);

        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir);
            var output = await Tool.RunAsync("dotnet", app, ["run", "--", server.BaseUrl.ToString(), "from-nuget"]);
            using var result = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
            var a = result.RootElement.GetProperty("a").GetString();
            Assert.Equal(a, result.RootElement.GetProperty("b").GetString());
            Assert.Contains(a, new[] { "Bob: from Ada", "from AdaBob: " });
            Assert.Equal(2, result.RootElement.GetProperty("version").GetInt32());
            Assert.All(result.RootElement.GetProperty("protocol").EnumerateArray(), text => Assert.Equal("hello,", text.GetString()));
            Assert.Equal(a, (await GetDocAsync(server, "from-nuget")).GetProperty("text").GetString());
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task TheNpmTarballsInstallIntoNewProjectsWhereTheClientSyncsAndAPageWithTheBindingBuilds()
    {
        var tarballs = Directory.CreateDirectory(Path.Combine(_root, "tarballs")).FullName;
        await Tool.RunAsync("npm", s_repo, ["pack", "--workspaces", "--pack-destination", tarballs, "--silent"]);
        var client = Path.Combine(tarballs, $"collabserver-client-{RepoVersion()}.tgz");
        var binding = Path.Combine(tarballs, $"collabserver-codemirror-{RepoVersion()}.tgz");
        Assert.True(File.Exists(client) && File.Exists(binding), $"npm pack made: {string.Join(", ", Directory.GetFiles(tarballs).Select(Path.GetFileName))}");

        var web = Directory.CreateDirectory(Path.Combine(_root, "web")).FullName;
        File.WriteAllText(Path.Combine(web, "package.json"), """{ "name": "consumer", "private": true, "type": "module" }""");
        foreach (var file in new[] { "node-client.mjs", "page.ts", "bundle.mjs", "tsconfig.json" })
        {
            File.Copy(Path.Combine(s_consumers, file), Path.Combine(web, file));
        }
        // The peer dependencies (@codemirror/state, @codemirror/view) come with them, as npm installs peers.
        await Tool.RunAsync("npm", web, ["install", "--no-audit", "--no-fund", "--prefer-offline", client, binding,
            $"esbuild@{RepoPackageVersion("esbuild")}", $"typescript@{RepoPackageVersion("typescript")}"]);

        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir);
            var output = await Tool.RunAsync("node", web, ["node-client.mjs", server.BaseUrl.ToString(), "from-npm"]);
            using var result = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
            Assert.Equal("from Ada, and Bob", result.RootElement.GetProperty("a").GetString());
            Assert.Equal("from Ada, and Bob", result.RootElement.GetProperty("b").GetString());
            Assert.Equal(2, result.RootElement.GetProperty("version").GetInt32());
            Assert.Equal("from Ada, and Bob", (await GetDocAsync(server, "from-npm")).GetProperty("text").GetString());
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }

        // The page: its types check against the packages' declarations, and its bundle holds one
        // copy of each CodeMirror package and the carets' stylesheet.
        await Tool.RunAsync(Path.Combine(web, "node_modules", ".bin", "tsc"), web, ["-p", "."]);
        using var bundle = JsonDocument.Parse((await Tool.RunAsync("node", web, ["bundle.mjs"])).Trim());
        Assert.Single(bundle.RootElement.GetProperty("state").EnumerateArray());
        Assert.Single(bundle.RootElement.GetProperty("view").EnumerateArray());
        Assert.True(bundle.RootElement.GetProperty("caretCss").GetBoolean(), "the bundle has no caret styles");
    }

    [Fact]
    public void TheNpmPackagesCarryTheVersionOfTheNuGetPackages()
    {
        var version = RepoVersion();
        Assert.Matches(@"^\d+\.\d+\.\d+", version);
        foreach (var package in new[] { "client/ts/package.json", "client/codemirror/package.json" })
        {
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(s_repo, package)));
            Assert.Equal(version, json.RootElement.GetProperty("version").GetString());
        }
        using var binding = JsonDocument.Parse(File.ReadAllText(Path.Combine(s_repo, "client/codemirror/package.json")));
        Assert.Equal(version, binding.RootElement.GetProperty("peerDependencies").GetProperty("@collabserver/client").GetString());
    }

    /// <summary>The one version of the client packages, set in client/Directory.Build.props.</summary>
    private static string RepoVersion() =>
        XDocument.Load(Path.Combine(s_repo, "client", "Directory.Build.props")).Descendants("Version").Single().Value;

    private static string RepoPackageVersion(string name)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(s_repo, "node_modules", name, "package.json")));
        return json.RootElement.GetProperty("version").GetString()!;
    }

    private static void AssertPackageIsComplete(string nupkg, string id, string version)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var files = zip.Entries.Select(e => e.FullName).ToHashSet();
        foreach (var expected in new[] { "README.md", $"lib/net10.0/{id}.dll", $"lib/net10.0/{id}.xml" })
        {
            Assert.True(files.Contains(expected), $"{id} lacks {expected}: {string.Join(", ", files)}");
        }
        using var stream = zip.GetEntry($"{id}.nuspec")!.Open();
        var nuspec = XDocument.Load(stream);
        string? Field(string name) => nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
        Assert.Equal(version, Field("version"));
        Assert.Equal("MIT", Field("license"));
        Assert.Equal("README.md", Field("readme"));
        Assert.False(string.IsNullOrWhiteSpace(Field("description")));
        var repository = nuspec.Descendants().Single(e => e.Name.LocalName == "repository");
        Assert.Equal("git", repository.Attribute("type")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
    }

    private static async Task<JsonElement> GetDocAsync(ServerProcess server, string id)
    {
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        return await http.GetFromJsonAsync<JsonElement>($"/api/docs/{id}");
    }

    private static string GlobalPackagesFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    public void Dispose()
    {
        foreach (var directory in _restored.Append(_root))
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
            catch (IOException)
            {
            }
        }
    }
}
