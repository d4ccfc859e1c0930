using Collab.Ot;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabServer.Tests.Storage;

/// <summary>The catalog and the SQLite store on real files in a temporary data directory.</summary>
public sealed class DocumentCatalogTests : IDisposable
{
    private readonly string _dataDir = Directory.CreateTempSubdirectory("collab-catalog-").FullName;
    private readonly DocumentCatalog _catalog;

    public DocumentCatalogTests() =>
        _catalog = new DocumentCatalog(Options.Create(new CollabOptions { DataDir = _dataDir, Sync = SyncMode.Off }));

    private static StoredOp Op(int version, string text) => new(version, TextOperation.Insert(0, text), "c", version, 1000 + version);

    [Fact]
    public void ADocumentIsCreatedListedSummarizedAndDeleted()
    {
        Assert.False(_catalog.Exists("notes"));
        Assert.Null(_catalog.OpenExisting("notes"));
        using (var store = _catalog.Create("notes"))
        {
            store.Commit([Op(1, "b"), Op(2, "a")], 2, [], FenceToken.None);
        }
        Assert.True(_catalog.Exists("notes"));
        Assert.Equal(["notes"], _catalog.ListIds());
        Assert.Equal(new DocumentSummary("notes", 2, 2, DateTimeOffset.FromUnixTimeMilliseconds(1002)), _catalog.ReadSummary("notes"));
        using (var store = _catalog.OpenExisting("notes")!)
        {
            var loaded = store.Load();
            Assert.Equal((2, "ab"), (loaded.Version, loaded.Content.PlainText()));
        }
        _catalog.Delete("notes");
        Assert.False(_catalog.Exists("notes"));
        Assert.Empty(_catalog.ListIds());
    }

    [Fact]
    public void ASnapshotWhoseChunkBoundaryFallsInsideASurrogatePairLoadsExactly()
    {
        // An emoji (two UTF-16 code units) across the first 64 Ki boundary: SQLite keeps text as
        // UTF-8, which cannot hold half of it, so no chunk may end between the two halves.
        var text = new string('x', SqliteDocumentStore.SnapshotChunkLength - 1) + "\uD83D\uDE00" + new string('y', 10);
        var chunks = SqliteDocumentStore.ChunksOf(1, Rope.FromString(text));
        Assert.Equal(text, string.Concat(chunks.Select(c => c.Text)));
        Assert.All(chunks, c => Assert.False(char.IsHighSurrogate(c.Text[^1]), $"chunk {c.Seq} ends inside a surrogate pair"));
        using (var store = _catalog.Create("emoji"))
        {
            store.Commit([new StoredOp(1, TextOperation.Insert(0, text), "c", 1, 1001)], text.Length, [], FenceToken.None);
            store.WriteSnapshot(1, Rope.FromString(text), FenceToken.None);
        }
        using var again = _catalog.OpenExisting("emoji")!;
        var loaded = again.Load();
        Assert.Equal(1, loaded.SnapshotVersion);
        Assert.Equal(text, loaded.Content.PlainText());
    }

    [Fact]
    public void FilesThatAreNotDocumentsAreNotListedAndAnUnreadableOneHasNoSummary()
    {
        var docs = Directory.CreateDirectory(Path.Combine(_dataDir, "docs")).FullName;
        File.WriteAllText(Path.Combine(docs, ".hidden.db"), "");
        File.WriteAllText(Path.Combine(docs, "notes.txt"), "");
        File.WriteAllText(Path.Combine(docs, "broken.db"), "this is not a database");
        Assert.Equal(["broken"], _catalog.ListIds());
        Assert.Null(_catalog.ReadSummary("broken"));
    }

    [Fact]
    public void ACommitWithAnOlderEpochThanTheDocumentHasSeenIsFencedOffAndWritesNothing()
    {
        using var store = _catalog.Create("fenced");
        store.Commit([Op(1, "a")], 1, [], new FenceToken(2));
        Assert.Throws<FencedException>(() => store.Commit([Op(2, "b")], 2, [], new FenceToken(1)));
        Assert.Equal([1], store.ReadOps(0, int.MaxValue).Select(o => o.Version));
        // The same or a newer epoch writes; the newer one fences off the older from then on.
        store.Commit([Op(2, "b")], 2, [], new FenceToken(2));
        store.Commit([Op(3, "c")], 3, [], new FenceToken(3));
        Assert.Throws<FencedException>(() => store.Commit([Op(4, "d")], 4, [], new FenceToken(2)));
        Assert.Equal(3, store.Load().Version);
    }

    public void Dispose() => Directory.Delete(_dataDir, recursive: true);
}
