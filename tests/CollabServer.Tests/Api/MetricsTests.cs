using Collab;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Api;

/// <summary>
/// Runs alone: instruments are per host, but an exporter listens to every meter of its name in
/// the process, so hosts of tests running at the same time would add to these counts.
/// </summary>
[CollectionDefinition(nameof(MetricsTests), DisableParallelization = true)]
public sealed class MetricsTestsCollection;

[Collection(nameof(MetricsTests))]
public sealed class MetricsTests() : HostedTest
{
    [Fact]
    public async Task MetricsCountCommittedOpsAndErrorsByCode()
    {
        var c = await Host.ConnectAsync();
        await c.JoinAsync("metered", "m");
        await c.SubmitAsync("metered", 0, ["x"], 1);
        await Wire.AssertErrorAsync(ErrorCodes.UnknownVersion, () => c.SubmitAsync("metered", 9, ["x"], 2));
        var text = await Host.Http.GetStringAsync("/metrics");
        Assert.Matches(@"(?m)^collab_ops_committed_total\{[^}]*\} 1$", text);
        Assert.Matches(@"(?m)^collab_errors_total\{[^}]*code=""unknown_version""[^}]*\} 1$", text);
        Assert.Matches(@"(?m)^collab_connections\{[^}]*\} 1$", text);
        Assert.Matches(@"(?m)^collab_documents_active\{[^}]*\} 1$", text);
        Assert.Contains("process_cpu_time_seconds_total", text);
    }
}
