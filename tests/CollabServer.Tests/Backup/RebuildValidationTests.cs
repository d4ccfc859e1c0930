using Collab.Testing;
using System.Text.Json;
using CollabServer.Backup;
using CollabServer.Storage;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Backup;

/// <summary>
/// <c>rebuild</c> refuses a backup whose checksums match but whose content is wrong: exit 1, one
/// sentence on standard error naming what is wrong, and nothing written to the target.
/// </summary>
public sealed class RebuildValidationTests
{
    private static string Op(params object[] components) => JsonSerializer.Serialize(components);

    private static OpRow Row(int version, string op, long opId = -1, string clientId = "c1") =>
        new(version, clientId, opId < 0 ? version : opId, 1_700_000_000_000 + version, op);

    [Fact]
    public async Task AnOpThatDoesNotApplyToTheTextIsRefusedBeforeAnyDocumentIsWritten()
    {
        // 'a-good' comes first and is valid; 'b-bad' deletes past the end of its text in its second batch.
        await AssertRefusedAsync(backup =>
        {
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "a-good"), [Row(1, Op("hello")), Row(2, Op(5, " world"))]);
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "b-bad"), [Row(1, Op("abc"))]);
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "b-bad"), [Row(2, Op(1, -10))]);
        }, "does not apply");
    }

    [Fact]
    public async Task ATinyFileNamingTwoBillionVersionsIsRefusedWithoutAllocatingForThem()
    {
        // With a 256 MB heap: room for anything this backup needs, not for two billion rows.
        await AssertRefusedAsync(backup =>
        {
            var dir = BackupFormat.DocDir(backup, "huge");
            Directory.CreateDirectory(dir);
            // 58 bytes: a valid header for 1-2 000 000 000 and one record.
            using var file = new MemoryStream();
            BackupFormat.Write(file, [Row(1, Op("x"))]);
            var bytes = file.ToArray();
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(12), 2_000_000_000);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(16), System.IO.Hashing.Crc32.HashToUInt32(bytes.AsSpan(0, 16)));
            File.WriteAllBytes(Path.Combine(dir, BackupFormat.FileName(1, 2_000_000_000)), bytes[..58]);
        }, "2000000000", heapLimit: 256 * 1024 * 1024);
    }

    [Fact]
    public async Task AMalformedOpIsRefusedWithAMessageNotAnUnhandledException()
    {
        await AssertRefusedAsync(backup =>
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "malformed"), [Row(1, Op("fine")), Row(2, "{\"not\": an op")]), "op 2 of 'malformed'");
    }

    [Fact]
    public async Task AnOpIdRepeatedByOneClientIsRefused()
    {
        await AssertRefusedAsync(backup =>
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "twice"), [Row(1, Op("a"), opId: 7), Row(2, Op(1, "b"), opId: 7)]), "repeats op id 7");
    }

    [Fact]
    public async Task AFileWhoseNameIsNotABatchNameIsRefused()
    {
        await AssertRefusedAsync(backup =>
        {
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "named"), [Row(1, Op("a"))]);
            File.WriteAllText(Path.Combine(BackupFormat.DocDir(backup, "named"), "0000000002-0000000001.ops"), "");
        }, "not a batch file name");
    }

    [Fact]
    public async Task AValidCraftedBackupRebuilds()
    {
        var backup = TestHost.NewDataDir();
        var target = Path.Combine(TestHost.NewDataDir(), "rebuilt");
        try
        {
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "fine"), [Row(1, Op("hello")), Row(2, Op(5, " world"))]);
            var (exitCode, output) = await RunServerDllAsync(null, "rebuild", "--from", backup, "--to", target);
            Assert.True(exitCode == 0, output);
            Assert.True(File.Exists(Path.Combine(target, "docs", "fine.db")));
        }
        finally
        {
            Directory.Delete(backup, recursive: true);
            Directory.Delete(Path.GetDirectoryName(target)!, recursive: true);
        }
    }

    [Fact]
    public async Task ARichTextDocumentRebuildsAsRichTextAndOneMixingTypesIsRefused()
    {
        var backup = TestHost.NewDataDir();
        var target = Path.Combine(TestHost.NewDataDir(), "rebuilt");
        try
        {
            // Its first op is the empty op, which reads as either type: the type is the first delta's.
            BackupFormat.WriteDurably(BackupFormat.DocDir(backup, "rich"), [Row(1, "[]"), Row(2, """[{"insert":"ab\n"}]"""), Row(3, """[{"retain":2,"attributes":{"bold":true}}]""")]);
            var (exitCode, output) = await RunServerDllAsync(null, "rebuild", "--from", backup, "--to", target);
            Assert.True(exitCode == 0, output);
            using var store = SqliteDocumentStore.OpenExisting(Path.Combine(target, "docs", "rich.db"), SyncMode.Normal)!;
            Assert.Equal(CollabServer.Documents.Types.DocumentType.RichText, store.Type);
            var result = new Collab.Messages.JoinResult();
            store.Load().Content.WriteTo(result);
            Assert.Equal("""[{"insert":"ab","attributes":{"bold":true}},{"insert":"\n"}]""", result.Delta!.ToString());
        }
        finally
        {
            Directory.Delete(backup, recursive: true);
            Directory.Delete(Path.GetDirectoryName(target)!, recursive: true);
        }
        await AssertRefusedAsync(dir =>
            BackupFormat.WriteDurably(BackupFormat.DocDir(dir, "mixed"), [Row(1, """[{"insert":"ab"}]"""), Row(2, Op(1, "x"))]), "op 2 of 'mixed' is not an op");
    }

    private static async Task AssertRefusedAsync(Action<string> craft, string expected, long? heapLimit = null)
    {
        var backup = TestHost.NewDataDir();
        var target = Path.Combine(TestHost.NewDataDir(), "rebuilt");
        try
        {
            craft(backup);
            var (exitCode, output) = await RunServerDllAsync(heapLimit, "rebuild", "--from", backup, "--to", target);
            Assert.True(exitCode == 1, $"exit code {exitCode}: {output}");
            Assert.Contains(expected, output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", output, StringComparison.Ordinal);
            Assert.False(Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any(), "nothing is written from a refused backup");
        }
        finally
        {
            Directory.Delete(backup, recursive: true);
            Directory.Delete(Path.GetDirectoryName(target)!, recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Output)> RunServerDllAsync(long? heapLimit, params string[] args)
    {
        var run = await Tool.RunServerAsync(args, heapLimit is { } limit ? new Dictionary<string, string?> { ["DOTNET_GCHeapHardLimit"] = $"0x{limit:X}" } : null);
        return (run.ExitCode, run.Output);
    }
}
