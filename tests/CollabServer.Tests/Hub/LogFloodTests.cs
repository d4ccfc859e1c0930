using Collab;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;
using Collab.Testing;

namespace CollabServer.Tests.Hub;

/// <summary>
/// A client's mistakes are not the server's to log: a flood of rejected ops must not become a
/// flood of log lines (SignalR alone logs each at Error with a stack trace, ~2.6 KB). A real
/// server process at its default log level writes nothing for them.
/// </summary>
public sealed class LogFloodTests
{
    [Fact]
    public async Task AThousandRefusedRequestsWriteNoErrorsAndNoStackTracesToTheLog()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir);
            var before = server.Output.Length;
            var c = new HubConnectionBuilder().WithUrl(new Uri(server.BaseUrl, "hubs/collab")).AddMessagePackProtocol().Build();
            await c.StartAsync();
            await c.JoinAsync("flood", "f");
            var refused = 0;
            for (var i = 0; i < 1000; i++)
            {
                try
                {
                    // Past the end of an empty document, and from the future, in turn.
                    await c.SubmitAsync("flood", i % 2 == 0 ? 0 : 99, [5, "x"], i + 1);
                }
                catch (Microsoft.AspNetCore.SignalR.HubException ex) when (ErrorCodes.FromMessage(ex.Message) is ErrorCodes.InvalidOp or ErrorCodes.UnknownVersion)
                {
                    refused++;
                }
            }
            Assert.Equal(1000, refused);
            Assert.Equal(1, (await c.SubmitAsync("flood", 0, ["fine"], 5000)).Version);
            await c.DisposeAsync();

            var written = server.Output[before..];
            Assert.False(written.Contains("fail:", StringComparison.Ordinal), written);
            Assert.DoesNotContain("   at ", written); // no stack trace
            Assert.True(written.Length < 4096, $"{written.Length} characters of log for 1000 refused ops:\n{written[..Math.Min(2000, written.Length)]}");
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
