using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Collab.Messages;
using CollabServer.Storage;
using CollabServer.Backup;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Collab.Testing;

namespace CollabServer.Tests.Backup;

/// <summary>Continuous backup, rebuild, and the online copy.</summary>
public sealed class BackupTests
{
    private static readonly string[] s_docs = ["backup-a", "backup-b"];
    private static readonly TimeSpan s_interval = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long before the loss an op must have been acknowledged to count as due in the backup:
    /// several intervals, since a busy machine may delay a shipment past one interval (it never
    /// skips one). The backup's lag under load is a figure for docs/PERFORMANCE.md, not for a test.
    /// </summary>
    private static readonly TimeSpan s_due = s_interval * 5;

    [Fact]
    public async Task DeletingTheDataDirectoryLosesNoOpAcknowledgedOneIntervalBefore()
    {
        var dataDir = TestHost.NewDataDir();
        var backupDir = TestHost.NewDataDir();
        var rebuiltDir = Path.Combine(TestHost.NewDataDir(), "rebuilt");
        var acked = new ConcurrentDictionary<(string Doc, string ClientId, long OpId), (int Version, long At)>();
        long deletedAt;
        try
        {
            using (var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Normal", $"--Collab:Backup:Dir={backupDir}", $"--Collab:Backup:Interval={s_interval}"))
            {
                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, 4).Select(w => WriteAsync(server.BaseUrl, s_docs[w % 2], $"writer-{w}", acked, stop.Token)).ToList();
                // Write until some ops were acknowledged long enough ago to be due in the backup.
                var deadline = Stopwatch.StartNew();
                while (acked.Values.Count(a => Stopwatch.GetElapsedTime(a.At) > s_due) < 200 && deadline.Elapsed < TimeSpan.FromSeconds(120))
                {
                    await Task.Delay(20);
                }
                // The data directory is lost while the writers go on, then the machine with it.
                deletedAt = Stopwatch.GetTimestamp();
                Directory.Delete(dataDir, recursive: true);
                server.Kill();
                stop.Cancel();
                await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));
            }
            var due = acked.Where(a => a.Value.At < deletedAt && Stopwatch.GetElapsedTime(a.Value.At, deletedAt) > s_due).ToList();
            Assert.True(due.Count >= 200, $"only {due.Count} ops were acknowledged more than {s_due} before the deletion");

            var rebuild = await RunServerDllAsync("rebuild", "--from", backupDir, "--to", rebuiltDir);
            Assert.True(rebuild.ExitCode == 0, rebuild.Output);

