using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Collab.Messages;
using Collab.Ot;
using Collab.Testing;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CollabBench;

/// <summary>
/// Issue 21's attacks, replayed against a server started here with its defaults (docs/SECURITY.md
/// records what they measured). Each runs for a bounded time while an honest writer edits and the
/// server's RSS is sampled; it prints the writer's latency, the server's peak RSS and what the
/// attacker got through. Not a test: figures, on 127.0.0.1 only.
/// </summary>
/// <remarks>
/// dotnet run -c Release --project tests/CollabBench -- attack connections|bigops|presence|joins|names|pastreads|history|chunked [--seconds S] [--connections N] [--server-dll PATH]
/// </remarks>
public static class AttackProbe
{
    public static async Task RunAsync(string[] args)
    {
        var attack = args.Length > 0 ? args[0] : throw new ArgumentException("attack connections|bigops|presence|joins|names");
        int Arg(string name, int fallback) => Array.IndexOf(args, name) is var i and >= 0 ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
        var seconds = Arg("--seconds", 30);
        var dataDir = Directory.CreateTempSubdirectory("collab-attack-").FullName;
        try
        {
            // --server-dll: another build of the server (the one before a fix), run the same way.
            var dll = Array.IndexOf(args, "--server-dll") is var d and >= 0 ? Path.GetFullPath(args[d + 1]) : ServerProcess.ServerDll;
            using var server = await ServerProcess.StartDllAsync(dll, dataDir, $"--Collab:DataDir={dataDir}");
            Console.WriteLine($"server pid {server.Pid} on {server.BaseUrl}, RSS {Rss(server.Pid) / 1e6:F0} MB at start; attack '{attack}' for {seconds} s");
            // What the attack needs is made before the clock starts.
            var presenceVersion = attack == "presence" ? await PreparePresenceAsync(server.BaseUrl) : 0;
            if (attack == "history")
            {
                await PrepareHistoryAsync(server.BaseUrl);
            }
            if (attack == "pastreads")
            {
                await PreparePastReadsAsync(server.BaseUrl);
            }
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
            var peak = 0L;
            using var sampler = new Timer(_ => peak = Math.Max(peak, Rss(server.Pid)), null, 0, 200);
            var writerDoc = attack == "presence" ? "target" : "honest";
            var writer = WriteAsync(server.BaseUrl, writerDoc, until);
            var report = attack switch
            {
                "connections" => await ConnectionsAsync(server, Arg("--connections", 20_000), until),
                "bigops" => await BigOpsAsync(server.BaseUrl, until),
                "presence" => await PresenceAsync(server.BaseUrl, presenceVersion, until),
                "joins" => await JoinsAsync(server.BaseUrl, until),
                "names" => await NamesAsync(server.BaseUrl, until),
                "pastreads" => await PastReadsAsync(server.BaseUrl, until),
                "history" => await HistoryAsync(server.BaseUrl, until),
                "chunked" => await ChunkedAsync(server.BaseUrl, until),
                _ => throw new ArgumentException($"no attack '{attack}'"),
            };
            var latencies = await writer;
            Console.WriteLine($"attacker: {report}");
            Console.WriteLine($"honest writer: {latencies.Count} ops, p50 {Percentile(latencies, 0.50):F1} ms, p99 {Percentile(latencies, 0.99):F1} ms, max {Percentile(latencies, 1):F1} ms");
            Console.WriteLine($"server: peak RSS {peak / 1e6:F0} MB, alive: {!server.HasExited}");
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static async Task<HubConnection> ConnectAsync(Uri url)
    {
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(url, HubNames.Path), o => { o.Transports = HttpTransportType.WebSockets; o.SkipNegotiation = true; })
            .AddMessagePackProtocol()
            .Build();
        hub.ServerTimeout = TimeSpan.FromMinutes(5);
        await hub.StartAsync();
        return hub;
    }

    /// <summary>An honest member typing a character every 50 ms: the latency of each acknowledgement, in ms.</summary>
    private static async Task<List<double>> WriteAsync(Uri url, string docId, DateTime until)
    {
        await using var hub = await ConnectAsync(url);
        var version = (await hub.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = docId, ClientId = "honest" })).Version;
        var latencies = new List<double>();
        for (long opId = 1; DateTime.UtcNow < until; opId++)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                var result = await hub.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = docId, BaseVersion = version, Op = new TextOperation.Builder().Insert("h").Build(), OpId = opId });
                version = result.Version;
                latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
            catch (HubException)
            {
                version = (await hub.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = docId, ClientId = "honest" })).Version;
            }
            await Task.Delay(50);
        }
        return latencies;
    }

    private static async Task<string> ConnectionsAsync(ServerProcess server, int count, DateTime until)
    {
        var sockets = new List<Socket>();
        var refused = 0;
        try
        {
            for (var i = 0; i < count && DateTime.UtcNow < until; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    await socket.ConnectAsync(IPAddress.Loopback, server.Port).WaitAsync(TimeSpan.FromSeconds(5));
                    sockets.Add(socket);
                }
                catch (Exception ex) when (ex is SocketException or TimeoutException)
                {
                    refused++;
                    socket.Dispose();
                }
            }
            var open = sockets.Count;
            while (DateTime.UtcNow < until)
            {
                await Task.Delay(1000);
            }
            var stillOpen = sockets.Count(s => !(s.Poll(0, SelectMode.SelectRead) && s.Available == 0));
            return $"{open} connections made ({refused} refused or timed out), {stillOpen} still open after holding them";
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private static async Task<string> BigOpsAsync(Uri url, DateTime until)
    {
        await using var hub = await ConnectAsync(url);
        await hub.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "big", ClientId = "attacker" });
        // Ops of 200 000 components (~0.4 MB of MessagePack, ~10 MB once read): each inserts a
        // character after every one of the first 100 000 and deletes the last 100 000.
        var version = (await hub.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = "big", BaseVersion = 0, Op = new TextOperation.Builder().Insert(new string('z', 200_000)).Build(), OpId = 1 })).Version;
        long accepted = 0, refused = 0;
        for (long opId = 2; DateTime.UtcNow < until; opId++)
        {
            var builder = new TextOperation.Builder();
            for (var k = 0; k < 100_000; k++)
            {
                builder.Retain(1).Insert("a");
            }
            builder.Delete(100_000);
            try
            {
                version = (await hub.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = "big", BaseVersion = version, Op = builder.Build(), OpId = opId })).Version;
                accepted++;
            }
            catch (HubException)
            {
                refused++;
                await Task.Delay(10);
            }
        }
        return $"{accepted} big ops accepted, {refused} refused";
    }

    /// <summary>A document of 1 000 ops, 990 of them of 200 components each: mapping a position from version 1 walks about 200 000 components.</summary>
    private static async Task<int> PreparePresenceAsync(Uri url)
    {
        await using var writer = await ConnectAsync(url);
        await writer.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "target", ClientId = "builder" });
        var version = (await writer.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = "target", BaseVersion = 0, Op = new TextOperation.Builder().Insert(new string('x', 1000)).Build(), OpId = 1 })).Version;
        var length = 1000;
        for (var i = 0; i < 990; i++)
        {
            var builder = new TextOperation.Builder();
            for (var k = 0; k < 100; k++)
            {
                builder.Retain(1).Insert("y");
            }
            builder.Retain(length - 100);
            version = (await writer.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = "target", BaseVersion = version, Op = builder.Build(), OpId = 2 + i })).Version;
            length += 100;
        }
        return version;
    }

    private static async Task<string> PresenceAsync(Uri url, int version, DateTime until)
    {
        await using var reader = await ConnectAsync(url);
        await reader.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "target", ClientId = "reader" });
        var ranges = Enumerable.Range(0, 100).Select(i => new SelectionRange { Anchor = 10 * i, Head = 10 * i + 5 }).ToList();
        long accepted = 0, refused = 0;
        while (DateTime.UtcNow < until)
        {
            try
            {
                await reader.InvokeAsync("SetPresence", new PresenceRequest { DocId = "target", Version = 1, Selection = ranges });
                accepted++;
            }
            catch (HubException)
            {
                refused++;
            }
            await Task.Delay(50);
        }
        return $"{accepted} presence updates at version 1 of {version} accepted, {refused} refused";
    }

    private static async Task<string> JoinsAsync(Uri url, DateTime until)
    {
        await using var watcher = await ConnectAsync(url);
        long presences = 0;
        watcher.On<PresenceMessage>(HubNames.Presence, _ => Interlocked.Increment(ref presences));
        await watcher.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "lobby", ClientId = "watcher" });
        await using var attacker = await ConnectAsync(url);
        long accepted = 0, refused = 0;
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow < until)
        {
            try
            {
                await attacker.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "lobby", ClientId = "loop" });
                await attacker.InvokeAsync("Leave", "lobby");
                accepted += 2;
            }
            catch (HubException)
            {
                refused++;
            }
        }
        var elapsed = (DateTime.UtcNow - started).TotalSeconds;
        return $"{accepted / elapsed:F0} joins+leaves/s accepted, {refused / elapsed:F0}/s refused; the watcher got {Interlocked.Read(ref presences) / elapsed:F0} presence messages/s";
    }

    private static async Task<string> NamesAsync(Uri url, DateTime until)
    {
        await using var watcher = await ConnectAsync(url);
        long received = 0;
        watcher.On<PresenceMessage>(HubNames.Presence, p => Interlocked.Add(ref received, p.User?.Name?.Length ?? 0));
        await watcher.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "named", ClientId = "watcher" });
        var name = new string('n', 500_000);
        long accepted = 0, refused = 0;
        var attackers = new List<HubConnection>();
        try
        {
            for (var i = 0; i < 50 && DateTime.UtcNow < until; i++)
            {
                var attacker = await ConnectAsync(url);
                attackers.Add(attacker);
                try
                {
                    await attacker.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "named", ClientId = $"n{i}", User = new UserInfo { Name = name } });
                    accepted++;
                }
                catch (HubException)
                {
                    refused++;
                }
            }
            var joined = await watcher.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "named", ClientId = "late" });
            while (DateTime.UtcNow < until)
            {
                await Task.Delay(500);
            }
            return $"{accepted} joins with a 500 000-character name accepted, {refused} refused; name characters sent to the watcher: {Interlocked.Read(ref received)}; a late join's result carries {joined.Presence.Sum(p => p.User?.Name?.Length ?? 0)} name characters";
        }
        finally
        {
            foreach (var attacker in attackers)
            {
                await attacker.DisposeAsync();
            }
        }
    }

    private static async Task PreparePastReadsAsync(Uri url)
    {
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(5) };
        (await http.PutAsJsonAsync("/api/docs/huge", new { text = new string('h', 16 * 1024 * 1024) })).EnsureSuccessStatusCode();
        (await http.PutAsJsonAsync("/api/docs/huge", new { text = "now short" })).EnsureSuccessStatusCode();
    }

    /// <summary>Rounds of 48 concurrent reads of version 1 of a 16 Mi-character document.</summary>
    private static async Task<string> PastReadsAsync(Uri url, DateTime until)
    {
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(5) };
        return await RoundsAsync(until, 48, () => http.GetAsync("/api/docs/huge?version=1", HttpCompletionOption.ResponseContentRead));
    }

    private static async Task PrepareHistoryAsync(Uri url)
    {
        await using var hub = await ConnectAsync(url);
        await hub.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = "long", ClientId = "builder" });
        var version = 0;
        for (var i = 1; i <= 20_000; i++)
        {
            try
            {
                version = (await hub.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = "long", BaseVersion = version, Op = new TextOperation.Builder().Insert("x").Retain(version).Build(), OpId = i })).Version;
            }
            catch (HubException)
            {
                await Task.Delay(100); // the op rate: wait and send it again
                i--;
            }
        }
    }

    /// <summary>Rounds of 300 concurrent <c>/history?limit=500</c> of a document of 20 000 ops.</summary>
    private static async Task<string> HistoryAsync(Uri url, DateTime until)
    {
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(5) };
        return await RoundsAsync(until, 300, () => http.GetAsync("/api/docs/long/history?limit=500"));
    }

    /// <summary>Rounds of 4 restore bodies of 20 MiB each, sent chunked (no Content-Length).</summary>
    private static async Task<string> ChunkedAsync(Uri url, DateTime until)
    {
        using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromMinutes(5) };
        (await http.PutAsJsonAsync("/api/docs/restored", new { text = "one" })).EnsureSuccessStatusCode();
        return await RoundsAsync(until, 4, async () =>
        {
            var body = new PushStreamContent(20 * 1024 * 1024);
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/docs/restored/restore") { Content = body };
            request.Headers.TransferEncodingChunked = true;
            return await http.SendAsync(request);
        });
    }

    /// <summary>A JSON body of <c>{"version": 1, "pad": "…"}</c> of about <paramref name="bytes"/>, written as it is sent.</summary>
    private sealed class PushStreamContent(int bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync("{\"version\":1,\"pad\":\""u8.ToArray());
            var chunk = new byte[64 * 1024];
            Array.Fill(chunk, (byte)'p');
            try
            {
                for (var sent = 0; sent < bytes; sent += chunk.Length)
                {
                    await stream.WriteAsync(chunk);
                }
                await stream.WriteAsync("\"}"u8.ToArray());
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException or ObjectDisposedException)
            {
                // The server answered and closed before the body ended: what a cap should do.
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>Sends <paramref name="concurrent"/> requests at once, round after round until <paramref name="until"/>: answers by status.</summary>
    private static async Task<string> RoundsAsync(DateTime until, int concurrent, Func<Task<HttpResponseMessage>> send)
    {
        var statuses = new Dictionary<string, int>();
        var rounds = 0;
        do
        {
            var answers = await Task.WhenAll(Enumerable.Range(0, concurrent).Select(async _ =>
            {
                try
                {
                    using var response = await send();
                    return ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture);
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    return ex.GetType().Name;
                }
            }));
            foreach (var answer in answers)
            {
                statuses[answer] = statuses.GetValueOrDefault(answer) + 1;
            }
            rounds++;
        }
        while (DateTime.UtcNow < until);
        return $"{rounds} rounds of {concurrent}: " + string.Join(", ", statuses.OrderBy(kv => kv.Key).Select(kv => $"{kv.Value} × {kv.Key}"));
    }

    private static long Rss(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1 < 0 ? 0 : (int)Math.Ceiling(p * sorted.Count) - 1)];
    }
}
