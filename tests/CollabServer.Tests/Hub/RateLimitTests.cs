using Collab;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Tests.Hub;

/// <summary>
/// A connection's op budget (PROTOCOL §5): a burst of 5, then one op every 10 s. So slow that no
/// machine, however busy, refills it between two submits of this test.
/// </summary>
public sealed class RateLimitTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:OpsPerSecond"] = "0.1",
    ["Collab:OpsBurst"] = "5",
})
{
    [Fact]
    public async Task SubmittingPastTheBudgetIsRateLimitedChangesNothingAndTheBudgetComesBack()
    {
        var c = await Host.ConnectAsync();
        await c.JoinAsync("rate", "c");
        var version = 0;
        for (var i = 1; i <= 5; i++)
        {
            version = (await c.SubmitAsync("rate", version, ["x"], i)).Version;
        }
        await Wire.AssertErrorAsync(ErrorCodes.RateLimited, () => c.SubmitAsync("rate", version, ["x"], 6));
        Assert.Equal((5, "xxxxx"), await Host.GetDocAsync("rate"));

        // The budget refills: the same op is accepted once it has (about 10 s), on the same connection.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                Assert.Equal(6, (await c.SubmitAsync("rate", version, ["y"], 6)).Version);
                break;
            }
            catch (HubException ex) when (ErrorCodes.FromMessage(ex.Message) == ErrorCodes.RateLimited && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
        Assert.Equal((6, "yxxxxx"), await Host.GetDocAsync("rate"));
    }
}
