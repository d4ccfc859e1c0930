using System.Diagnostics;

namespace CollabServer.Storage;

/// <summary>
/// A document's database as its actor holds it: open only while the document is written. A node
/// holds thousands of joined documents, and an open SQLite connection (page cache, WAL index)
/// costs ~200 KiB each, so the database is closed when nothing was written for
/// <see cref="CollabOptions.DatabaseIdleTimeout"/> and opened again by the next write; the text
/// stays in the actor's memory. Used only on the actor's loop.
/// </summary>
internal sealed class DocumentDatabase(IDocumentStorage storage, string docId, TimeSpan idleTimeout, IDocumentRedirects? redirects = null) : IDisposable
{
    private IDocumentStore? _store;
    private long _lastWrite; // long ago: a database opened only to load or create is closed at once

    /// <summary>Whether the document has a database (it may be closed).</summary>
    public bool Exists { get; private set; }

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
                redirects?.Remove(docId);
            }
            _store = Exists
                ? storage.OpenExisting(docId) ?? throw new FileNotFoundException($"The database of '{docId}' is gone.")
                : storage.Create(docId);
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

    /// <summary>Closes the database and deletes the document's files.</summary>
    public void Delete()
    {
        Close();
        storage.Delete(docId);
        Exists = false;
    }

    private void Close()
    {
        _store?.Dispose();
        _store = null;
    }

    public void Dispose() => Close();
}
