using System.Collections.Concurrent;
using System.Text;
using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>
/// Storage in memory, for actor tests that need neither a disk nor a web host: each document is an
/// <see cref="InMemoryDocumentStore"/> that keeps its ops, snapshot and epoch across opens (as a
/// file would) until it is deleted. <see cref="Fail"/> makes every commit of one document fail,
/// as a full or broken disk would.
/// </summary>
public sealed class InMemoryStorage : IDocumentStorage
{
    private readonly ConcurrentDictionary<string, InMemoryDocumentStore.Data> _documents = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _quarantined = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Exception> _failures = new(StringComparer.Ordinal);

    public bool Exists(string docId) => _documents.ContainsKey(docId) || _quarantined.ContainsKey(docId);

    public bool IsQuarantined(string docId) => _quarantined.ContainsKey(docId);

    public void Quarantine(string docId)
    {
        _documents.TryRemove(docId, out _);
        _quarantined[docId] = true;
    }

    public IDocumentStore? OpenExisting(string docId) =>
        _documents.TryGetValue(docId, out var data) ? new InMemoryDocumentStore(data, () => _failures.GetValueOrDefault(docId)) : null;

    public IDocumentStore Create(string docId, DocumentType? type = null) =>
        new InMemoryDocumentStore(_documents.GetOrAdd(docId, _ => new InMemoryDocumentStore.Data { Type = type ?? DocumentType.Text }), () => _failures.GetValueOrDefault(docId));

    public void Delete(string docId)
    {
        _documents.TryRemove(docId, out _);
        _quarantined.TryRemove(docId, out _);
    }

    /// <summary>From now on every write to <paramref name="docId"/> throws <paramref name="error"/>; null heals it.</summary>
    public void Fail(string docId, Exception? error)
    {
        if (error is null)
        {
            _failures.TryRemove(docId, out _);
        }
        else
        {
            _failures[docId] = error;
        }
    }

    /// <summary>Records a newer owner's epoch in the document, as another node's claim would.</summary>
    public void WriteEpoch(string docId, long epoch) => _documents.GetOrAdd(docId, _ => new InMemoryDocumentStore.Data()).Epoch = epoch;
}

/// <summary>One document's <see cref="IDocumentStore"/> in memory, with the same rules as the SQLite one: versions follow each other, a commit is all or nothing, the fence is checked in it.</summary>
public sealed class InMemoryDocumentStore : IDocumentStore
{
    private readonly Data _data;
    private readonly Func<Exception?> _failure;

    internal InMemoryDocumentStore(Data data, Func<Exception?> failure)
    {
        _data = data;
        _failure = failure;
    }

    /// <summary>What a document holds; shared by every store opened on it.</summary>
    internal sealed class Data
    {
        public SortedList<int, StoredOp> Ops { get; } = [];

        public (int Version, string Text)? Snapshot { get; set; }

        public Dictionary<int, StringBuilder> PartialSnapshots { get; } = [];

        public long Epoch { get; set; }

        public int RetainedFrom { get; set; } = -1;

        public long Incarnation { get; } = Random.Shared.NextInt64(1, long.MaxValue);

        public DocumentType Type { get; init; } = DocumentType.Text;
    }

    public long Incarnation => _data.Incarnation;

    public DocumentType Type => _data.Type;

    public int Replay(IReadOnlyList<LogBatch> batches)
    {
        lock (_data)
        {
            var version = _data.Ops.Count > 0 ? _data.Ops.Keys[^1] : 0;
            var applied = 0;
            foreach (var batch in batches.Where(b => b.Incarnation == Incarnation && b.Epoch >= _data.Epoch))
            {
                foreach (var op in batch.Ops.Where(op => op.Version > version))
                {
                    if (op.Version != version + 1)
                    {
                        break;
                    }
                    _data.Ops.Add(op.Version, op);
                    version = op.Version;
                    applied++;
                }
            }
            return applied;
        }
    }

