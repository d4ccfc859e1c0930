using Collab.Ot;
using CollabServer.Storage;

namespace CollabServer.Tests.History;

/// <summary><see cref="HistoryReader"/> on a database written with chosen op times, so grouping by time is deterministic.</summary>
public sealed class HistoryReaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("collab-history-").FullName;

    private string Path => System.IO.Path.Combine(_dir, "h.db");

    /// <summary>Writes one op per (author, time), each inserting "x" at 0.</summary>
    private void Write(params (string Author, long AtMs)[] ops)
    {
        using var store = SqliteDocumentStore.Create(Path, SyncMode.Off);
        var length = 0;
        var stored = ops.Select((o, i) => new StoredOp(i + 1, TextOperation.Insert(0, "x"), o.Author, i + 1, o.AtMs)).ToList();
        foreach (var op in stored)
        {
            store.Commit([op], ++length, [], FenceToken.None);
        }
    }

    private static (int, int, string)[] Shape(List<HistoryEntry> entries) => entries.Select(e => (e.Version, e.FromVersion, e.ClientId)).ToArray();

    [Fact]
    public void EditsOfOneAuthorWithinTheGapAreOneEntry()
    {
        Write(
            ("a", 1_000), ("a", 61_000), ("a", 121_001), // 3 is 60.001 s after 2: a new entry
            ("sub\u001fb", 121_500), ("other\u001fb", 121_600), // same clientId, another subject: two entries
            ("a", 121_700));
        using var history = HistoryReader.Open(Path)!;
        var entries = history.Entries(7, 100, gapMs: 60_000, span: 10_000, maxRows: 1000, out var more);
        Assert.Equal([(6, 6, "a"), (5, 5, "b"), (4, 4, "b"), (3, 3, "a"), (2, 1, "a")], Shape(entries));
        Assert.False(more);
        Assert.Equal(121_001, entries[3].At.ToUnixTimeMilliseconds());
    }

    [Fact]
    public void EntriesNeverSpanAMultipleOfTheSpanAndAPageEndsAtAnEntrysEnd()
    {
        Write(Enumerable.Range(0, 10).Select(i => ("a", 1_000L + i)).ToArray());
        using var history = HistoryReader.Open(Path)!;
        Assert.Equal([(10, 9, "a"), (8, 5, "a"), (4, 1, "a")], Shape(history.Entries(11, 100, 60_000, span: 4, maxRows: 1000, out var more)));
        Assert.False(more);
        // Starting inside an entry gives its older part; the entries further back are the same.
        Assert.Equal([(7, 5, "a"), (4, 1, "a")], Shape(history.Entries(8, 100, 60_000, span: 4, maxRows: 1000, out _)));
        Assert.Equal([(10, 9, "a")], Shape(history.Entries(11, 1, 60_000, span: 4, maxRows: 1000, out more)));
        Assert.True(more);
        // After 3 rows the page ends at the end of the entry being read.
        Assert.Equal([(10, 9, "a"), (8, 5, "a")], Shape(history.Entries(11, 100, 60_000, span: 4, maxRows: 3, out more)));
        Assert.True(more);
    }

    [Fact]
    public void VersionAtAndCreation()
    {
        Write(("a", 5_000), ("a", 5_000), ("a", 7_000));
        using var history = HistoryReader.Open(Path)!;
        Assert.Equal(3, history.Version);
        Assert.Equal(5_000, history.CreatedAtMs); // the first op is older than the file's creation time
        Assert.Null(history.VersionAt(4_999));
        Assert.Equal(2, history.VersionAt(5_000));
        Assert.Equal(2, history.VersionAt(6_999));
        Assert.Equal(3, history.VersionAt(7_000));
        Assert.Equal(3, history.VersionAt(long.MaxValue / 2));
        Assert.Equal("xx", history.TextAt(2));
        Assert.Equal("", history.TextAt(0));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
