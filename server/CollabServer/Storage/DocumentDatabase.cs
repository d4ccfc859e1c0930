using System.Diagnostics;
using CollabServer.Errors;
using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>
/// A document's database as its actor holds it: open only while the document is written. A node
/// holds thousands of joined documents, and an open SQLite connection (page cache, WAL index)
/// costs ~200 KiB each, so the database is closed when nothing was written for
/// <see cref="CollabOptions.DatabaseIdleTimeout"/> and opened again by the next write; the text
/// stays in the actor's memory. Used only on the actor's loop.
/// </summary>
internal sealed class DocumentDatabase(IDocumentStorage storage, string docId, TimeSpan idleTimeout, IDocumentRedirects redirects) : IDisposable
{
    private IDocumentStore? _store;
    private long _lastWrite; // long ago: a database opened only to load or create is closed at once

    /// <summary>Whether the document has a database (it may be closed).</summary>
    public bool Exists { get; private set; }

    /// <summary>The type the database is created for, by the document's first write.</summary>
    public DocumentType Type { get; set; } = DocumentType.Text;

    /// <summary>Opens the database to load the document; null when there is none.</summary>
    public IDocumentStore? OpenForLoad()
    {
        _store = storage.OpenToLoad(docId);
        Exists = _store is not null;
        return _store;
    }

    /// <summary>
    /// The open database, opening it, or creating the document, first. A document made (again)
    /// redirects no more: its redirect record goes first, so if that fails nothing is made.
    /// </summary>
    public IDocumentStore Open()
    {
        if (_store is null)
        {
            if (!Exists)
            {
                redirects.Remove(docId);
            }
            _store = Exists
                ? storage.OpenExisting(docId) ?? throw new FileNotFoundException($"The database of '{docId}' is gone.")
                : storage.Create(docId, Type);
            Exists = true;
        }
        return _store;
    }

    /// <summary>The open database for reads, or null when the document has none.</summary>
    public IDocumentStore? OpenIfExists() => Exists ? Open() : null;

    /// <summary>Notes a write, which keeps the database open for a while.</summary>
    public void Written() => _lastWrite = Stopwatch.GetTimestamp();

    /// <summary>Closes the database if nothing was written for a while (<paramref name="busy"/>: a commit still needs it).</summary>
    public void CloseIfUnused(bool busy)
    {
        if (_store is not null && !busy && Stopwatch.GetElapsedTime(_lastWrite) >= idleTimeout)
        {
            Close();
        }
    }

    /// <summary>
    /// The committed ops after <paramref name="after"/> through <paramref name="upTo"/> (at most
    /// <paramref name="limit"/>), with nothing committing; null when the document has no database.
    /// Ops folded by retention make "every op after N" unanswerable: <c>unknown_version</c>, not half an answer.
    /// </summary>
    public List<StoredOp>? ReadCommittedOps(int after, int upTo, int limit)
    {
        if (OpenIfExists() is not { } store)
        {
            return null;
        }
        var ops = store.ReadOps(after, upTo, limit);
        if (ops.Count > 0 && ops[0].Version > after + 1)
        {
            throw CollabError.UnknownVersion($"the ops after version {after} are past the retention period; the oldest version kept is {ops[0].Version - 1}");
        }
        return ops;
    }

    /// <summary>
    /// A retention write on the owner's store, with nothing committing; <paramref name="otherwise"/>
    /// when there is no database or <paramref name="write"/>'s fence is stale (the new owner's
    /// retention does it).
    /// </summary>
    public T RetentionWrite<T>(Func<IDocumentStore, T> write, T otherwise)
    {
        if (OpenIfExists() is not { } store)
        {
            return otherwise;
        }
        try
        {
            return write(store);
        }
        catch (FencedException)
        {
            return otherwise;
        }
        finally
        {
            Written();
        }
    }

    /// <summary>
    /// Deletes the document's files, if it has any, under <paramref name="fence"/>: in a cluster
    /// the files are shared, so only a current owner deletes them, checked the way a commit is
    /// (<see cref="FencedException"/>, changing nothing). With <paramref name="movedTo"/>, the
    /// rename's redirect is recorded first, so a failed record deletes nothing, and a failed delete
    /// takes it back.
    /// </summary>
    public void Delete(FenceToken fence, string? movedTo)
    {
        if (Exists && fence.Epoch != 0)
        {
            Open().Fence(fence);
        }
        if (movedTo is not null)
        {
            redirects.Set(docId, movedTo);
        }
        if (!Exists)
        {
            return;
        }
        try
        {
            Close();
            storage.Delete(docId);
            Exists = false;
        }
        catch (Exception failed) when (movedTo is not null)
        {
            try
            {
                redirects.Remove(docId); // the text is still here: it must not redirect
            }
            catch (Exception forget)
            {
                throw new AggregateException(failed, forget);
            }
            throw;
        }
    }

    private void Close()
    {
        _store?.Dispose();
        _store = null;
    }

    public void Dispose() => Close();
}
