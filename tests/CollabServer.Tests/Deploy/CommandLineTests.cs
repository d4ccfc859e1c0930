using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Collab.Testing;
using Microsoft.IdentityModel.Tokens;

namespace CollabServer.Tests.Deploy;

/// <summary>
/// The server's command line as a new user meets it (issue 22): help prints usage and starts
/// nothing, a mistyped command says so, <c>key</c> and <c>token</c> print exactly what a shell's
/// <c>$(...)</c> should capture, and the commands the README documents do that through
/// <c>dotnet run</c> too. Each run is the server's DLL in its own process, in an empty folder, with
/// ASPNETCORE_URLS on a free loopback port, so that a run which wrongly starts the server listens
/// there and not on :5000.
/// </summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("collab-cli-").FullName;

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public async Task HelpPrintsTheUsageAndExitsWithoutStartingTheServer(string help)
    {
        // Settings beside help do not make it a server: it still only prints.
        var port = ServerProcess.FreePort();
        var run = await RunAsync([help, "--urls", $"http://127.0.0.1:{port}", $"--Collab:DataDir={Path.Combine(_work, "data")}"]);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.StartsWith("CollabServer", run.Stdout, StringComparison.Ordinal);
        foreach (var listed in new[] { "usage: CollabServer", "token --scope", "key", "rebuild --from", "--urls", "--Collab:DataDir", "--Collab:Auth:SigningKey" })
        {
            Assert.Contains(listed, run.Stdout, StringComparison.Ordinal);
        }
        Assert.Equal("", run.Stderr);
        Assert.DoesNotContain("Now listening", run.Stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_work, "data")), "help made the data directory");
        Assert.False(IsListening(port), $"something listens on {port}");
    }

    [Theory]
    [InlineData("token", "usage: CollabServer token --scope SCOPE", "--lifetime")]
    [InlineData("rebuild", "usage: CollabServer rebuild --from BACKUP_DIR --to DATA_DIR", "--from-postgres")]
    [InlineData("key", "usage: CollabServer key", "base64url")]
    public async Task ACommandsHelpPrintsItsUsageAndExitsZero(string command, string usage, string detail)
    {
        foreach (var help in new[] { "--help", "-h" })
        {
            var run = await RunAsync([command, help]);
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.StartsWith(usage, run.Stdout, StringComparison.Ordinal);
            Assert.Contains(detail, run.Stdout, StringComparison.Ordinal);
            Assert.Equal("", run.Stderr);
        }
        var viaHelp = await RunAsync(["help", command]);
        Assert.True(viaHelp.ExitCode == 0 && viaHelp.Stdout.StartsWith(usage, StringComparison.Ordinal), viaHelp.ToString());
    }

    [Fact]
    public async Task AnUnknownCommandSaysSoPrintsTheUsageOnStandardErrorAndExitsOne()
    {
        var run = await RunAsync(["tokn", "--scope", "doc:*:edit"]);
        Assert.True(run.ExitCode == 1, run.ToString());
        Assert.Equal("", run.Stdout);
        Assert.Contains("unknown command 'tokn'", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("usage: CollabServer", run.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KeyPrintsOneNewKeyThatTheServerAndTheTokenCommandAccept()
    {
        var first = await RunAsync(["key"]);
        var second = await RunAsync(["key"]);
        var key = OneLine(first);
        Assert.NotEqual(key, OneLine(second));
        Assert.Matches("^[A-Za-z0-9_-]+$", key);
        Assert.True(Base64UrlEncoder.DecodeBytes(key).Length >= 32, key);
        Assert.True(Encoding.UTF8.GetByteCount(key) >= 32, key); // the server's own check: the key's bytes

        var minted = await RunAsync(["token", "--scope", "doc:keyed:edit", "--sub", "ada", $"--Collab:Auth:SigningKey={key}"]);
        var token = OneLine(minted);
        using var server = await ServerProcess.StartAsync(Directory.CreateDirectory(Path.Combine(_work, "data")).FullName, $"--Collab:Auth:SigningKey={key}");
        using var http = new HttpClient { BaseAddress = server.BaseUrl };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/docs/keyed")).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Put, "/api/docs/keyed") { Content = new StringContent("""{"text":"signed"}""", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var response = await http.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}\n{server.Output}");
    }

    [Fact]
    public async Task TokenPrintsTheTokenAloneAndItsMistakesOnStandardError()
    {
        const string key = "a-signing-key-of-at-least-32-bytes-long";
        var run = await RunAsync(["token", "--scope", "doc:*:edit", "--name", "Bob", $"--Collab:Auth:SigningKey={key}"]);
        Assert.Equal("Bob", ClaimsOf(OneLine(run)).GetProperty("name").GetString());

        foreach (var wrong in new[] { new[] { "token", "--scope", "doc:*:edit" }, ["token", $"--Collab:Auth:SigningKey={key}"], ["token", "--scope", "doc:*:edit", "--lifetime", "soon", $"--Collab:Auth:SigningKey={key}"] })
        {
            var refused = await RunAsync(wrong);
            Assert.True(refused.ExitCode == 2, refused.ToString());
            Assert.Equal("", refused.Stdout);
            Assert.NotEqual("", refused.Stderr);
            Assert.DoesNotContain("   at ", refused.Stderr, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// The README's access-control quick start, run as written (with <c>--no-build</c> and the tests'
    /// configuration added, as the tests' build is the one there is): <c>KEY=$(dotnet run ... key)</c>
    /// and <c>TOKEN=$(dotnet run ... token ...)</c> each capture exactly one line, the key and the token.
    /// </summary>
    [Fact]
    public async Task TheReadmesKeyAndTokenCommandsCaptureExactlyTheKeyAndTheToken()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var keyCommand = Assert.Single(DocumentedCapture("KEY").Matches(readme)).Groups["command"].Value;
        var tokenCommand = Assert.Single(DocumentedCapture("TOKEN").Matches(readme)).Groups["command"].Value;

        var key = OneLine(await DotnetRunAsync(keyCommand, []));
        Assert.True(Encoding.UTF8.GetByteCount(key) >= 32, key);
        var token = OneLine(await DotnetRunAsync(tokenCommand, new Dictionary<string, string> { ["$KEY"] = key }));
        var claims = ClaimsOf(token);
        Assert.True(claims.TryGetProperty("scope", out _), token);
    }

    /// <summary>A line <c>NAME=$(dotnet run ...)</c> of a shell block.</summary>
    private static Regex DocumentedCapture(string name) => new($@"^{name}=\$\((?<command>dotnet run [^\n]*)\)\s*(#.*)?$", RegexOptions.Multiline);

    /// <summary>Runs a documented <c>dotnet run</c> command line from the repository's root, without building.</summary>
    private async Task<Tool.Run> DotnetRunAsync(string commandLine, Dictionary<string, string> variables)
    {
        var words = ShellWords(commandLine).Select(w => variables.Aggregate(w, (text, v) => text.Replace(v.Key, v.Value, StringComparison.Ordinal))).ToList();
        Assert.True(words is ["dotnet", "run", ..], commandLine);
        var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // bin/{Debug|Release}/net10.0
        words.InsertRange(2, ["--no-build", "-c", configuration]);
        var run = await RunAsync("dotnet", Repo.Root, words.Skip(1));
        Assert.True(run.ExitCode == 0, $"{commandLine}\n{run}");
        return run;
    }

    /// <summary>Splits a command line as sh does for words with single or double quotes (no other expansion).</summary>
    private static IEnumerable<string> ShellWords(string line)
    {
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in line)
        {
            if (quote is not null)
            {
                if (c == quote)
                {
                    quote = null;
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is '"' or '\'')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    yield return word.ToString();
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }
        if (inWord)
        {
            yield return word.ToString();
        }
    }

    /// <summary>What <c>$(...)</c> would capture must be one line and nothing else: its only line.</summary>
    private static string OneLine(Tool.Run run)
    {
        Assert.True(run.ExitCode == 0, run.ToString());
        var lines = run.Stdout.Split('\n');
        Assert.True(lines is [var only, ""] && only.Length > 0 && only.Trim() == only, $"expected one line on standard output:\n{run}");
        return lines[0];
    }

    private static JsonElement ClaimsOf(string token)
    {
        var parts = token.Split('.');
        Assert.True(parts.Length == 3, token);
        return JsonDocument.Parse(Base64UrlEncoder.Decode(parts[1])).RootElement.Clone();
    }

    private static bool IsListening(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private Task<Tool.Run> RunAsync(string[] args) => RunAsync("dotnet", _work, [ServerProcess.ServerDll, .. args]);

    /// <summary>
    /// Runs to its end: a command must exit by itself. If it is still running after a generous
    /// while (a server it should not have started), it is killed by its PID and the test fails.
    /// Any server it starts by mistake listens on a free loopback port, never :5000.
    /// </summary>
    private static Task<Tool.Run> RunAsync(string file, string workingDirectory, IEnumerable<string> args) =>
        Tool.ExecAsync(
            file,
            workingDirectory,
            args,
            TimeSpan.FromMinutes(2),
            new Dictionary<string, string?>
            {
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{ServerProcess.FreePort()}",
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
            },
            removePrefixes: ["Collab__"]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
