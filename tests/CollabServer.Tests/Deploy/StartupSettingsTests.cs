using CollabServer.Tests.Infrastructure;
using Collab.Testing;

namespace CollabServer.Tests.Deploy;

/// <summary>A wrong setting stops the server at start with a line naming it, not at some later request.</summary>
public sealed class StartupSettingsTests
{
    [Theory]
    [InlineData("--Collab:OpsPerSecond=-1", "Collab:OpsPerSecond must be above zero (it is -1).")]
    [InlineData("--Collab:OpsPerSecond=fast", "Collab:OpsPerSecond")]
    [InlineData("--Collab:Redis=127.0.0.1:1|--Collab:NodeId=n1|--Collab:NodeUrl=http://127.0.0.1:9|--Collab:LeaseTtl=00:00:00.100", "Collab:LeaseTtl must be at least 1 s")]
    [InlineData("--Collab:Redis=127.0.0.1:1", "Collab:NodeId must be set in a cluster")]
    [InlineData("--Collab:History:RetentionCheckInterval=00:00:00", "Collab:History:RetentionCheckInterval must be at least 1 s")]
    [InlineData("--Collab:Auth:SigningKey=short", "Collab:Auth:SigningKey must be at least 32 bytes")]
    [InlineData("--Collab:Auth:SigningKey=a-signing-key-of-at-least-32-bytes-long|--Authentication:Schemes:Bearer:Authority=https://issuer.example", "not both")]
    public async Task AWrongSettingStopsTheServerWithALineNamingIt(string settings, string expected)
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartDllAsync(ServerProcess.ServerDll, dataDir, ServerProcess.FreePort(), waitReady: false, [$"--Collab:DataDir={dataDir}", .. settings.Split('|')]);
            Assert.True(await server.WaitForExitAsync(TimeSpan.FromSeconds(120)), $"the server kept running with {settings}:\n{server.Output}");
            Assert.Equal(2, server.ExitCode);
            // One line per wrong setting (a cluster without NodeId has no NodeUrl either).
            var lines = server.Output.Split('\n').Where(l => l.StartsWith("CollabServer cannot start: ", StringComparison.Ordinal)).ToList();
            Assert.Contains(lines, line => line.Contains(expected, StringComparison.Ordinal));
            Assert.DoesNotContain("   at ", server.Output); // a sentence, not a stack trace
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    [Fact]
    public async Task SettingsThatMeanSomethingAtZeroAndSettingsOfFeaturesThatAreOffStillStart()
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            // Close idle documents at once, only PUT creates documents, and no cluster, backup or
            // retention, whose settings are then not looked at.
            using var server = await ServerProcess.StartAsync(dataDir,
                "--Collab:IdleTimeout=00:00:00", "--Collab:DatabaseIdleTimeout=00:00:00", "--Collab:DocumentsCreatedPerMinute=0",
                "--Collab:LeaseTtl=00:00:00.100", "--Collab:Backup:Interval=00:00:00", "--Collab:History:Retention=00:00:00", "--Collab:History:RetentionCheckInterval=00:00:00");
            Assert.False(server.HasExited);
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }
}
