using System.Net;
using System.Net.Http.Json;
using Collab;
using Collab.Testing;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Api;

/// <summary>Body caps hold for bodies sent chunked (no Content-Length), against a server process (Kestrel).</summary>
public sealed class ChunkedBodyTests
{
    [Fact]
    public async Task AChunkedRestoreBodyIsHeldToItsBoundLikeOneWithALength()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Off");
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = Wire.Timeout };
            Assert.Equal(HttpStatusCode.OK, (await http.PutAsJsonAsync("/api/docs/chunked", new { text = "one" })).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.PutAsJsonAsync("/api/docs/chunked", new { text = "two" })).StatusCode);
            // A valid restore body padded past 4 096 bytes, sent without a Content-Length: refused
            // as one with a Content-Length over the bound is (PROTOCOL §7).
            var body = "{\"version\":1,\"pad\":\"" + new string('x', 64 * 1024) + "\"}";
            await RestLimitsTests.AssertProblemAsync(await http.PostAsync("/api/docs/chunked/restore", new RestLimitsTests.ChunkedContent(body)), HttpStatusCode.BadRequest, ErrorCodes.InvalidOp);
            var doc = await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/docs/chunked");
            Assert.Equal((2, "two"), (doc.GetProperty("version").GetInt32(), doc.GetProperty("text").GetString()));
            // The same request under the bound restores.
            Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/api/docs/chunked/restore", new RestLimitsTests.ChunkedContent("{\"version\":1}"))).StatusCode);
            Assert.Equal("one", (await http.GetFromJsonAsync<System.Text.Json.JsonElement>("/api/docs/chunked")).GetProperty("text").GetString());
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task AChunkedPutBodyOverMaxRestBodyBytesIs413TooLarge()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir, "--Collab:Sync=Off", "--Collab:MaxRestBodyBytes=1024");
            using var http = new HttpClient { BaseAddress = server.BaseUrl, Timeout = Wire.Timeout };
            var response = await http.PutAsync("/api/docs/big-chunked", new RestLimitsTests.ChunkedContent("{\"text\":\"" + new string('y', 8 * 1024) + "\"}"));
            await RestLimitsTests.AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge, ErrorCodes.TooLarge);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync("/api/docs/big-chunked")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.PutAsync("/api/docs/big-chunked", new RestLimitsTests.ChunkedContent("{\"text\":\"small\"}"))).StatusCode);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
