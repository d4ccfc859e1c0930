using System.Collections.Concurrent;
using System.Diagnostics;
using Collab.Testing;
using CollabServer.Tests.Infrastructure;
using CollabServer.Tests.Robustness;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace CollabServer.Tests.Durability;

/// <summary>
/// The node log (<c>Collab:CommitLog=Node</c>, the default) with real server processes: SIGKILLs
/// while many documents are written, a log whose tail is torn, and a document file left behind
/// its log. Every acknowledged op is present exactly once, at its acknowledged version.
/// </summary>
public sealed class NodeLogTests(ITestOutputHelper output)
{
    private const int Documents = 50;
    private const int Writers = 10;
    private const int Rounds = 20;

    /// <summary>Keeps what a test wrote in the log until it looks: no checkpoint takes it into the files and deletes it meanwhile.</summary>
    private const string NoCheckpoint = "--Collab:LogCheckpointInterval=01:00:00";

    [Fact]
    public async Task TwentySigkillsWhileFiftyDocumentsAreWrittenLoseNoAcknowledgedOp()
    {
        var rng = new Random(20_261_207);
        var dataDir = TestHost.NewDataDir();
        // (docId, clientId, opId) -> the version its ack gave; and the ops in flight at a kill (at most once).
        var acked = new Dictionary<(string Doc, string Client, long OpId), int>();
        var unacked = new HashSet<(string Doc, string Client, long OpId)>();
        var nextOpId = Enumerable.Range(0, Writers).ToDictionary(w => $"w{w}", _ => 1L);
        var clock = Stopwatch.StartNew();
        try
        {
            for (var round = 0; round <= Rounds; round++)
            {
                using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Full", "--Collab:CommitLog=Node");
                using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
                if (round > 0)
                {
                    await AssertDocumentsAsync(http, acked, unacked, $"after kill {round}:\n{server.Output}");
                }
                if (round == Rounds)
                {
                    break;
                }
                var killAfter = rng.Next(50, 400);
                var roundAcks = new ConcurrentDictionary<(string, string, long), int>();
                var inFlight = new ConcurrentDictionary<(string, string, long), bool>();
                using var stop = new CancellationTokenSource();
                var writers = Enumerable.Range(0, Writers)
                    .Select(w => Task.Run(() => WriteUntilKilledAsync(server.BaseUrl, w, nextOpId[$"w{w}"], roundAcks, inFlight, stop.Token)))
                    .ToList();
                var waited = Stopwatch.StartNew();
                while (roundAcks.Count < killAfter && waited.Elapsed < TimeSpan.FromSeconds(120) && writers.Any(t => !t.IsCompleted))
                {
                    await Task.Delay(2);
                }
                server.Kill();
                stop.Cancel();
                await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(120));
                Assert.True(roundAcks.Count >= killAfter, $"round {round}: only {roundAcks.Count} of {killAfter} ops were acknowledged before the kill:\n{server.Output}");
                foreach (var (id, version) in roundAcks)
                {
                    acked[id] = version;
                }
                foreach (var id in inFlight.Keys)
                {
                    unacked.Add(id);
                }
                foreach (var (_, client, opId) in roundAcks.Keys.Concat(inFlight.Keys))
                {
                    nextOpId[client] = Math.Max(nextOpId[client], opId + 1);
                }
                output.WriteLine($"round {round + 1}: killed after {roundAcks.Count} acks (target {killAfter}), {inFlight.Count} in flight; {acked.Count} acknowledged so far; {clock.Elapsed.TotalSeconds:F0} s");
            }
            Assert.Equal(Documents, acked.Keys.Select(k => k.Doc).Distinct().Count());
            output.WriteLine($"{Rounds} kills, {acked.Count} ops acknowledged over {Documents} documents, {unacked.Count} in flight at a kill; {clock.Elapsed.TotalSeconds:F0} s");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task ALogWhoseTailIsCutMidRecordRecovers()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            var acked = new Dictionary<(string Doc, string Client, long OpId), int>();
            using (var server = await ServerProcess.StartAsync(dataDir, NoCheckpoint))
            {
                await WriteAsync(server.BaseUrl, "torn", "ada", 1, 30, acked);
                server.Kill();
            }
            // The segment with the records (a spare one, made ahead of need, holds none).
            var segment = Directory.GetFiles(Path.Combine(dataDir, "log", "local"), "*.log").Order().First();
            var end = EndOfRecords(File.ReadAllBytes(segment));
            Assert.True(end > 8, "the log holds the acknowledged batches");
            // A record cut by the crash: its length and CRC, then only part of what they promise.
            using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
            {
                file.Position = end;
                file.Write(BitConverter.GetBytes(4096));
                file.Write(BitConverter.GetBytes(0x1234_5678u));
                file.Write(Enumerable.Repeat((byte)0x78, 100).ToArray());
            }
            using (var server = await ServerProcess.StartAsync(dataDir, NoCheckpoint))
            {
                using var http = new HttpClient { BaseAddress = server.BaseUrl };
                await AssertDocumentsAsync(http, acked, [], "after the torn tail");
                Assert.Contains("(1 segments ended in a torn record)", server.Output, StringComparison.Ordinal);
                // And the document takes edits again.
                await WriteAsync(server.BaseUrl, "torn", "bob", 1, 5, acked);
                await AssertDocumentsAsync(http, acked, [], "after writing again");
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task ADocumentFileBehindTheLogIsBroughtUpToDateWhenTheServerStarts()
    {
        var dataDir = TestHost.NewDataDir();
        var older = TestHost.NewDataDir();
        try
        {
            var acked = new Dictionary<(string Doc, string Client, long OpId), int>();
            using (var server = await ServerProcess.StartAsync(dataDir, NoCheckpoint))
            {
                await WriteAsync(server.BaseUrl, "behind", "ada", 1, 20, acked);
                server.Terminate(); // a clean stop: the log is checkpointed into the file and deleted
                Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(60)), server.Output);
            }
            Assert.Empty(Directory.GetFiles(Path.Combine(dataDir, "log", "local"), "*.log")); // not even the spare
            CopyDocument(dataDir, older, "behind");
            using (var server = await ServerProcess.StartAsync(dataDir, NoCheckpoint))
            {
                await WriteAsync(server.BaseUrl, "behind", "bob", 1, 25, acked);
                server.Kill();
            }
            // The file as it was before the last 25 ops (what a power cut may leave of writes that
            // were never synced): the log has them.
            CopyDocument(older, dataDir, "behind");
            using (var server = await ServerProcess.StartAsync(dataDir, NoCheckpoint))
            {
                using var http = new HttpClient { BaseAddress = server.BaseUrl };
                await AssertDocumentsAsync(http, acked, [], "after putting the older file back");
                Assert.Contains("replayed 25 ops into 1 documents", server.Output, StringComparison.Ordinal);
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(dataDir, recursive: true);
            Directory.Delete(older, recursive: true);
        }
    }

    /// <summary>Where the records of a segment end: after its header, frames of [length][crc][payload] up to a zero length.</summary>
    private static int EndOfRecords(byte[] segment)
    {
        var at = 8;
        while (at + 8 <= segment.Length && BitConverter.ToInt32(segment, at) is var length and > 0)
        {
            at += 8 + length;
        }
        return at;
    }

    private static void CopyDocument(string fromDataDir, string toDataDir, string docId)
    {
        var from = Path.Combine(fromDataDir, "docs", docId + ".db");
        var to = Path.Combine(toDataDir, "docs", docId + ".db");
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            File.Delete(to + suffix);
            if (File.Exists(from + suffix))
            {
                File.Copy(from + suffix, to + suffix);
            }
        }
    }

