using Collab.Ot;
using Collab.Testing;
using CollabServer;
using CollabServer.Diagnostics;
using CollabServer.Storage;
using CollabServer.Storage.Postgres;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CollabCluster.Tests;

/// <summary>
/// The PostgreSQL tier's storage against a real <c>postgres</c>: the fence holds in PostgreSQL
/// itself, and a node's working copy that took a batch PostgreSQL never did (a crash between the
/// two commits) is mended from PostgreSQL when the document is loaded again, even after another
/// node wrote different ops at those versions.
/// </summary>
public sealed class PostgresStorageTests : IDisposable
{
    private readonly PostgresServer _postgres = PostgresServer.Start();
    private readonly ServiceProvider _meters = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly List<string> _dirs = [];
    private readonly List<PostgresDatabase> _databases = [];

    private (PostgresStorage Storage, PostgresCommitLog Log) Node()
    {
        var dir = Directory.CreateTempSubdirectory("collab-pg-node-").FullName;
        _dirs.Add(dir);
        var options = Options.Create(new CollabOptions { DataDir = dir, Postgres = _postgres.ConnectionString });
        var database = new PostgresDatabase(_postgres.ConnectionString);
        _databases.Add(database);
        var log = new PostgresCommitLog(database, new CollabMetrics(_meters.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()), NullLogger<PostgresCommitLog>.Instance);
        log.Recover(null!);
        return (new PostgresStorage(new DocumentCatalog(options), database, log), log);
    }

    private static StoredOp Op(int version, int at, string text, string client = "c") => new(version, TextOperation.Insert(at, text), client, version, 1000 + version);

    /// <summary>What an actor does for one batch: the copy first, then PostgreSQL; the error PostgreSQL gave, if any.</summary>
    private static Task<Exception?> CommitAsync(IDocumentStore store, PostgresCommitLog log, string docId, long epoch, int length, params StoredOp[] ops) =>
        CommitAsync(store, log, docId, epoch, length, null, ops);

    private static async Task<Exception?> CommitAsync(IDocumentStore store, PostgresCommitLog log, string docId, long epoch, int length, SnapshotChunk? chunk, params StoredOp[] ops)
    {
        store.Commit(ops, length, chunk is null ? [] : [chunk], new FenceToken(epoch));
        var done = new TaskCompletionSource<Exception?>();
        log.Append(new LogBatch(docId, store.Incarnation, epoch, ops) { Length = length, Snapshot = chunk }, e => done.SetResult(e));
        return await done.Task;
    }

    [Fact]
    public async Task ASnapshotHoldingNulComesBackExactly()
    {
        var (a, logA) = Node();
        var (b, _) = Node();
        var text = "a\0b\uD83D\uDE00c"; // PostgreSQL's text type refuses U+0000
        var store = a.Create("nul");
        Assert.Null(await CommitAsync(store, logA, "nul", 0, text.Length, new SnapshotChunk(1, 0, text[..2], false, text.Length), new StoredOp(1, TextOperation.Insert(0, text), "c", 1, 1001)));
        Assert.Null(await CommitAsync(store, logA, "nul", 0, text.Length + 1, new SnapshotChunk(1, 1, text[2..], true, text.Length), Op(2, text.Length, "!")));
        store.Dispose();

        // Node B's copy is made from PostgreSQL: the snapshot at version 1, then op 2 replayed onto it.
        using var copy = b.OpenToLoad("nul")!;
        var loaded = copy.Load();
        Assert.Equal(1, loaded.SnapshotVersion);
        Assert.Equal(text + "!", loaded.Content.PlainText());
    }

