using CollabServer.Tests.Infrastructure;
using Collab.Testing;

namespace CollabServer.Tests.Deploy;

/// <summary>
/// The Deploy example of docs/OPERATIONS.md, asked by another machine: a client in a network namespace of its
/// own (made here, joined to this one by a veth pair on link-local addresses) reaches the server
/// at the address it listens on. A server started with <c>--urls</c> alone answers such a client
/// 400 (its Host is not allowed) and then 403 (an open server answers only loopback clients); the
/// example's settings answer it.
/// </summary>
public sealed class DeployExampleTests : IDisposable
{
    private const string HostName = "collab.example.com";
    private const string Key = "a-signing-key-of-at-least-32-bytes-for-tests";
    private readonly string _namespace = $"collab-{Environment.ProcessId}-{Random.Shared.Next(1000)}";
    private readonly string _link = $"cv{Random.Shared.Next(100_000, 999_999)}";
    private readonly string _serverAddress;
    private readonly string _clientAddress;
    private readonly string _dataDir = TestHost.NewDataDir();
    private bool _made;

    public DeployExampleTests()
    {
        var subnet = Random.Shared.Next(1, 254);
        _serverAddress = $"169.254.{subnet}.1";
        _clientAddress = $"169.254.{subnet}.2";
    }

    [Fact]
    public async Task TheDeployExampleAnswersAClientOnAnotherMachine()
    {
        await MakeTheOtherMachineAsync();

        // Only a listening address, as the Deploy section warns against: the Host is refused.
        using (var bare = await StartAsync())
        {
            Assert.Equal("400", await RequestAsync(bare, "/api/docs/x"));
        }
        // The Host allowed, but no key: an open server answers only clients on its own machine.
        using (var open = await StartAsync($"--AllowedHosts={HostName}"))
        {
            Assert.Equal("403", await RequestAsync(open, "/api/docs/x"));
        }

        // The example: the names clients use, and a signing key. Without a token: 401; with one that
        // the server's own token command made from the same key: the document.
        using (var server = await StartAsync($"--AllowedHosts={HostName}", $"--Collab:Auth:SigningKey={Key}"))
        {
            Assert.Equal("401", await RequestAsync(server, "/api/docs/x"));
            var token = (await Tool.RunAsync("dotnet", _dataDir, [ServerProcess.ServerDll, "token", "--scope", "doc:*:edit", "--sub", "ada", $"--Collab:Auth:SigningKey={Key}"])).Trim();
            Assert.Equal("200", await RequestAsync(server, "/api/docs/x", token: token, put: """{"text":"from afar"}"""));
            Assert.Equal("200", await RequestAsync(server, "/api/docs/x", token: token));
            Assert.Contains("from afar", LastBody);
        }

        // Or, on a network where everyone may edit: anonymous access for every address.
        using (var anonymous = await StartAsync($"--AllowedHosts={HostName}", "--Collab:Auth:AllowAnonymous=true"))
        {
            Assert.Equal("200", await RequestAsync(anonymous, "/api/docs/x"));
        }
    }

    private Task<ServerProcess> StartAsync(params string[] settings)
    {
        var port = ServerProcess.FreePort();
        return ServerProcess.StartDllAsync(ServerProcess.ServerDll, _dataDir, port, waitReady: false,
            ["--urls", $"http://{_serverAddress}:{port}", $"--Collab:DataDir={_dataDir}", .. settings]);
    }

    /// <summary>The body of the last answer <see cref="RequestAsync"/> had.</summary>
    private string LastBody { get; set; } = "";

    /// <summary>curl from the other machine; returns the HTTP status. The first request waits for the server to listen.</summary>
    private async Task<string> RequestAsync(ServerProcess server, string path, string? token = null, string? put = null)
    {
        var url = $"http://{_serverAddress}:{server.Port}{path}";
        List<string> curl = ["netns", "exec", _namespace, "curl", "-s", "-w", "\n%{http_code}", "--retry", "60", "--retry-connrefused", "--retry-delay", "1", "-H", $"Host: {HostName}"];
        if (token is not null)
        {
            curl.AddRange(["-H", $"Authorization: Bearer {token}"]);
        }
        if (put is not null)
        {
            curl.AddRange(["-X", "PUT", "-H", "Content-Type: application/json", "--data", put]);
        }
        curl.Add(url);
        try
        {
            var output = await Tool.RunAsync("ip", "/", curl, TimeSpan.FromMinutes(2));
            var lines = output.Split('\n');
            LastBody = string.Join('\n', lines[..^1]);
            return lines[^1].Trim();
        }
        catch (Xunit.Sdk.XunitException e)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\nserver:\n{server.Output}");
        }
    }

    private async Task MakeTheOtherMachineAsync()
    {
        await Tool.RunAsync("ip", "/", ["netns", "add", _namespace]);
        _made = true;
        await Tool.RunAsync("ip", "/", ["link", "add", _link, "type", "veth", "peer", "name", "eth0", "netns", _namespace]);
        await Tool.RunAsync("ip", "/", ["addr", "add", $"{_serverAddress}/30", "dev", _link]);
        await Tool.RunAsync("ip", "/", ["link", "set", _link, "up"]);
        await Tool.RunAsync("ip", "/", ["netns", "exec", _namespace, "ip", "addr", "add", $"{_clientAddress}/30", "dev", "eth0"]);
        await Tool.RunAsync("ip", "/", ["netns", "exec", _namespace, "ip", "link", "set", "eth0", "up"]);
        await Tool.RunAsync("ip", "/", ["netns", "exec", _namespace, "ip", "link", "set", "lo", "up"]);
    }

    public void Dispose()
    {
        if (_made)
        {
            // Deleting the namespace deletes the veth pair with it.
            using var process = System.Diagnostics.Process.Start("ip", ["netns", "del", _namespace]);
            process.WaitForExit(30_000);
        }
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