    private static string Token(string client, long opId) => $"<{client}:{opId}>";

    /// <summary>
    /// Every document's versions are 1..n with no (clientId, opId) twice, every acknowledged op is
    /// at its acknowledged version, each op in flight at a kill is there at most once, and the text
    /// is the replay of the log.
    /// </summary>
    private static async Task AssertDocumentsAsync(HttpClient http, Dictionary<(string Doc, string Client, long OpId), int> acked, ICollection<(string Doc, string Client, long OpId)> inFlight, string when)
    {
        foreach (var doc in acked.Keys.Select(k => k.Doc).Distinct())
        {
            var ops = await DocumentLog.ReadOpsAsync(http, doc);
            Assert.Equal(Enumerable.Range(1, ops.Count), ops.Select(o => o.Version));
            var byId = ops.GroupBy(o => (doc, o.ClientId, o.OpId)).ToDictionary(g => g.Key, g => g.Select(o => o.Version).ToList());
            foreach (var (id, versions) in byId)
            {
                Assert.True(versions.Count == 1, $"{when}: op {id} is in the log {versions.Count} times");
                Assert.True(acked.ContainsKey(id) || inFlight.Contains(id), $"{when}: op {id} was never sent");
            }
            foreach (var (id, version) in acked.Where(a => a.Key.Doc == doc))
            {
                Assert.True(byId.TryGetValue(id, out var found), $"{when}: acknowledged op {id} (version {version}) is missing");
                Assert.True(found[0] == version, $"{when}: acknowledged op {id} is at version {found[0]}, not {version}");
            }
            await DocumentLog.AssertTextIsReplayOfLogAsync(http, doc);
        }
    }

