namespace CollabServer.Identity;

/// <summary>
/// What a token's <c>scope</c> claim grants (PROTOCOL §8): space-separated
/// <c>doc:PATTERN:edit</c>, <c>doc:PATTERN:read</c> and <c>collab:admin</c>, where PATTERN is an
/// exact document id or a prefix ending in <c>*</c>. Anything else in the scope is ignored.
/// <c>collab:admin</c> grants edit on every document as well as the admin-only REST calls.
/// </summary>
public sealed class Grants
{
    private readonly List<(string Pattern, DocumentAccess Access)> _documents = [];

    private Grants()
    {
    }

    /// <summary>Nothing at all.</summary>
    public static readonly Grants None = new();

    public bool IsAdmin { get; private init; }

    public static Grants Parse(string? scope)
    {
        if (string.IsNullOrWhiteSpace(scope))
        {
            return None;
        }
        var admin = false;
        var grants = new Grants();
        foreach (var item in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (item == "collab:admin")
            {
                admin = true;
                continue;
            }
            var parts = item.Split(':');
            if (parts.Length != 3 || parts[0] != "doc" || parts[1].Length == 0)
            {
                continue;
            }
            var access = parts[2] switch
            {
                "edit" => DocumentAccess.Edit,
                "read" => DocumentAccess.Read,
                _ => DocumentAccess.None,
            };
            if (access is not DocumentAccess.None)
            {
                grants._documents.Add((parts[1], access));
            }
        }
        return admin ? new Grants { IsAdmin = true } : grants;
    }

    /// <summary>The most this grants on <paramref name="docId"/>.</summary>
    public DocumentAccess For(string docId)
    {
        if (IsAdmin)
        {
            return DocumentAccess.Edit;
        }
        var best = DocumentAccess.None;
        foreach (var (pattern, access) in _documents)
        {
            if (access > best && Matches(pattern, docId))
            {
                best = access;
            }
        }
        return best;
    }

    private static bool Matches(string pattern, string docId) =>
        pattern.EndsWith('*')
            ? docId.StartsWith(pattern.AsSpan(0, pattern.Length - 1), StringComparison.Ordinal)
            : string.Equals(pattern, docId, StringComparison.Ordinal);
}

/// <summary>Access from a token's grants (the server runs with authentication).</summary>
public sealed class ScopeAccessPolicy : IDocumentAccessPolicy
{
    public bool Open => false;

    public DocumentAccess For(ConnectionIdentity identity, string docId) => identity.Grants.For(docId);

    public bool IsAdmin(ConnectionIdentity identity) => identity.Grants.IsAdmin;
}
