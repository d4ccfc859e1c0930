using CollabServer.Documents.Types;

namespace CollabServer.Storage;

/// <summary>
/// Storage in the writer's role: what a document's owning actor needs to open, create, delete or
/// set aside its database. Only actors use it; reads beside them (history, listing, backup) and
/// maintenance planning go through <see cref="DocumentCatalog"/> on read-only connections.
/// <see cref="DocumentCatalog"/> is the SQLite implementation, <see cref="InMemoryStorage"/> the
/// one for tests that need no disk.
/// </summary>
public interface IDocumentStorage
{
    /// <summary>Whether the document has storage (a quarantined one counts).</summary>
    bool Exists(string docId);

    /// <summary>Whether the document's storage was set aside as damaged.</summary>
    bool IsQuarantined(string docId);

    /// <summary>Sets a damaged document's storage aside, unchanged.</summary>
    void Quarantine(string docId);

    /// <summary>Opens the document's store; null when it has none.</summary>
    IDocumentStore? OpenExisting(string docId);

    /// <summary>Opens the document's store to load it (once per actor, before its claim); null when it has none.</summary>
    IDocumentStore? OpenToLoad(string docId) => OpenExisting(docId);

    /// <summary>Creates the document's store, for a document of <paramref name="type"/> (null: text).</summary>
    IDocumentStore Create(string docId, DocumentType? type = null);

    /// <summary>Deletes a closed document's storage.</summary>
    void Delete(string docId);
}
