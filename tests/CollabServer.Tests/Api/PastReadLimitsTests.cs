using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Collab.Testing;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Api;

/// <summary>
/// Reads of old versions of a large document against a server process: a subject's reads in flight
/// and the node's bytes of rebuilt texts are bounded until each answer is written. A reader that
/// reads its answer slowly keeps its read in flight, so the limits are reached without any timing.
/// </summary>
public sealed class PastReadLimitsTests
{
    /// <summary>Larger than what the kernel and the server buffer for one connection, so its answer stays in flight while it is read slowly.</summary>
    private const int BigChars = 12 * 1024 * 1024;

    [Fact]
    public async Task ASubjectsPastReadsInFlightAreBoundedAndTheNextIs429()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Off", "--Collab:Rest:PastReadsPerSubject=1", "--Collab:Rest:PastReadQueuePerSubject=0");
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = Wire.Timeout };
            await MakeBigPastAsync(http, "big");

            await using var slow = await SlowReader.StartAsync(server.BaseUrl, "/api/docs/big?version=1");
            Assert.Equal(200, slow.Status);
            // The same subject (here: the same address, the server is open) asks again meanwhile.
            await RestLimitsTests.AssertRateLimitedAsync(await http.GetAsync("/api/docs/big?version=1"));
            await RestLimitsTests.AssertRateLimitedAsync(await http.GetAsync("/api/docs/big/history"));
            // The current text is not a past read.
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/api/docs/big")).StatusCode);
            Assert.Equal(2, RestLimitsTests.Refused(await http.GetStringAsync("/metrics"), "history_reads_subject"));

            Assert.Equal(BigChars, (await slow.ReadToEndAsync()).GetProperty("text").GetString()!.Length);
            // Once the answer is written the subject's share is free again.
            await Eventually.TrueAsync(async () => (await http.GetAsync("/api/docs/big/history")).StatusCode == HttpStatusCode.OK, "a past read is served again");
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task RebuiltTextsInFlightAreBoundedByTheNodesByteBudget()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            // Room for one rebuilt 12 Mi-char text (48 MiB counted) and one more waiting, not two.
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Off", "--Collab:Rest:PastReadsPerSubject=10", $"--Collab:Rest:PastReadBytes={60 * 1024 * 1024}");
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = TimeSpan.FromMinutes(5) };
            await MakeBigPastAsync(http, "big");

            await using var slow = await SlowReader.StartAsync(server.BaseUrl, "/api/docs/big?version=1");
            Assert.Equal(200, slow.Status);
            // Two more: one waits for the first to be written, the other finds the wait full.
            var second = http.GetAsync("/api/docs/big?version=1");
            var third = http.GetAsync("/api/docs/big?version=1");
            var refused = await Task.WhenAny(second, third);
            await RestLimitsTests.AssertRateLimitedAsync(await refused);
            Assert.Equal(1, RestLimitsTests.Refused(await http.GetStringAsync("/metrics"), "history_bytes"));

            Assert.Equal(BigChars, (await slow.ReadToEndAsync()).GetProperty("text").GetString()!.Length);
            var waited = await (refused == second ? third : second);
            Assert.Equal(HttpStatusCode.OK, waited.StatusCode);
            Assert.Equal(BigChars, (await waited.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("text").GetString()!.Length);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    /// <summary>Version 1 of <paramref name="id"/> is <see cref="BigChars"/> characters; version 2, the current one, is short.</summary>
    private static async Task MakeBigPastAsync(HttpClient http, string id)
    {
        Assert.Equal(HttpStatusCode.OK, (await http.PutAsJsonAsync($"/api/docs/{id}", new { text = new string('a', BigChars) })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PutAsJsonAsync($"/api/docs/{id}", new { text = "short now" })).StatusCode);
    }

    /// <summary>
    /// A GET over a socket with a small receive buffer whose answer is read a little at a time
    /// (a few hundred KB/s, well above the server's minimum data rate) until <see cref="ReadToEndAsync"/>.
    /// </summary>
    private sealed class SlowReader : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly MemoryStream _received = new();
        private readonly CancellationTokenSource _stop = new();
        private volatile bool _fast;
        private Task _reading = Task.CompletedTask;

        private SlowReader(Socket socket) => _socket = socket;

        public int Status { get; private set; }

        public static async Task<SlowReader> StartAsync(Uri baseUrl, string path)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 8192 };
            await socket.ConnectAsync(IPAddress.Loopback, baseUrl.Port);
            var reader = new SlowReader(socket);
            await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{baseUrl.Port}\r\nConnection: close\r\n\r\n"));
            // The status line arrives with the start of the answer, while the rest is still being written.
            while (IndexOf(reader._received, "\r\n"u8) < 0)
            {
                if (!await reader.ReceiveAsync(4096))
                {
                    break;
                }
            }
            var head = Encoding.ASCII.GetString(reader._received.ToArray());
            reader.Status = int.Parse(head.Split(' ')[1]);
            reader._reading = reader.ReadAsync();
            return reader;
        }

        private async Task ReadAsync()
        {
            while (await ReceiveAsync(_fast ? 1 << 16 : 2048))
            {
                if (!_fast)
                {
                    await Task.Delay(10, _stop.Token).ContinueWith(_ => { });
                }
            }
        }

        private async Task<bool> ReceiveAsync(int bytes)
        {
            var buffer = new byte[bytes];
            var n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token);
            _received.Write(buffer, 0, n);
            return n > 0;
        }

        /// <summary>Reads the rest at full speed and returns the answer's JSON (the body may be chunked).</summary>
        public async Task<JsonElement> ReadToEndAsync()
        {
            _fast = true;
            await _reading.WaitAsync(TimeSpan.FromMinutes(2));
            var all = _received.ToArray();
            var bodyStart = IndexOf(all, "\r\n\r\n"u8) + 4;
            var head = Encoding.ASCII.GetString(all, 0, bodyStart);
            var body = head.Contains("transfer-encoding: chunked", StringComparison.OrdinalIgnoreCase) ? Dechunk(all.AsSpan(bodyStart)) : all[bodyStart..];
            return JsonSerializer.Deserialize<JsonElement>(body);
        }

        private static byte[] Dechunk(ReadOnlySpan<byte> chunked)
        {
            var result = new MemoryStream();
            while (true)
            {
                var line = chunked.IndexOf("\r\n"u8);
                var size = Convert.ToInt32(Encoding.ASCII.GetString(chunked[..line]).Split(';')[0], 16);
                if (size == 0)
                {
                    return result.ToArray();
                }
                result.Write(chunked.Slice(line + 2, size));
                chunked = chunked[(line + 2 + size + 2)..];
            }
        }

        private static int IndexOf(MemoryStream stream, ReadOnlySpan<byte> what) => IndexOf(stream.GetBuffer().AsSpan(0, (int)stream.Length), what);

        private static int IndexOf(ReadOnlySpan<byte> data, ReadOnlySpan<byte> what) => data.IndexOf(what);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _reading;
            }
            catch (OperationCanceledException)
            {
            }
            _socket.Dispose();
            _stop.Dispose();
        }
    }
}
