using System.Diagnostics;
using Collab;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Durability;

/// <summary>
/// A data directory that refuses writes (made immutable with <c>chattr +i</c>, which binds root
/// too, on the machine's real ext4 disk): nothing is acknowledged without a commit, the client
/// hears <c>unavailable</c>, and the document recovers by itself when the disk does.
/// </summary>
public sealed class DiskFailureTests() : HostedTest
{
    private static void Chattr(string flag, string path)
    {
        using var process = Process.Start(new ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"chattr {flag} {path}: {error}");
    }

    [Fact]
    public async Task AWriteThatCannotBeCommittedIsUnavailableAndTheSameOpLandsOnceTheDiskRecovers()
    {
        var docs = Directory.CreateDirectory(Path.Combine(Host.DataDir, "docs")).FullName;
        var c = await Host.ConnectAsync();
        await c.JoinAsync("old", "c");
        Assert.Equal(1, (await c.SubmitAsync("old", 0, ["kept"], 1)).Version);
        await c.JoinAsync("new", "c");
        var wal = Path.Combine(docs, "old.db-wal");
        Assert.True(File.Exists(wal));

        Chattr("+i", docs);
        Chattr("+i", wal);
        try
        {
            // A new document cannot be created; an existing one cannot append to its log.
            await Wire.AssertErrorAsync(ErrorCodes.Unavailable, () => c.SubmitAsync("new", 0, ["lost?"], 1));
            await Wire.AssertErrorAsync(ErrorCodes.Unavailable, () => c.SubmitAsync("old", 1, [4, "more"], 2));
            Assert.Equal((1, "kept"), await Host.GetDocAsync("old"));
        }
        finally
        {
            Chattr("-i", wal);
            Chattr("-i", docs);
        }

        // The client resubmits with the same ids, as it does after unavailable: each lands exactly once.
        Assert.Equal(1, (await c.SubmitAsync("new", 0, ["lost?"], 1)).Version);
        Assert.Equal(2, (await c.SubmitAsync("old", 1, [4, "more"], 2)).Version);
        Assert.Equal(2, (await c.SubmitAsync("old", 1, [4, "more"], 2)).Version);
        Assert.Equal((2, "keptmore"), await Host.GetDocAsync("old"));
        Assert.Equal((1, "lost?"), await Host.GetDocAsync("new"));
    }
}
