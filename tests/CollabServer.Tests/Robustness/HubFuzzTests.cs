using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.RegularExpressions;
using Collab;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using Collab.Testing;

namespace CollabServer.Tests.Robustness;

/// <summary>
/// Over 10 000 random and damaged frames in both hub protocols against a real
/// server process. It must stay up, log no unhandled exception, and every document's text must
/// equal the replay of its op log.
/// </summary>
public sealed partial class HubFuzzTests(ITestOutputHelper output)
{
    private const int SlotsPerProtocol = 4;
    private const int FramesPerSlot = 1275;
    private const int SyncEvery = 32;
    private const int MaxMessageBytes = 256 * 1024;
    private static readonly string[] s_docIds = ["fz-0", "fz-1", "fz-2", "fz-3"];

    private sealed class SlotStats
    {
        public int Frames;
        public int Connections;
        public int ServerClosed;
        public int ClosedAfterPadding;
        public int Unresolved;
        public int ParseErrors;
        public int Acked;
        public readonly ConcurrentDictionary<string, int> Errors = new();
        public readonly ConcurrentDictionary<string, int> Kinds = new();
        public readonly ConcurrentDictionary<string, int> CloseReasons = new();
        public readonly List<string> UnresolvedFrames = [];
        public readonly ConcurrentBag<string> ParseErrorSamples = [];
        public TimeSpan Elapsed;
        public int AnsweredAfterPing;
        public readonly List<string> StuckBefore = [];
    }

    [Fact]
    public async Task TenThousandFuzzFramesLeaveTheServerUpAndEveryTextEqualToItsLog()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Normal", $"--Collab:MaxMessageBytes={MaxMessageBytes}");
            var slots = new List<(WireProtocol Protocol, Task<SlotStats> Run)>();
            for (var s = 0; s < SlotsPerProtocol; s++)
            {
                foreach (var protocol in new[] { WireProtocol.Json, WireProtocol.MessagePack })
                {
                    var seed = 8_700 + s * 10 + (int)protocol;
                    var slot = s;
                    slots.Add((protocol, Task.Run(() => RunSlotAsync(server.BaseUrl, protocol, slot, seed))));
                }
            }
            await Task.WhenAll(slots.Select(s => s.Run)).WaitAsync(TimeSpan.FromSeconds(300));

            foreach (var protocol in new[] { WireProtocol.Json, WireProtocol.MessagePack })
            {
                var stats = slots.Where(s => s.Protocol == protocol).Select(s => s.Run.Result).ToList();
                output.WriteLine($"{protocol}: {stats.Sum(s => s.Frames)} frames, {stats.Sum(s => s.Connections)} connections, " +
                    $"{stats.Sum(s => s.ServerClosed)} closed by the server, of which {stats.Sum(s => s.ClosedAfterPadding)} only after more than the message limit was sent to complete a damaged frame, " +
                    $"{stats.Sum(s => s.AnsweredAfterPing)} syncs answered only after more bytes, {stats.Sum(s => s.Unresolved)} unresolved stalls, {stats.Sum(s => s.Acked)} acknowledged submits, {stats.Sum(s => s.ParseErrors)} unreadable server messages");
                output.WriteLine("  completion errors: " + Summary(stats.SelectMany(s => s.Errors)));
                output.WriteLine("  close reasons: " + Summary(stats.SelectMany(s => s.CloseReasons)));
                output.WriteLine("  frame kinds: " + Summary(stats.SelectMany(s => s.Kinds)));
                output.WriteLine("  slot seconds: " + string.Join(", ", stats.Select(s => s.Elapsed.TotalSeconds.ToString("F0"))));
                foreach (var sample in stats.SelectMany(s => s.ParseErrorSamples).Take(5))
                {
                    output.WriteLine("  unreadable: " + sample);
                }
                foreach (var frames in stats.SelectMany(s => s.StuckBefore).Take(5))
                {
                    output.WriteLine("  sync answered only after a ping; last frames: " + frames);
                }
                foreach (var frame in stats.SelectMany(s => s.UnresolvedFrames).Take(10))
                {
                    output.WriteLine("  unresolved after: " + frame);
                }
            }
            var all = slots.Select(s => s.Run.Result).ToList();
            Assert.True(all.Sum(s => s.Frames) >= 10_000);
            Assert.All(slots, s => Assert.Equal(FramesPerSlot, s.Run.Result.Frames));
            // No connection wedged: each one the server kept open answered a join, at the latest
            // after more bytes than the message limit were sent to complete a damaged frame.
            Assert.True(all.Sum(s => s.Unresolved) == 0, "unresolved stalls after: " + string.Join(" / ", all.SelectMany(s => s.UnresolvedFrames)));

