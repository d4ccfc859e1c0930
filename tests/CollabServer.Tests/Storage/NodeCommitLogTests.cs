using Collab.Ot;
using CollabServer.Diagnostics;
using CollabServer.Storage;
using CollabServer.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CollabServer.Tests.Storage;

/// <summary>The node log on its own, over real SQLite files: append, recovery's rules, checkpoints.</summary>
public sealed class NodeCommitLogTests : IDisposable
{
    private readonly string _dataDir = TestHost.NewDataDir();
    private readonly DocumentCatalog _catalog;
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public NodeCommitLogTests() => _catalog = new DocumentCatalog(Options.Create(new CollabOptions { DataDir = _dataDir }));

    private string LogRoot => Path.Combine(_dataDir, "log");

    private NodeCommitLog NewLog(string node = "local", TimeSpan? checkpointInterval = null) =>
        new(LogRoot, node, sync: true, segmentBytes: 1 << 20, checkpointInterval ?? TimeSpan.FromHours(1), _catalog,
            new CollabMetrics(_meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()), NullLogger.Instance);

    private static StoredOp Op(int version, string text) => new(version, TextOperation.Insert(version - 1, text), "c", version, 1000 + version);

    private static Task AppendAsync(NodeCommitLog log, LogBatch batch)
    {
        // The log calls back on its writer thread, which must not run the test's continuation.
        var durable = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        log.Append(batch, error =>
        {
            if (error is null)
            {
                durable.SetResult();
            }
            else
            {
                durable.SetException(error);
            }
        });
        return durable.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    private List<LogBatch> ReadAll(string node = "local") =>
        Directory.GetFiles(Path.Combine(LogRoot, node), "*.log").Order().SelectMany(path =>
        {
            var batches = new List<LogBatch>();
            Assert.True(NodeCommitLog.Read(path, batches), $"{path} reads to its end");
            return batches;
        }).ToList();

    [Fact]
    public async Task EveryAppendedBatchIsReportedDurableAndReadsBackInOrder()
    {
        using var log = NewLog();
        log.Recover(_catalog);
        var appends = Enumerable.Range(1, 200).Select(v => AppendAsync(log, new LogBatch($"d{v % 7}", 42, 3, [Op(v, "x")]))).ToList();
        await Task.WhenAll(appends);

        var read = ReadAll();
        Assert.Equal(Enumerable.Range(1, 200), read.Select(b => b.Ops[0].Version));
        Assert.All(read, b => Assert.Equal((42L, 3L, $"d{b.Ops[0].Version % 7}", Op(b.Ops[0].Version, "x").Op.ToString()), (b.Incarnation, b.Epoch, b.DocId, b.Ops[0].Op.ToString())));
    }

    /// <summary>Creates the document "doc", lets <paramref name="write"/> write to it, and returns its incarnation.</summary>
    private long CreateDocument(Action<IDocumentStore>? write = null)
    {
        using var store = _catalog.Create("doc");
        write?.Invoke(store);
        return store.Incarnation;
    }

    /// <summary>A node that appends <paramref name="batches"/> to its log and is killed.</summary>
    private async Task AppendThenCrashAsync(string node, params LogBatch[] batches)
    {
        using var log = NewLog(node);
        log.Recover(_catalog);
        foreach (var batch in batches)
        {
            await AppendAsync(log, batch);
        }
        Crash(log);
    }

    /// <summary>A node's start: recovery, then a clean stop.</summary>
    private void Restart(string node = "local")
    {
        using var log = NewLog(node);
        log.Recover(_catalog);
    }

    private string TextOfDocument()
    {
        using var store = _catalog.OpenExisting("doc")!;
        return store.Load().Content.PlainText();
    }

    [Fact]
    public async Task RecoveryGivesADocumentTheOpsItsFileLacksAndNoneItHas()
    {
        var incarnation = CreateDocument(store => store.Commit([Op(1, "a"), Op(2, "b")], 2, [], FenceToken.None));
        await AppendThenCrashAsync("local",
            new LogBatch("doc", incarnation, 0, [Op(1, "a"), Op(2, "b")]),
            new LogBatch("doc", incarnation, 0, [Op(3, "c"), Op(4, "d")]),
            new LogBatch("gone", 1, 0, [Op(1, "z")])); // a document deleted since

        Restart();

        Assert.Equal("abcd", TextOfDocument());
        Assert.False(_catalog.Exists("gone"));
    }

    [Fact]
    public async Task ARichTextDocumentsLoggedDeltasAreReadAsDeltasAndRecovered()
    {
        StoredOp Delta(int version, string json) =>
            new(version, CollabServer.Documents.Types.DocumentType.RichText.ParseOp(json), "c", version, 1000 + version);
        long incarnation;
        using (var store = _catalog.Create("doc", CollabServer.Documents.Types.DocumentType.RichText))
        {
            store.Commit([Delta(1, """[{"insert":"ab\n"}]""")], 3, [], FenceToken.None);
            incarnation = store.Incarnation;
        }
        await AppendThenCrashAsync("local",
            new LogBatch("doc", incarnation, 0, [Delta(1, """[{"insert":"ab\n"}]""")]),
            new LogBatch("doc", incarnation, 0, [Delta(2, """[{"retain":2,"attributes":{"bold":true}}]"""), Delta(3, "[]")]));

        Restart();

        using var reopened = _catalog.OpenExisting("doc")!;
        var loaded = reopened.Load();
        Assert.Equal((3, """[{"insert":"ab","attributes":{"bold":true}},{"insert":"\n"}]"""), (loaded.Version, ((Collab.Messages.JoinResult)Joined(loaded.Content)).Delta!.ToString()));
    }

    private static object Joined(CollabServer.Documents.Types.DocContent content)
    {
        var result = new Collab.Messages.JoinResult();
        content.WriteTo(result);
        return result;
    }

    [Fact]
    public async Task RecoveryIgnoresAnotherLifeOfTheDocumentAndADeposedOwnersWrites()
    {
        var incarnation = CreateDocument(store =>
        {
            store.Fence(new FenceToken(5));
            store.Commit([Op(1, "a")], 1, [], new FenceToken(5));
        });
        await AppendThenCrashAsync("local",
            new LogBatch("doc", incarnation + 1, 5, [Op(2, "x")]), // the document before it was deleted and made again
            new LogBatch("doc", incarnation, 4, [Op(2, "y")]), // an owner deposed by epoch 5
            new LogBatch("doc", incarnation, 5, [Op(2, "b")]));

        Restart();

        Assert.Equal("ab", TextOfDocument());
    }

    [Fact]
    public async Task RecoveryReadsEveryNodesLogButDeletesOnlyItsOwn()
    {
        var incarnation = CreateDocument();
        await AppendThenCrashAsync("node-b", new LogBatch("doc", incarnation, 0, [Op(1, "b")]));

        Restart("node-a");

        Assert.Equal("b", TextOfDocument());
        Assert.Single(ReadAll("node-b"));
    }

    [Fact]
    public async Task ADocumentsBatchesInSeveralNodesLogsAreReplayedInVersionOrder()
    {
        var incarnation = CreateDocument();
        // The later owner's log sorts first by node name.
        await AppendThenCrashAsync("a-later", new LogBatch("doc", incarnation, 2, [Op(3, "c")]));
        await AppendThenCrashAsync("b-earlier", new LogBatch("doc", incarnation, 1, [Op(1, "a"), Op(2, "b")]));

        Restart("a-later");

        Assert.Equal("abc", TextOfDocument());
    }

    [Fact]
    public async Task ACheckpointDeletesClosedSegmentsAndACleanStopLeavesNoLog()
    {
        var incarnation = CreateDocument(store => store.Commit([Op(1, "a")], 1, [], FenceToken.None));
        var dir = Path.Combine(LogRoot, "local");
        using (var log = NewLog(checkpointInterval: TimeSpan.FromMilliseconds(100)))
        {
            log.Recover(_catalog);
            await AppendAsync(log, new LogBatch("doc", incarnation, 0, [Op(1, "a")]));
            var first = Directory.GetFiles(dir, "*.log").Order().First(); // then the spare, made ahead of need
            // Every interval the writer moves to a new segment; the old one goes once the document is synced.
            await Collab.Testing.Eventually.TrueAsync(() => Task.FromResult(!File.Exists(first)), "the first segment is checkpointed away");
            await AppendAsync(log, new LogBatch("doc", incarnation, 0, [Op(2, "b")]));
        }
        Assert.Empty(Directory.GetFiles(dir, "*.log"));
    }

    [Fact]
    public async Task ABatchAppendedAfterTheLogStoppedIsRefused()
    {
        var log = NewLog();
        log.Recover(_catalog);
        log.Dispose();

        await Assert.ThrowsAsync<CommitLogException>(() => AppendAsync(log, new LogBatch("doc", 1, 0, [Op(1, "a")])));
    }

    /// <summary>Leaves the log as a killed process would: its files as they are, nothing checkpointed.</summary>
    private static void Crash(NodeCommitLog log) => log.Abandon();

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        _meters.Dispose();
        Directory.Delete(_dataDir, recursive: true);
    }
}