    /// <summary>Submits <paramref name="count"/> token ops to one document, one after another, recording each ack.</summary>
    private static async Task WriteAsync(Uri baseUrl, string doc, string client, long firstOpId, int count, Dictionary<(string, string, long), int> acked)
    {
        await using var c = await Wire.ConnectAsync(baseUrl);
        var version = (await c.JoinAsync(doc, client)).Version;
        for (var opId = firstOpId; opId < firstOpId + count; opId++)
        {
            version = (await c.SubmitAsync(doc, version, [Token(client, opId)], opId)).Version;
            acked[(doc, client, opId)] = version;
        }
    }

    /// <summary>Writer <paramref name="w"/> owns five documents and writes them in turn, one op in flight, until the server dies.</summary>
    private static async Task WriteUntilKilledAsync(Uri baseUrl, int w, long firstOpId, ConcurrentDictionary<(string, string, long), int> acked, ConcurrentDictionary<(string, string, long), bool> inFlight, CancellationToken stop)
    {
        var client = $"w{w}";
        var docs = Enumerable.Range(0, Documents / Writers).Select(i => $"nl-{w * (Documents / Writers) + i:D2}").ToArray();
        HubConnection? c = null;
        HubException? refusal = null;
        try
        {
            c = await Wire.ConnectAsync(baseUrl);
            var versions = new int[docs.Length];
            for (var i = 0; i < docs.Length; i++)
            {
                versions[i] = (await c.JoinAsync(docs[i], client)).Version;
            }
            for (var opId = firstOpId; !stop.IsCancellationRequested; opId++)
            {
                var i = (int)(opId % docs.Length);
                inFlight[(docs[i], client, opId)] = true;
                versions[i] = (await c.SubmitAsync(docs[i], versions[i], [Token(client, opId)], opId)).Version;
                acked[(docs[i], client, opId)] = versions[i];
                inFlight.TryRemove((docs[i], client, opId), out _);
            }
        }
        catch (HubException ex)
        {
            refusal = ex; // the server answered and refused a well-formed op: a failure, not the kill
        }
        catch (Exception)
        {
            // The server was killed: what was in flight stays in 'inFlight'.
        }
        await Wire.EndWriterAsync(c, refusal, client);
    }
}
