using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Collab;
using CollabServer.Errors;
using Microsoft.Extensions.Options;

namespace CollabServer.Storage;

/// <summary>
/// Where renamed documents went: <c>DELETE /api/docs/{id}?movedTo=NEW</c> records that
/// <c>{id}</c> moved to <c>NEW</c> (PROTOCOL §7), the page route <c>/d/{id}</c> redirects there and
/// REST's 404 for <c>{id}</c> names it. A document made again under <c>{id}</c> (its first write)
/// removes the record, so a document that exists never redirects. Kept where the documents are, so
/// every node of a cluster sees it: <see cref="FileRedirects"/> in the data directory (one node, or
/// nodes sharing it), <see cref="Postgres.PostgresRedirects"/> with PostgreSQL,
/// <see cref="InMemoryRedirects"/> for tests.
/// </summary>
public interface IDocumentRedirects
{
    /// <summary>The id <paramref name="docId"/> moved to, or null.</summary>
    string? Get(string docId);

    /// <summary>Records that <paramref name="docId"/> moved to <paramref name="movedTo"/>, replacing any earlier record; durable when it returns.</summary>
    void Set(string docId, string movedTo);

    /// <summary>Forgets where <paramref name="docId"/> moved (nothing if it never did).</summary>
    void Remove(string docId);
}

/// <summary>What the redirect records say, followed.</summary>
public static class Redirects
{
    /// <summary>The most records followed from one id: a rename of a rename of a rename… is found, a long or looping chain is not.</summary>
    public const int MaxHops = 5;

    /// <summary>
    /// Where <paramref name="docId"/> leads: its record's target, followed on (at most
    /// <see cref="MaxHops"/> records) while the target does not exist and has a record of its own.
    /// Null when it has no record, or the records loop back. A target that does not exist (deleted
    /// after the rename) is still the answer: opening it opens an empty document.
    /// </summary>
    public static string? Resolve(IDocumentRedirects redirects, string docId, Func<string, bool> exists)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal) { docId };
        string? target = null;
        var current = docId;
        for (var hop = 0; hop < MaxHops; hop++)
        {
            if (redirects.Get(current) is not { } next)
            {
                break;
            }
            if (!seen.Add(next))
            {
                return null; // a loop: nowhere to go
            }
            target = current = next;
            if (exists(next))
            {
                break;
            }
        }
        return target;
    }
}

/// <summary>
/// Redirect records as files in the data directory, <c>redirects/{id}</c> holding the target id
/// (ids are safe file names, <see cref="DocumentId"/>): written to a temporary file, synced and
/// renamed, so a record is whole or absent, and durable once the directory is synced. Nodes
/// sharing the data directory share them.
/// </summary>
public sealed class FileRedirects(IOptions<CollabOptions> options) : IDocumentRedirects
{
    private string Dir => Path.Combine(options.Value.DataDir, "redirects");

    private string PathFor(string docId)
    {
        Debug.Assert(DocumentId.IsValid(docId));
        return Path.Combine(Dir, docId);
    }

    public string? Get(string docId)
    {
        if (!File.Exists(PathFor(docId)))
        {
            return null; // the common case, without the cost of an exception
        }
        try
        {
            var target = File.ReadAllText(PathFor(docId), Encoding.UTF8).Trim();
            return DocumentId.IsValid(target) ? target : null;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public void Set(string docId, string movedTo)
    {
        try
        {
            Directory.CreateDirectory(Dir);
            var path = PathFor(docId);
            // A dot first: never a document id, so never read as a record.
            var temporary = Path.Combine(Dir, $".{docId}.{Guid.NewGuid():N}.tmp");
            using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                file.Write(Encoding.UTF8.GetBytes(movedTo));
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
            FileSync.Directory(Dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw CollabError.Unavailable($"where document '{docId}' moved could not be recorded ({ex.Message}); try again");
        }
    }

    public void Remove(string docId)
    {
        var path = PathFor(docId);
        if (!File.Exists(path))
        {
            return;
        }
        try
        {
            File.Delete(path);
            FileSync.Directory(Dir);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw CollabError.Unavailable($"the old redirect of document '{docId}' could not be removed ({ex.Message}); try again");
        }
    }
}

/// <summary>Redirect records in memory: for tests, and a registry made without storage for them.</summary>
public sealed class InMemoryRedirects : IDocumentRedirects
{
    private readonly ConcurrentDictionary<string, string> _records = new(StringComparer.Ordinal);

    public string? Get(string docId) => _records.GetValueOrDefault(docId);

    public void Set(string docId, string movedTo) => _records[docId] = movedTo;

    public void Remove(string docId) => _records.TryRemove(docId, out _);
}
