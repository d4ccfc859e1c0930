using Collab.Client;
using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>
/// Issue 21, row 9, from the client's side: a server that comes back from an older copy of its
/// data has lost edits a client saw acknowledged. The client must not throw, must not delete
/// that text, and must say what happened; afterwards client and server agree and still edit.
/// </summary>
public sealed class DivergedServerTests
{
    [Fact]
    public async Task AClientResumingOnAServerThatLostItsAcknowledgedEditsReportsItAndKeepsTheirText()
    {
        var root = Directory.CreateTempSubdirectory("collab-diverged-").FullName;
        var dataDir = Path.Combine(root, "data");
        var older = Path.Combine(root, "older");
        var port = ServerProcess.FreePort();
        Task<ServerProcess> StartAsync() => ServerProcess.StartDllAsync(ServerProcess.ServerDll, root, port, waitReady: true, $"--Collab:DataDir={dataDir}");
        ServerProcess? server = null;
        try
        {
            server = await StartAsync();
            await using var client = new CollabClient(new CollabClientOptions
            {
                ServerUrl = server.BaseUrl,
                MinReconnectDelay = TimeSpan.FromMilliseconds(100),
                MaxReconnectDelay = TimeSpan.FromMilliseconds(500),
            });
            var document = await client.OpenAsync("kept");
            var errors = new List<string>();
            document.Error += (_, e) => { lock (errors) { errors.Add(e.Error.Code); } };
            document.Insert(0, "one");
            await document.WhenSynchronizedAsync();

            // The copy an operator might later restore by mistake: version 1, "one".
            await StopAsync(server);
            CopyDirectory(dataDir, older);
            server = await StartAsync();
            await Eventually.TrueAsync(() => Task.FromResult(document.ConnectionState == ConnectionState.Connected), "the client is back");
            document.Insert(3, " two");
            await document.WhenSynchronizedAsync();
            document.Insert(7, " three");
            await document.WhenSynchronizedAsync();
            Assert.Equal(3, document.Version);

            // The server comes back from the older copy: it has lost " two three".
            await StopAsync(server);
            Directory.Delete(dataDir, recursive: true);
            CopyDirectory(older, dataDir);
            server = await StartAsync();

            await Eventually.TrueAsync(() => { lock (errors) { return Task.FromResult(errors.Contains("diverged")); } }, "the client reports that the server lost its edits");
            await document.WhenSynchronizedAsync();
            using var http = new HttpClient { BaseAddress = server.BaseUrl };
            await Eventually.TrueAsync(async () => (await http.GetStringAsync("/api/docs/kept")).Contains("one two three", StringComparison.Ordinal), "the lost text is on the server again");
            Assert.Equal("one two three", document.Text);

            // And editing goes on from there.
            document.Insert(0, ">");
            await document.WhenSynchronizedAsync();
            await Eventually.TrueAsync(async () => (await http.GetStringAsync("/api/docs/kept")).Contains(">one two three", StringComparison.Ordinal), "a later edit reaches the server");
        }
        finally
        {
            server?.Dispose();
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task StopAsync(ServerProcess server)
    {
        server.Terminate();
        Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(60)), "the server stops on SIGTERM");
        server.Dispose();
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
        }
    }
}