    public LoadedDocument Load()
    {
        lock (_data)
        {
            var content = _data.Snapshot is { } snapshot ? Type.ParseSnapshot(snapshot.Text) : Type.Empty;
            var snapshotVersion = _data.Snapshot?.Version ?? 0;
            var ops = ReadOps(snapshotVersion, int.MaxValue);
            foreach (var op in ops)
            {
                content = op.Op.Apply(content);
            }
            return new LoadedDocument(content, ops.Count > 0 ? ops[^1].Version : snapshotVersion, snapshotVersion, ops);
        }
    }

    public List<StoredOp> ReadOps(int after, int upTo, int limit = int.MaxValue)
    {
        lock (_data)
        {
            return [.. _data.Ops.Values.Where(op => op.Version > after && op.Version <= upTo).Take(limit)];
        }
    }

    public int? FindOp(string clientId, long opId)
    {
        lock (_data)
        {
            return _data.Ops.Values.FirstOrDefault(op => op.ClientId == clientId && op.OpId == opId)?.Version;
        }
    }

    public long MaxOpId(string clientId)
    {
        lock (_data)
        {
            return _data.Ops.Values.Where(op => op.ClientId == clientId).Select(op => op.OpId).DefaultIfEmpty(long.MinValue).Max();
        }
    }

    public void Commit(IReadOnlyList<StoredOp> ops, int length, IReadOnlyList<SnapshotChunk> snapshot, FenceToken fence)
    {
        lock (_data)
        {
            Write(fence);
            var last = _data.Ops.Count > 0 ? _data.Ops.Keys[^1] : _data.Snapshot?.Version ?? 0;
            foreach (var op in ops)
            {
                if (op.Version != ++last)
                {
                    throw new InvalidOperationException($"version {op.Version} does not follow {last - 1}");
                }
            }
            foreach (var op in ops)
            {
                _data.Ops.Add(op.Version, op);
            }
            foreach (var chunk in snapshot)
            {
                var text = _data.PartialSnapshots.TryGetValue(chunk.Version, out var sb) ? sb : _data.PartialSnapshots[chunk.Version] = new StringBuilder();
                text.Append(chunk.Text);
                if (chunk.IsLast)
                {
                    _data.Snapshot = (chunk.Version, text.ToString());
                    _data.PartialSnapshots.Remove(chunk.Version);
                }
            }
        }
    }

    public void WriteSnapshot(int version, DocContent content, FenceToken fence)
    {
        lock (_data)
        {
            Write(fence);
            _data.Snapshot = (version, content.Snapshot.ToString());
        }
    }

    public void Fence(FenceToken fence)
    {
        lock (_data)
        {
            Write(fence);
        }
    }

    public long StoredEpoch()
    {
        lock (_data)
        {
            return _data.Epoch;
        }
    }

    public bool WriteFold(FoldPlan plan, FenceToken fence)
    {
        lock (_data)
        {
            Write(fence);
            if (!_data.Ops.TryGetValue(plan.Boundary, out var op) || op.CreatedAtMs != plan.BoundaryAtMs || _data.Ops.Keys[^1] == plan.Boundary)
            {
                return false;
            }
            _data.RetainedFrom = plan.Boundary;
            if (_data.Snapshot is not { } newest || newest.Version < plan.Boundary)
            {
                _data.Snapshot = (plan.Boundary, plan.Content.Snapshot.ToString());
            }
            return true;
        }
    }

    public int DeleteFolded(int boundary, int limit, FenceToken fence)
    {
        lock (_data)
        {
            Write(fence);
            var gone = _data.Ops.Keys.Where(v => v <= Math.Min(boundary, _data.RetainedFrom)).Take(limit).ToList();
            foreach (var version in gone)
            {
                _data.Ops.Remove(version);
            }
            return gone.Count;
        }
    }

    /// <summary>Before any write: the injected failure, then the fence, as the SQLite store checks it in the transaction.</summary>
    private void Write(FenceToken fence)
    {
        if (_failure() is { } error)
        {
            throw error;
        }
        if (fence.Check(_data.Epoch))
        {
            _data.Epoch = fence.Epoch;
        }
    }

    public void Dispose()
    {
    }
}