    [Fact]
    public async Task ARichTextDocumentIsRichTextOnEveryNodeWithItsSnapshotAndDeltas()
    {
        var (a, logA) = Node();
        var (b, _) = Node();
        var rich = CollabServer.Documents.Types.DocumentType.RichText;
        StoredOp Delta(int version, string json) => new(version, rich.ParseOp(json), "c", version, 1000 + version);
        var store = a.Create("rich", rich);
        var first = rich.ParseSnapshot("""[{"insert":"ab\n"}]""");
        Assert.Null(await CommitAsync(store, logA, "rich", 0, 3, new SnapshotChunk(1, 0, first.Snapshot.ToString(), true, 3), Delta(1, """[{"insert":"ab\n"}]""")));
        Assert.Null(await CommitAsync(store, logA, "rich", 0, 3, Delta(2, """[{"retain":2,"attributes":{"italic":true}}]""")));
        store.Dispose();

        // Node B's copy is made from PostgreSQL, whose row says the type.
        using var copy = b.OpenToLoad("rich")!;
        Assert.Equal(rich, copy.Type);
        var loaded = copy.Load();
        Assert.Equal((2, 1, "ab\n"), (loaded.Version, loaded.SnapshotVersion, loaded.Content.PlainText()));
        Assert.Equal("""[{"insert":"ab","attributes":{"italic":true}},{"insert":"\n"}]""", loaded.Content.Snapshot.ToString());
    }

    [Fact]
    public async Task ACopyThatTookABatchPostgresNeverDidIsMendedAtTheNextLoad()
    {
        var (a, logA) = Node();
        var (b, logB) = Node();

        var storeA = a.Create("doc");
        Assert.Null(await CommitAsync(storeA, logA, "doc", 0, 5, Op(1, 0, "hello")));
        // A crash between the two commits: the copy has version 2, PostgreSQL does not.
        storeA.Commit([Op(2, 5, " lost", "ghost")], 10, [], FenceToken.None);
        storeA.Dispose();

        // Another node loads the document from PostgreSQL alone and writes its own version 2.
        using (var storeB = b.OpenToLoad("doc")!)
        {
            var loaded = storeB.Load();
            Assert.Equal((1, "hello"), (loaded.Version, loaded.Content.PlainText()));
            Assert.Null(await CommitAsync(storeB, logB, "doc", 0, 11, Op(2, 5, " world")));
        }

        // Node A loads it again: its version 2 goes, PostgreSQL's comes in.
        using var again = a.OpenToLoad("doc")!;
        var mended = again.Load();
        Assert.Equal((2, "hello world"), (mended.Version, mended.Content.PlainText()));
        Assert.Null(again.FindOp("ghost", 2));
        Assert.Equal(2, again.FindOp("c", 2));
    }

    [Fact]
    public async Task RetentionFoldsPostgresTooAndANewCopyStartsAtTheOldestVersionKept()
    {
        var (a, logA) = Node();
        var (b, _) = Node();
        var store = a.Create("folded");
        Assert.Null(await CommitAsync(store, logA, "folded", 0, 1, Op(1, 0, "a")));
        Assert.Null(await CommitAsync(store, logA, "folded", 0, 2, Op(2, 1, "b")));
        Assert.Null(await CommitAsync(store, logA, "folded", 0, 3, Op(3, 2, "c")));

        // Folded up to version 2 (committed at 1002): its text "ab" becomes the oldest version kept.
        Assert.True(store.WriteFold(new FoldPlan(2, 1002, Rope.FromString("ab")), FenceToken.None));
        Assert.Equal("3", _postgres.Psql("SELECT string_agg(version::text, ',') FROM collab_ops WHERE doc_id = 'folded'"));
        Assert.Equal("2", _postgres.Psql("SELECT string_agg(version::text, ',') FROM collab_snapshots WHERE doc_id = 'folded'"));
        store.Dispose();

        // A node with an empty disk makes its copy from the fold: the snapshot at 2, then op 3.
        using var copy = b.OpenToLoad("folded")!;
        var loaded = copy.Load();
        Assert.Equal((3, "abc", 2), (loaded.Version, loaded.Content.PlainText(), loaded.SnapshotVersion));
        Assert.Equal([3], copy.ReadOps(0, 3).Select(o => o.Version));
    }