            // The server is up, and still serves a well-behaved client in both protocols.
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromSeconds(30) };
            var health = await http.GetAsync("/healthz");
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            foreach (var protocol in new[] { WireProtocol.Json, WireProtocol.MessagePack })
            {
                var builder = new HubConnectionBuilder().WithUrl(new Uri(server.BaseUrl, "hubs/collab"));
                var c = (protocol == WireProtocol.MessagePack ? builder.AddMessagePackProtocol() : builder).Build();
                await c.StartAsync().WaitAsync(Wire.Timeout);
                var join = await c.JoinAsync("fz-0", "after-" + protocol);
                Assert.Equal(join.Version + 1, (await c.SubmitAsync("fz-0", join.Version, ["ok"], 1)).Version);
                await c.DisposeAsync();
            }

            // Every document: contiguous versions, text = replay of the log.
            var ids = await DocumentLog.ListIdsAsync(http);
            var total = 0;
            foreach (var id in ids)
            {
                var version = await DocumentLog.AssertTextIsReplayOfLogAsync(http, id);
                output.WriteLine($"document {id}: version {version}");
                total += version;
            }
            Assert.Contains("fz-0", ids);
            Assert.True(total >= 300, $"only {total} ops were committed: the fuzzer hardly exercised the documents");

            // The server's log: nothing unhandled, no error from the server's own categories.
            var log = server.Output;
            var blocks = ErrorBlocks(log);
            var refusals = blocks.Where(IsJustified).Select(b => RefusalLine().Match(b.Text)).Select(m => new KeyValuePair<string, int>(m.Groups[2].Value, 1));
            output.WriteLine($"{blocks.Count} fail/crit log entries; protocol refusals logged by SignalR's dispatcher: " + Summary(refusals));
            foreach (var (category, text) in blocks.Where(b => !IsJustified(b)).Take(20))
            {
                output.WriteLine($"unexpected error log [{category}]: {text}");
            }
            Assert.DoesNotContain("unhandled exception", log, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(blocks, b => b.Category.StartsWith("CollabServer", StringComparison.Ordinal));
            Assert.DoesNotContain(blocks, b => !IsJustified(b));
            Assert.Equal(0, all.Sum(s => s.ParseErrors));
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>
    /// SignalR's dispatcher logs every HubException a hub method throws at Error level ("Failed
    /// to invoke hub method"), so each protocol refusal (PROTOCOL §5: a code, a colon, a
    /// sentence) is a <c>fail:</c> entry. Those are the server answering as it should. Anything
    /// else (a hub method failing with another exception, a crash in an actor, Kestrel's
    /// unhandled exceptions) is a finding.
    /// </summary>
    private static bool IsJustified((string Category, string Text) block) =>
        block.Category == "Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher"
        && RefusalLine().IsMatch(block.Text);

    [GeneratedRegex(@"^Failed to invoke hub method '(Join|Submit|Leave|SetPresence)'\. \| Microsoft\.AspNetCore\.SignalR\.HubException: (invalid_doc_id|invalid_op|unknown_version|not_joined|forbidden|unauthorized|too_large|rate_limited|unavailable): ")]
    private static partial Regex RefusalLine();

    private static List<(string Category, string Text)> ErrorBlocks(string log)
    {
        var blocks = new List<(string, string)>();
        var lines = log.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var m = LogHeader().Match(lines[i]);
            if (!m.Success)
            {
                continue;
            }
            var text = new StringBuilder();
            for (var j = i + 1; j < lines.Length && j <= i + 6 && lines[j].StartsWith(' '); j++)
            {
                text.Append(lines[j].Trim()).Append(" | ");
            }
            blocks.Add((m.Groups[1].Value, text.ToString()));
        }
        return blocks;
    }

    [GeneratedRegex(@"^(?:fail|crit): ([\w.`\[\]]+?)\[")]
    private static partial Regex LogHeader();

    private static string Summary(IEnumerable<KeyValuePair<string, int>> counts) =>
        string.Join("; ", counts.GroupBy(c => c.Key).Select(g => (g.Key, Count: g.Sum(c => c.Value))).OrderByDescending(x => x.Count).Select(x => $"{x.Key} ×{x.Count}"));

    private async Task<SlotStats> RunSlotAsync(Uri baseUrl, WireProtocol protocol, int slot, int seed)
    {
        var rng = new Random(seed);
        var stats = new SlotStats();
        var snapshots = new ConcurrentDictionary<string, (int Version, int Length)>();
        var pending = new ConcurrentDictionary<string, PendingCall>();
        var frames = new FuzzFrames(rng, protocol, slot, s_docIds, id => snapshots.GetValueOrDefault(id));
        FuzzSocket? socket = null;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var recent = new Queue<string>();

        void Collect(FuzzSocket s)
        {
            stats.ParseErrors += s.ParseErrors;
            foreach (var sample in s.ParseErrorSamples)
            {
                stats.ParseErrorSamples.Add(sample);
            }
        }

        void OnCompletion(string id, Completion c)
        {
            if (c.Error is not null)
            {
                stats.Errors.AddOrUpdate(ErrorCodes.FromMessage(c.Error) ?? ShortError(c.Error), 1, (_, n) => n + 1);
            }
            if (!pending.TryRemove(id, out var call) || c.Error is not null || c.Version is not { } version)
            {
                return;
            }
            // Keep the newest known (version, length) of each document: ops made against it are valid.
            if (call.Method == "Join" && c.TextLength is { } length)
            {
                snapshots.AddOrUpdate(call.DocId, (version, length), (_, old) => version >= old.Version ? (version, length) : old);
            }
            else if (call.Method == "Submit")
            {
                Interlocked.Increment(ref stats.Acked);
                if (version == call.BaseVersion + 1)
                {
                    snapshots.AddOrUpdate(call.DocId, (version, call.BaseLength + call.Delta), (_, old) => version > old.Version ? (version, call.BaseLength + call.Delta) : old);
                }
            }
        }

        async Task<FuzzSocket> OpenAsync()
        {
            if (socket is not null)
            {
                var reason = socket.Closed.IsCompleted ? socket.Closed.Result : "client";
                if (reason != "client")
                {

                    stats.ServerClosed++;
                    stats.CloseReasons.AddOrUpdate(reason, 1, (_, n) => n + 1);
                }
                Collect(socket);
                await socket.DisposeAsync();
            }
            pending.Clear();
            socket = await FuzzSocket.ConnectAsync(baseUrl, protocol);
            socket.OnCompletion = OnCompletion;
            stats.Connections++;
            return socket;
        }

        // Sends a well-formed Join and waits for its answer. If neither it nor a close arrives,
        // the server is waiting for the rest of a damaged frame: more bytes than the message
        // limit must make it close the connection.
        async Task SyncAsync(FuzzFrame? after, TimeSpan wait)
        {
            if (socket is null || !socket.IsOpen)
            {
                return;
            }
            var sync = frames.SyncJoin(s_docIds[rng.Next(s_docIds.Length)]);
            pending[sync.InvocationId!] = sync.Pending!;
            if (!await socket.SendAsync(sync) || await socket.WaitAsync(sync.InvocationId!, wait) is not null || !socket.IsOpen)
            {
                return;
            }
            // No answer yet. After a damaged frame the server is waiting for the rest of it: go
            // straight to the padding. Otherwise a ping (new bytes) makes the server parse what it holds. SignalR stops
            // parsing a read at a message of an unknown type and waits for more bytes, so a Join that
            // arrived in the same read as such a message is not read until something else arrives.
            if (after is null
                && await socket.SendRawAsync(Ping(protocol), protocol == WireProtocol.Json ? WebSocketMessageType.Text : WebSocketMessageType.Binary)
                && await socket.WaitAsync(sync.InvocationId!, TimeSpan.FromSeconds(3)) is not null)
            {
                stats.AnsweredAfterPing++;
                lock (stats.UnresolvedFrames)
                {
                    stats.StuckBefore.Add(string.Join(" / ", recent));
                }
                return;
            }
            if (!socket.IsOpen)
            {
                return;
            }
            var padding = protocol == WireProtocol.Json ? Enumerable.Repeat((byte)'a', MaxMessageBytes + 1024).ToArray() : new byte[MaxMessageBytes + 1024];
            await socket.SendRawAsync(padding, protocol == WireProtocol.Json ? WebSocketMessageType.Text : WebSocketMessageType.Binary);
            var closed = await Task.WhenAny(socket.Closed, Task.Delay(TimeSpan.FromSeconds(10))) == socket.Closed;
            if (!closed)
            {
                var again = frames.SyncJoin(s_docIds[0]);
                pending[again.InvocationId!] = again.Pending!;
                if (await socket.SendAsync(again) && await socket.WaitAsync(again.InvocationId!, TimeSpan.FromSeconds(30)) is null && socket.IsOpen)
                {
                    stats.Unresolved++;
                    lock (stats.UnresolvedFrames)
                    {
                        stats.UnresolvedFrames.Add(after?.Kind ?? "(periodic sync)");
                    }
                    socket.Abort();
                }
            }
            else
            {
                stats.ClosedAfterPadding++;
            }
        }

        try
        {
            for (var i = 0; i < FramesPerSlot; i++)
            {
                var frame = frames.Next(forceJoin: false);
                if (!frame.Kind.StartsWith("well-formed", StringComparison.Ordinal) && socket is not null && rng.Next(2) == 0)
                {
                    // Half the time, let the ops in flight be answered before the frame that may end the connection.
                    var inFlight = pending.Where(p => p.Value.Method == "Submit").Select(p => socket.WaitAsync(p.Key, TimeSpan.FromSeconds(2))).ToList();
                    if ((await Task.WhenAll(inFlight)).Any(c => c is null) && socket.IsOpen)
                    {
                        await socket.SendRawAsync(Ping(protocol), protocol == WireProtocol.Json ? WebSocketMessageType.Text : WebSocketMessageType.Binary);
                    }
                }
                stats.Kinds.AddOrUpdate(frame.Kind.Split(':')[0], 1, (_, n) => n + 1);
                recent.Enqueue(frame.Kind);



                if (recent.Count > 4)
                {
                    recent.Dequeue();
                }
                var sent = false;
                for (var attempt = 0; attempt < 5 && !sent; attempt++)
                {
                    if (socket is null || !socket.IsOpen)
                    {
                        await OpenAsync();
                        // A new connection has joined nothing: it joins every document first
                        // (setup, not counted as fuzz frames), so the ops that follow can land.
                        foreach (var docId in s_docIds)
                        {
                            var join = frames.SyncJoin(docId);
                            pending[join.InvocationId!] = join.Pending!;
                            await socket!.SendAsync(join);
                        }
                    }
                    if (frame.InvocationId is not null && frame.Pending is not null)
                    {
                        pending[frame.InvocationId] = frame.Pending;
                    }
                    sent = await socket!.SendAsync(frame);
                }
                Assert.True(sent, $"frame {i} ({frame.Kind}, {frame.Messages.Sum(m => m.Bytes.Length)} bytes) could not be sent on 5 connections; last: {(socket!.Closed.IsCompleted ? socket.Closed.Result : socket.IsOpen)}, {socket.LastSendError}");
                stats.Frames++;
                if (frame.BreaksFraming)
                {
                    await SyncAsync(frame, TimeSpan.FromMilliseconds(300));
                }
                else if ((i + 1) % SyncEvery == 0)
                {
                    await SyncAsync(null, TimeSpan.FromSeconds(2));
                }
            }
            await SyncAsync(null, TimeSpan.FromSeconds(2));
            return stats;
        }
        finally
        {
            if (socket is not null)
            {
                Collect(socket);
                await socket.DisposeAsync();
            }
            stats.Elapsed = clock.Elapsed;
        }
    }

    private static byte[] Ping(WireProtocol protocol) =>
        protocol == WireProtocol.Json ? "{\"type\":6}\u001e"u8.ToArray() : FuzzValue.LengthPrefixed(FuzzValue.A(FuzzValue.I(6)).ToMessagePack());

    private static string ShortError(string error)
    {
        var cut = error.IndexOf(" on the server", StringComparison.Ordinal);
        error = cut > 0 ? error[..cut] : error;
        return error.Length > 70 ? error[..70] + "…" : error;
    }
}