            using var restarted = await ServerProcess.StartAsync(rebuiltDir);
            using var http = new HttpClient { BaseAddress = restarted.BaseUrl };
            foreach (var doc in s_docs)
            {
                var ops = await ReadAllOpsAsync(http, doc);
                Assert.Equal(Enumerable.Range(1, ops.Count), ops.Select(o => o.Version));
                var byId = ops.GroupBy(o => (o.ClientId, o.OpId)).ToDictionary(g => g.Key, g => g.ToList());
                Assert.All(byId, g => Assert.Single(g.Value));
                foreach (var ((_, clientId, opId), (version, _)) in due.Where(d => d.Key.Doc == doc))
                {
                    Assert.True(byId.TryGetValue((clientId, opId), out var found), $"{doc}: op {clientId}/{opId} (version {version}), acknowledged more than {s_due} before the deletion, is missing");
                    Assert.Equal(version, found[0].Version);
                }
                // The document loads: its text is every op applied.
                var text = (await http.GetFromJsonAsync<JsonElement>($"/api/docs/{doc}")).GetProperty("text").GetString()!;
                foreach (var ((_, clientId, opId), _) in due.Where(d => d.Key.Doc == doc))
                {
                    Assert.Contains($"<{clientId}:{opId}>", text, StringComparison.Ordinal);
                }
            }
        }
        finally
        {
            Delete(dataDir, backupDir, Path.GetDirectoryName(rebuiltDir)!);
        }
    }

    [Fact]
    public void BatchFilesKeepEveryColumnByteForByte()
    {
        var dir = TestHost.NewDataDir();
        try
        {
            // An authenticated author is stored as subject U+001F clientId; strings are any UTF-8.
            OpRow[] rows = [new(7, "alice\u001fclient-1", long.MaxValue, 1_700_000_000_123, "[3,\"h\u00e9\ud83d\ude00\",-2]"), new(8, "", -1, 0, "[]")];
            var file = BackupFormat.WriteDurably(Path.Combine(dir, "docs", "doc"), rows);
            Assert.Equal("0000000007-0000000008.ops", Path.GetFileName(file));
            Assert.Equal(rows, BackupFormat.Read(file, 7, 8));
            var error = Assert.Throws<InvalidDataException>(() => BackupFormat.Read(file, 7, 9));
            Assert.Contains(file, error.Message, StringComparison.Ordinal);
        }
        finally
        {
            Delete(dir);
        }
    }

    [Fact]
    public async Task RebuildFailsOnAFlippedByteNamingTheFile()
    {
        var backupDir = TestHost.NewDataDir();
        var target = Path.Combine(TestHost.NewDataDir(), "rebuilt");
        var host = new TestHost(settings: new Dictionary<string, string?> { ["Collab:Backup:Dir"] = backupDir, ["Collab:Backup:Interval"] = "00:00:00.100" });
        try
        {
            var c = await host.ConnectAsync();
            var version = (await c.JoinAsync("flip", "f")).Version;
            for (var i = 0; i < 20; i++)
            {
                version = (await c.SubmitAsync("flip", version, [$"op {i} "], i + 1)).Version;
            }
            await host.DisposeAsync(); // stopping ships what is pending
            var file = BackupFormat.ListBatches(BackupFormat.DocDir(backupDir, "flip")).Last().Path;
            var bytes = await File.ReadAllBytesAsync(file);
            bytes[^3] ^= 0x20;
            await File.WriteAllBytesAsync(file, bytes);

            var rebuild = await RunServerDllAsync("rebuild", "--from", backupDir, "--to", target);
            Assert.NotEqual(0, rebuild.ExitCode);
            Assert.Contains(file, rebuild.Output, StringComparison.Ordinal);
            Assert.Contains("checksum mismatch", rebuild.Output, StringComparison.Ordinal);
            Assert.False(Directory.Exists(Path.Combine(target, "docs")), "nothing is written from a damaged backup");

            // A target that is not empty is refused.
            bytes[^3] ^= 0x20;
            await File.WriteAllBytesAsync(file, bytes);
            Directory.CreateDirectory(target);
            await File.WriteAllTextAsync(Path.Combine(target, "something"), "x");
            var refused = await RunServerDllAsync("rebuild", "--from", backupDir, "--to", target);
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("not empty", refused.Output, StringComparison.Ordinal);
        }
        finally
        {
            await host.DisposeAsync(); // again, if a failure came first: nothing may write while the folders go
            host.DeleteData();
            Delete(backupDir, Path.GetDirectoryName(target)!);
        }
    }

    [Fact]
    public async Task ShippingResumesWhereTheBackupEndsAcrossRestartsWithoutGapsOrDuplicates()
    {
        var backupDir = TestHost.NewDataDir();
        var dataDir = TestHost.NewDataDir();
        var settings = new Dictionary<string, string?> { ["Collab:Backup:Dir"] = backupDir, ["Collab:Backup:Interval"] = "01:00:00" };
        try
        {
            // Written before backup was turned on: the first start with backup ships it from the database.
            await WriteOpsAsync(new TestHost(dataDir), 0, 5);
            await WriteOpsAsync(new TestHost(dataDir, settings), 5, 3);
            await WriteOpsAsync(new TestHost(dataDir, settings), 8, 4);
            var versions = BackupFormat.ListBatches(BackupFormat.DocDir(backupDir, "resume"))
                .SelectMany(b => BackupFormat.Read(b.Path, b.First, b.Last))
                .Select(r => r.Version);
            Assert.Equal(Enumerable.Range(1, 12), versions);
        }
        finally
        {
            Delete(backupDir, dataDir);
        }

        // Stopped also when an assertion fails: a server left running would go on writing in the
        // folders the finally above deletes, and its "Directory not empty" would hide the failure.
        static async Task WriteOpsAsync(TestHost host, int from, int count)
        {
            try
            {
                var c = await host.ConnectAsync();
                var version = (await c.JoinAsync("resume", "r")).Version;
                Assert.Equal(from, version);
                for (var i = 0; i < count; i++)
                {
                    version = (await c.SubmitAsync("resume", version, [$"{from + i} "], from + i + 1)).Version;
                }
            }
            finally
            {
                await host.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task OnlineBackupCopiesEveryDocumentIntact()
    {
        var host = new TestHost();
        try
        {
            var c = await host.ConnectAsync();
            var texts = new Dictionary<string, string>();
            foreach (var doc in s_docs)
            {
                var version = (await c.JoinAsync(doc, "o")).Version;
                for (var i = 0; i < 30; i++)
                {
                    version = (await c.SubmitAsync(doc, version, [$"{doc} {i}\n"], i + 1)).Version;
                }
                texts[doc] = (await host.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{doc}")).GetProperty("text").GetString()!;
            }

            var response = await host.Http.PostAsJsonAsync("/api/admin/backup", new { name = "nightly" });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal("nightly", body.GetProperty("name").GetString());
            Assert.Equal(2, body.GetProperty("documents").GetInt32());
            Assert.True(body.GetProperty("bytes").GetInt64() > 0);
            Assert.Equal(HttpStatusCode.Conflict, (await host.Http.PostAsJsonAsync("/api/admin/backup", new { name = "nightly" })).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await host.Http.PostAsJsonAsync("/api/admin/backup", new { name = "../up" })).StatusCode);
            var lone = await host.Http.PostAsync("/api/admin/backup", new StringContent("{\"name\":\"a\\ud83d\"}", System.Text.Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, lone.StatusCode);

            var copy = Path.Combine(host.DataDir, "backups", "nightly");
            foreach (var doc in s_docs)
            {
                using var db = new SqliteConnection($"Data Source={Path.Combine(copy, "docs", doc + ".db")};Mode=ReadOnly;Pooling=False");
                db.Open();
                using var check = db.CreateCommand();
                check.CommandText = "PRAGMA integrity_check";
                Assert.Equal("ok", check.ExecuteScalar());
            }
            await using var fromCopy = new TestHost(copy);
            foreach (var doc in s_docs)
            {
                var loaded = await fromCopy.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{doc}");
                Assert.Equal(texts[doc], loaded.GetProperty("text").GetString());
                Assert.Equal(30, loaded.GetProperty("version").GetInt32());
            }
        }
        finally
        {
            await host.DisposeAsync();
            host.DeleteData();
        }
    }

    [Fact]
    public async Task BackupLagIsInTheMetrics()
    {
        var backupDir = TestHost.NewDataDir();
        var host = new TestHost(settings: new Dictionary<string, string?> { ["Collab:Backup:Dir"] = backupDir, ["Collab:Backup:Interval"] = "01:00:00" });
        try
        {
            var c = await host.ConnectAsync();
            await c.JoinAsync("lagging", "l");
            await c.SubmitAsync("lagging", 0, ["not shipped for an hour"], 1);
            var text = await host.Http.GetStringAsync("/metrics");
            Assert.Matches(@"(?m)^collab_backup_lag_seconds\{[^}]*\} [0-9.eE+-]+$", text);
            Assert.Matches(@"(?m)^collab_backup_lag_bytes\{[^}]*\} [1-9][0-9]*$", text);
        }
        finally
        {
            await host.DisposeAsync();
            host.DeleteData();
            Delete(backupDir);
        }
    }

    private static void Delete(params string[] dirs)
    {
        foreach (var dir in dirs)
        {
            if (Directory.Exists(dir))
            {
                try
                {
                    Directory.Delete(dir, recursive: true);
                }
                catch (IOException ex)
                {
                    // Something still wrote there after the server stopped: say what.
                    var left = Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Select(e => $"{e} ({File.GetLastWriteTimeUtc(e):HH:mm:ss.fff})");
                    throw new IOException($"{ex.Message}; still there at {DateTime.UtcNow:HH:mm:ss.fff}: {string.Join(", ", left)}", ex);
                }
            }
        }
    }

    /// <summary>Runs the server's command line with <paramref name="args"/> to its end.</summary>
    private static async Task<(int ExitCode, string Output)> RunServerDllAsync(params string[] args)
    {
        var run = await Tool.RunServerAsync(args);
        return (run.ExitCode, run.Output);
    }

    private static async Task<List<OpMessage>> ReadAllOpsAsync(HttpClient http, string doc)
    {
        var all = new List<OpMessage>();
        while (true)
        {
            var page = await http.GetFromJsonAsync<List<OpMessage>>($"/api/docs/{doc}/ops?from={all.Count}&limit=5000", new JsonSerializerOptions(JsonSerializerDefaults.Web));
            if (page is null || page.Count == 0)
            {
                return all;
            }
            all.AddRange(page);
        }
    }

    /// <summary>Inserts unique tokens, one op in flight at a time, recording when each was acknowledged, until stopped or the server is gone.</summary>
    private static async Task WriteAsync(Uri baseUrl, string doc, string clientId, ConcurrentDictionary<(string, string, long), (int, long)> acked, CancellationToken stop)
    {
        var c = new HubConnectionBuilder().WithUrl(new Uri(baseUrl, "hubs/collab")).AddMessagePackProtocol().Build();
        try
        {
            await c.StartAsync();
            var version = (await c.JoinAsync(doc, clientId)).Version;
            for (long opId = 1; !stop.IsCancellationRequested; opId++)
            {
                version = (await c.SubmitAsync(doc, version, [$"<{clientId}:{opId}>"], opId)).Version;
                acked[(doc, clientId, opId)] = (version, Stopwatch.GetTimestamp());
            }
        }
        catch (Exception)
        {
            // The server was killed; what was in flight is simply not acknowledged.
        }
        try
        {
            await c.DisposeAsync();
        }
        catch (Exception)
        {
        }
    }
}