    [Fact]
    public async Task RebuildMakesADataDirectoryFromPostgresThatLoadsEveryDocument()
    {
        var (a, logA) = Node();
        foreach (var (id, text) in new[] { ("one", "hello"), ("two", "a\0b") })
        {
            using var store = a.Create(id);
            Assert.Null(await CommitAsync(store, logA, id, 0, text.Length, new StoredOp(1, TextOperation.Insert(0, text), "c", 1, 1001)));
            Assert.Null(await CommitAsync(store, logA, id, 0, text.Length + 1, Op(2, text.Length, "!")));
        }
        var to = Path.Combine(Directory.CreateTempSubdirectory("collab-pg-rebuild-").FullName, "data");
        _dirs.Add(Path.GetDirectoryName(to)!);

        Assert.Equal(0, CollabServer.Backup.RebuildCommand.Run(["--from-postgres", _postgres.ConnectionString, "--to", to]));
        var catalog = new DocumentCatalog(Options.Create(new CollabOptions { DataDir = to }));
        Assert.Equal(["one", "two"], catalog.ListIds().Order(StringComparer.Ordinal));
        using var two = catalog.OpenExisting("two")!;
        var loaded = two.Load();
        Assert.Equal((2, "a\0b!"), (loaded.Version, loaded.Content.PlainText()));
        // Not into a directory that has something in it.
        Assert.Equal(2, CollabServer.Backup.RebuildCommand.Run(["--from-postgres", _postgres.ConnectionString, "--to", to]));
    }

    [Fact]
    public async Task PostgresRefusesABatchUnderAnEpochANewerOwnerFencedOff()
    {
        var (a, logA) = Node();
        var (b, _) = Node();
        var store = a.Create("fenced");
        Assert.Null(await CommitAsync(store, logA, "fenced", 3, 1, Op(1, 0, "a")));

        using (var newer = b.OpenToLoad("fenced")!)
        {
            Assert.Equal(3, newer.StoredEpoch());
            newer.Fence(new FenceToken(4));
        }

        var refused = await CommitAsync(store, logA, "fenced", 3, 2, Op(2, 1, "b"));
        var fenced = Assert.IsType<FencedException>(refused);
        Assert.Equal(4, fenced.StoredEpoch);
        Assert.Equal("1", _postgres.Psql("SELECT version FROM collab_documents WHERE id = 'fenced'").Trim());
        Assert.Equal("1", _postgres.Psql("SELECT count(*) FROM collab_ops WHERE doc_id = 'fenced'").Trim());
        // A batch that does not follow the stored version is refused too, changing nothing.
        var gap = await CommitAsync(store, logA, "fenced", 5, 3, Op(3, 2, "c"));
        Assert.IsType<CommitLogException>(gap);
        Assert.Equal("1", _postgres.Psql("SELECT count(*) FROM collab_ops WHERE doc_id = 'fenced'").Trim());
        store.Dispose();
    }

    [Fact]
    public async Task ADeletedDocumentsCopyGoesAndANewLifeStartsEmpty()
    {
        var (a, logA) = Node();
        var (b, logB) = Node();
        var first = a.Create("again");
        Assert.Null(await CommitAsync(first, logA, "again", 0, 3, Op(1, 0, "old")));
        first.Dispose();

        using (var owner = b.OpenToLoad("again")!)
        {
            owner.Load(); // the deleting owner has the document loaded, as an actor does
        }
        b.Delete("again");
        Assert.False(a.Exists("again"));
        Assert.Null(a.OpenToLoad("again")); // the stale copy on A goes with it
        Assert.False(File.Exists(Path.Combine(_dirs[0], "docs", "again.db")));

        var second = b.Create("again");
        Assert.Null(await CommitAsync(second, logB, "again", 0, 3, Op(1, 0, "new")));
        second.Dispose();
        using var copy = a.OpenToLoad("again")!;
        Assert.Equal("new", copy.Load().Content.PlainText());
    }

    public void Dispose()
    {
        foreach (var database in _databases)
        {
            database.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        _meters.Dispose();
        _postgres.Dispose();
        foreach (var dir in _dirs)
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
