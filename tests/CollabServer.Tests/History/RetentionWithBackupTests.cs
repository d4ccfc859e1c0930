using System.Net.Http.Json;
using System.Text.Json;
using CollabServer.Backup;
using CollabServer.History;
using CollabServer.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace CollabServer.Tests.History;

/// <summary>Retention beside continuous backup: an op leaves the database only once the backup has it.</summary>
public sealed class RetentionWithBackupTests : IAsyncLifetime
{
    private readonly string _backupDir = TestHost.NewDataDir();
    private readonly TestHost _host;

    public RetentionWithBackupTests() => _host = new TestHost(settings: new Dictionary<string, string?>
    {
        ["Collab:History:Retention"] = "00:00:00", // no background pass: the test folds at a chosen instant
        ["Collab:Backup:Dir"] = _backupDir,
        ["Collab:Backup:Interval"] = "01:00:00", // nothing is shipped until the shipper stops
    });

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        _host.DeleteData();
        Directory.Delete(_backupDir, recursive: true);
    }

    private async Task<List<int>> VersionsAsync(string id, int from = 0) =>
        (await _host.Http.GetFromJsonAsync<List<JsonElement>>($"/api/docs/{id}/ops?from={from}&limit=10000"))!
            .Select(o => o.GetProperty("version").GetInt32())
            .ToList();

    [Fact]
    public async Task RetentionFoldsOnlyOpsTheBackupHasShipped()
    {
        var c = await _host.ConnectAsync();
        await c.JoinAsync("shipped", "c");
        for (var i = 1; i <= 20; i++)
        {
            await c.SubmitAsync("shipped", i - 1, [i - 1, "a"], i);
        }
        var newest = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < 1000 && DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() <= newest + 5; i++)
        {
            await Task.Delay(5); // until the clock has passed the newest op
        }
        var retention = _host.Services.GetServices<IHostedService>().OfType<RetentionService>().Single();
        var shipper = _host.Services.GetRequiredService<BackupShipper>();

        // Old enough, but not in the backup yet: nothing is folded.
        await retention.PassAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal(Enumerable.Range(1, 20), await VersionsAsync("shipped"));

        // Stopping the shipper ships everything; then all but the newest op fold.
        await shipper.StopAsync(CancellationToken.None);
        Assert.Equal(20, shipper.ShippedThrough("shipped"));
        await retention.PassAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal([20], await VersionsAsync("shipped", from: 19));
    }
}
