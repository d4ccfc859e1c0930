using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Collab;
using CollabServer.Api;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Api;

/// <summary>REST limits: 429 <c>rate_limited</c> problem details, counted by limit in /metrics; body caps that hold for chunked bodies.</summary>
public sealed class RestLimitsTests
{
    [Fact]
    public async Task RestRequestsPastTheSubjectsBucketAre429RateLimitedAndCounted()
    {
        await using var host = new TestHost(settings: new Dictionary<string, string?>
        {
            // Five at once, then one every 100 s: nothing refills during the test.
            ["Collab:Rest:RequestsBurst"] = "5",
            ["Collab:Rest:RequestsPerSecond"] = "0.01",
        });
        try
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(HttpStatusCode.NotFound, (await host.Http.GetAsync("/api/docs/absent")).StatusCode);
            }
            await AssertRateLimitedAsync(await host.Http.GetAsync("/api/docs/absent"));
            await AssertRateLimitedAsync(await host.Http.PutAsJsonAsync("/api/docs/refused", new { text = "x" }));
            Assert.False(File.Exists(Path.Combine(host.DataDir, "docs", "refused.db")), "a refused PUT writes nothing");
            // Outside /api/ nothing is limited.
            Assert.Equal(HttpStatusCode.OK, (await host.Http.GetAsync("/healthz")).StatusCode);
            Assert.Equal(2, await RefusedAsync(host, "rest_requests"));
        }
        finally
        {
            host.DeleteData();
        }
    }

    [Fact]
    public async Task PutCreatingDocumentsPastTheSubjectsCreationBudgetIs429AndCreatesNothing()
    {
        await using var host = new TestHost(settings: new Dictionary<string, string?> { ["Collab:Rest:DocumentsCreatedPerMinute"] = "3" });
        try
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await host.Http.PutAsJsonAsync($"/api/docs/made-{i}", new { text = "new" })).StatusCode);
            }
            await AssertRateLimitedAsync(await host.Http.PutAsJsonAsync("/api/docs/made-3", new { text = "one too many" }));
            Assert.Equal(HttpStatusCode.NotFound, (await host.Http.GetAsync("/api/docs/made-3")).StatusCode);
            Assert.False(File.Exists(Path.Combine(host.DataDir, "docs", "made-3.db")), "a refused creation writes nothing");
            // Writing documents that exist spends nothing.
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await host.Http.PutAsJsonAsync("/api/docs/made-0", new { text = $"edit {i}" })).StatusCode);
            }
            Assert.Equal(1, await RefusedAsync(host, "rest_creations"));
        }
        finally
        {
            host.DeleteData();
        }
    }

    [Fact]
    public async Task ASubjectsHubConnectionsAndPutsShareOneCreationBudget()
    {
        const string key = "test-signing-key-of-at-least-32-bytes!";
        static string Token(string subject) => CollabServer.Auth.TokenCommand.Mint(
            new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), new CollabServer.Auth.AuthOptions(), subject, null, "doc:*:edit", TimeSpan.FromHours(1));
        await using var host = new TestHost(settings: new Dictionary<string, string?>
        {
            ["Collab:Auth:SigningKey"] = key,
            ["Collab:Rest:DocumentsCreatedPerMinute"] = "3",
        });
        try
        {
            Task<HttpResponseMessage> PutAsync(string subject, string id)
            {
                var request = new HttpRequestMessage(HttpMethod.Put, $"/api/docs/{id}") { Content = JsonContent.Create(new { text = "new" }) };
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Token(subject));
                return host.Http.SendAsync(request);
            }
            Assert.Equal(HttpStatusCode.OK, (await PutAsync("ada", "by-put-0")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await PutAsync("ada", "by-put-1")).StatusCode);
            // Her hub connection (its own per-connection budget is untouched) takes the third...
            var hub = await host.ConnectAsync(token: Token("ada"));
            await hub.JoinAsync("by-hub-0", "pen");
            Assert.Equal(1, (await hub.SubmitAsync("by-hub-0", 0, ["x"], 1)).Version);
            // ...and then neither it nor her PUTs may create another.
            await hub.JoinAsync("by-hub-1", "pen");
            await Wire.AssertErrorAsync(ErrorCodes.RateLimited, () => hub.SubmitAsync("by-hub-1", 0, ["x"], 2));
            await AssertRateLimitedAsync(await PutAsync("ada", "by-put-2"));
            Assert.False(File.Exists(Path.Combine(host.DataDir, "docs", "by-hub-1.db")));
            // Another subject has a budget of its own.
            Assert.Equal(HttpStatusCode.OK, (await PutAsync("bob", "bobs")).StatusCode);
        }
        finally
        {
            host.DeleteData();
        }
    }

    [Fact]
    public async Task PastReadsWaitingForTheNodesStorageReadsBeyondTheQueueAre429AndWritersGoOn()
    {
        await using var host = new TestHost(settings: new Dictionary<string, string?>
        {
            ["Collab:Rest:PastReads"] = "1",
            ["Collab:Rest:PastReadQueue"] = "0",
        });
        try
        {
            Assert.Equal(HttpStatusCode.OK, (await host.Http.PutAsJsonAsync("/api/docs/past", new { text = "one" })).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await host.Http.PutAsJsonAsync("/api/docs/past", new { text = "two" })).StatusCode);
            // The node's one storage permit is taken by a read that does not finish until released
            // (a slow SQLite read of a long history).
            var limits = host.GetService<PastReadLimits>();
            using var release = new ManualResetEventSlim();
            using var started = new SemaphoreSlim(0);
            var held = limits.RunAsync(() => { started.Release(); release.Wait(); return 0; }, CancellationToken.None);
            await started.WaitAsync(Wire.Timeout);

            await AssertRateLimitedAsync(await host.Http.GetAsync("/api/docs/past?version=1"));
            await AssertRateLimitedAsync(await host.Http.GetAsync("/api/docs/past/history"));
            // Writers and current reads do not need it.
            Assert.Equal(HttpStatusCode.OK, (await host.Http.PutAsJsonAsync("/api/docs/other", new { text = "written meanwhile" })).StatusCode);
            Assert.Equal((2, "two"), await host.GetDocAsync("past"));
            Assert.Equal(2, await RefusedAsync(host, "history_reads"));

            release.Set();
            await held;
            var past = await host.Http.GetFromJsonAsync<JsonElement>("/api/docs/past?version=1");
            Assert.Equal("one", past.GetProperty("text").GetString());
        }
        finally
        {
            host.DeleteData();
        }
    }

    internal static async Task AssertRateLimitedAsync(HttpResponseMessage response) =>
        await AssertProblemAsync(response, HttpStatusCode.TooManyRequests, ErrorCodes.RateLimited);

    internal static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("type").GetString());
    }

    /// <summary><c>collab_limits_refused_total{limit}</c> from /metrics (0 when absent).</summary>
    internal static async Task<double> RefusedAsync(TestHost host, string limit) => Refused(await host.Http.GetStringAsync("/metrics"), limit);

    internal static double Refused(string metrics, string limit) => metrics.Split('\n')
        .Where(line => line.StartsWith("collab_limits_refused_total{", StringComparison.Ordinal) && line.Contains($"limit=\"{limit}\"", StringComparison.Ordinal))
        .Select(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture))
        .Sum();

    /// <summary>A body of unknown length: sent chunked, without a Content-Length.</summary>
    internal sealed class ChunkedContent(string text) : HttpContent
    {
        public ChunkedContent(byte[] bytes) : this(Encoding.UTF8.GetString(bytes))
        {
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            for (var offset = 0; offset < bytes.Length; offset += 1024)
            {
                await stream.WriteAsync(bytes.AsMemory(offset, Math.Min(1024, bytes.Length - offset)));
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
