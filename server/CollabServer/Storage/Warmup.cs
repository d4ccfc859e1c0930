using Collab.Ot;
using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>
/// Runs the load path once on a throwaway database before the server takes requests, so the
/// first client after a start does not pay for JIT compilation and SQLite's first use (measured:
/// 55–70 ms for the first document, 1–7 ms for the next).
/// </summary>
internal static class Warmup
{
    public static void Run(SyncMode sync)
    {
        var dir = Directory.CreateTempSubdirectory("collab-warmup-");
        try
        {
            var path = Path.Combine(dir.FullName, "warmup.db");
            using (var store = SqliteDocumentStore.Create(path, sync))
            {
                var op = TextOperation.Insert(0, "warm");
                store.Commit([new StoredOp(1, new TextOp(op), "warmup", 1, 0)], 4, [new SnapshotChunk(1, 0, op.Apply(""), true, 4)], new FenceToken(1));
                store.FindOp("warmup", 1);
                store.MaxOpId("warmup");
            }
            using (var store = SqliteDocumentStore.OpenExisting(path, sync)!)
            {
                store.Load();
                store.ReadOps(0, 1);
            }
            SqliteDocumentStore.ReadSummary(path);
            using (var history = HistoryReader.Open(path)!)
            {
                history.VersionAt(history.CreatedAtMs);
                history.TextAt(history.Version);
                history.Entries(history.Version + 1, 10, 60_000, 10_000, 100, out _);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
