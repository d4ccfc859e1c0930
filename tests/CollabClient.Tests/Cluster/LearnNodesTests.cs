using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Collab.Client.Tests.Cluster;

/// <summary>How a client learns the cluster's nodes (GET /api/cluster) from a real HTTP server.</summary>
public sealed class LearnNodesTests
{
    [Fact]
    public async Task LearningTheNodesAsksTheServerToCloseTheConnectionAfterwards()
    {
        // Every client asks once per connect; a pooled keep-alive socket per client would stay open
        // on the server (two sockets per idle client: 20 000 at 10 000 idle clients).
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.MapGet("/api/cluster", (HttpContext context) =>
        {
            seen.TrySetResult(context.Request.Headers.Connection.ToString());
            return Results.Json(new[] { new { node = "n2", url = "http://127.0.0.1:9/" } });
        });
        await app.StartAsync();
        try
        {
            var url = new Uri(app.Urls.Single() + "/");
            await using var client = new CollabClient(new CollabClientOptions { ServerUrl = url });

            await client.LearnNodesAsync(url).WaitAsync(TimeSpan.FromSeconds(30));

            var connection = await seen.Task.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("close", connection, ignoreCase: true);
        }
        finally
        {
            await app.StopAsync();
        }
    }

    [Theory]
    [InlineData(503, 3)]   // a node in trouble is asked again, and its third answer teaches the nodes
    [InlineData(403, 1)]   // a refusal is an answer: asked once
    public async Task ANodeThatCannotAnswerIsAskedAgainAndOneThatRefusesIsNot(int status, int expectedAsks)
    {
        var asks = 0;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.MapGet("/api/cluster", () => Interlocked.Increment(ref asks) <= 2
            ? Results.StatusCode(status)
            : Results.Json(new[] { new { node = "n2", url = "http://127.0.0.1:9/" } }));
        await app.StartAsync();
        try
        {
            var url = new Uri(app.Urls.Single() + "/");
            await using var client = new CollabClient(new CollabClientOptions { ServerUrl = url });

            await client.LearnNodesAsync(url).WaitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal(expectedAsks, Volatile.Read(ref asks));
            Assert.Equal(expectedAsks == 3, client.KnownNodes.Any(n => n.Port == 9));
        }
        finally
        {
            await app.StopAsync();
        }
    }
}
