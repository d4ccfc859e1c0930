using System.Net.Http.Json;
using Collab.Messages;
using CollabServer.Documents;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;

namespace CollabServer.Tests.Durability;

public sealed class RestartTests
{
    [Fact]
    public async Task ARestartOnTheSameDataDirectoryKeepsTextVersionAndOpIds()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            var settings = new Dictionary<string, string?> { ["Collab:SnapshotInterval"] = "7" };
            await using (var first = new TestHost(dataDir, settings))
            {
                var c = await first.ConnectAsync();
                await c.JoinAsync("kept", "writer");
                for (var i = 0; i < 20; i++)
                {
                    await c.SubmitAsync("kept", i, [i % 10 + ""], i + 1);
                }
            }
            await using (var second = new TestHost(dataDir, settings))
            {
                // Listed from the file, before anything loads the document.
                var listed = (await second.Http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/docs")).EnumerateArray().Single();
                Assert.Equal(("kept", 20, 20), (listed.GetProperty("id").GetString(), listed.GetProperty("version").GetInt32(), listed.GetProperty("length").GetInt32()));
                Assert.Equal(0, second.GetService<DocumentRegistry>().ActiveCount);
                Assert.Equal((20, "98765432109876543210"), await second.GetDocAsync("kept"));
                var c = await second.ConnectAsync();
                var joined = await c.JoinAsync("kept", "writer", sinceVersion: 15);
                Assert.Equal([16, 17, 18, 19, 20], joined.Ops!.Select(o => o.Version));
                // The same (clientId, opId) from before the restart is still recognised.
                Assert.Equal(3, (await c.SubmitAsync("kept", 2, ["dup"], 3)).Version);
                Assert.Equal(21, (await c.SubmitAsync("kept", 20, ["new"], 21)).Version);
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task ALargeTextIsSnapshottedAChunkPerCommitAndLoadsFromIt()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            // 70 000 units: two chunks of 64 Ki; a snapshot is due every max(1, 70 000 / 1024) = 68 ops.
            var big = string.Concat(Enumerable.Range(0, 7_000).Select(i => $"line {i:D4}\n"));
            var settings = new Dictionary<string, string?> { ["Collab:SnapshotInterval"] = "1" };
            await using (var host = new TestHost(dataDir, settings))
            {
                await host.Http.PutAsync("/api/docs/big", System.Net.Http.Json.JsonContent.Create(new { text = big }));
                var c = await host.ConnectAsync();
                await c.JoinAsync("big", "w");
                for (var i = 1; i <= 70; i++)
                {
                    await c.SubmitAsync("big", i, ["x"], i);
                }
                // The snapshot taken at version 68 went out in two commits, one chunk each.
                using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dataDir, "docs", "big.db")};Mode=ReadOnly;Pooling=False");
                db.Open();
                using var query = db.CreateCommand();
                query.CommandText = "SELECT version, chunks, length FROM snapshots ORDER BY version";
                using var reader = query.ExecuteReader();
                var rows = new List<(int, int, int)>();
                while (reader.Read())
                {
                    rows.Add((reader.GetInt32(0), reader.GetInt32(1), reader.GetInt32(2)));
                }
                Assert.Contains((68, 2, big.Length + 67), rows);
            }
            await using (var again = new TestHost(dataDir, settings))
            {
                Assert.Equal((71, new string('x', 70) + big), await again.GetDocAsync("big"));
            }
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task AnIdleDocumentShutsDownClosesItsDatabaseAndLoadsAgain()
    {
        await using var host = new TestHost(settings: new Dictionary<string, string?> { ["Collab:IdleTimeout"] = "00:00:00.200" });
        try
        {
            var registry = host.GetService<DocumentRegistry>();
            var c = await host.ConnectAsync();
            await c.JoinAsync("idle", "c");
            await c.SubmitAsync("idle", 0, ["still here"], 1);
            await Task.Delay(600);
            Assert.Equal(1, registry.ActiveCount); // a member keeps it alive
            await c.InvokeAsync("Leave", "idle");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (registry.ActiveCount > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
            Assert.Equal(0, registry.ActiveCount);
            // Closed means the files can be deleted; the shutdown snapshot made the next load a read.
            Assert.Equal((1, "still here"), await host.GetDocAsync("idle"));
        }
        finally
        {
            host.DeleteData();
        }
    }

    [Fact]
    public async Task ADocumentWithMembersClosesItsDatabaseWhenNotWrittenAndReopensItForTheNextWrite()
    {
        // Long enough that the WAL is surely still there when the test looks right after the submit.
        await using var host = new TestHost(settings: new Dictionary<string, string?> { ["Collab:DatabaseIdleTimeout"] = "00:00:03" });
        try
        {
            var c = await host.ConnectAsync();
            var ops = c.Collect<OpMessage>("Op");
            await c.JoinAsync("quiet", "c");
            await c.SubmitAsync("quiet", 0, ["one "], 1);
            // SQLite removes the WAL file when the last connection to the database closes.
            var wal = Path.Combine(host.DataDir, "docs", "quiet.db-wal");
            Assert.True(File.Exists(wal));
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (File.Exists(wal) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
            Assert.False(File.Exists(wal), "the database stayed open");
            Assert.Equal(1, host.GetService<DocumentRegistry>().ActiveCount);

            Assert.Equal(2, (await c.SubmitAsync("quiet", 1, [4, "two"], 2)).Version);
            Assert.Equal(1, (await c.SubmitAsync("quiet", 0, ["one "], 1)).Version); // dedupe still sees the log
            Assert.Equal((2, "one two"), await host.GetDocAsync("quiet"));
        }
        finally
        {
            host.DeleteData();
        }
    }

    [Fact]
    public async Task ACorruptDatabaseIsQuarantinedUnchangedListedDeletableAndTheServerKeepsServing()
    {
        await using var host = new TestHost();
        try
        {
            var path = Path.Combine(host.DataDir, "docs", "broken.db");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var garbage = new byte[8192];
            new Random(5).NextBytes(garbage);
            await File.WriteAllBytesAsync(path, garbage);

            var c = await host.ConnectAsync();
            var first = await Wire.AssertErrorAsync(Collab.ErrorCodes.Unavailable, () => c.JoinAsync("broken", "c"));
            Assert.Contains("quarantined", first);
            // Set aside byte for byte (renamed, not changed), and it stays unavailable.
            Assert.False(File.Exists(path));
            Assert.Equal(garbage, await File.ReadAllBytesAsync(path + ".quarantined"));
            await Wire.AssertErrorAsync(Collab.ErrorCodes.Unavailable, () => c.JoinAsync("broken", "c"));
            Assert.Equal(0, host.GetService<DocumentRegistry>().ActiveCount);
            Assert.Equal(0, (await c.JoinAsync("healthy", "c")).Version);

            var listed = await host.Http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/docs");
            var entry = listed.EnumerateArray().Single(d => d.GetProperty("id").GetString() == "broken");
            Assert.Equal("quarantined", entry.GetProperty("state").GetString());
            var rest = await host.Http.GetAsync("/api/docs/broken");
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, rest.StatusCode);

            Assert.Equal(System.Net.HttpStatusCode.NoContent, (await host.Http.DeleteAsync("/api/docs/broken")).StatusCode);
            Assert.False(File.Exists(path + ".quarantined"));
            Assert.Equal(System.Net.HttpStatusCode.NotFound, (await host.Http.GetAsync("/api/docs/broken")).StatusCode);
            Assert.Equal(0, (await c.JoinAsync("broken", "c")).Version); // the id is free again
        }
        finally
        {
            host.DeleteData();
        }
    }
}
