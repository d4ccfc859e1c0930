namespace CollabServer.Identity;

/// <summary>What a connection may do with one document.</summary>
public enum DocumentAccess
{
    /// <summary>Nothing: a Join answers <c>forbidden</c>.</summary>
    None,

    /// <summary>Join, receive and set presence; a Submit answers <c>forbidden</c>.</summary>
    Read,

    /// <summary>Everything a member can do.</summary>
    Edit,
}

/// <summary>Decides what an identity may do; asked by the hub when a connection joins and by REST on every call.</summary>
public interface IDocumentAccessPolicy
{
    /// <summary>Whether anyone may do anything (no authentication configured).</summary>
    bool Open { get; }

    DocumentAccess For(ConnectionIdentity identity, string docId);

    /// <summary>Whether the identity may list, delete, restore and move documents.</summary>
    bool IsAdmin(ConnectionIdentity identity);
}

/// <summary>No access control: every connection may do everything (the server runs open).</summary>
public sealed class OpenAccessPolicy : IDocumentAccessPolicy
{
    public bool Open => true;

    public DocumentAccess For(ConnectionIdentity identity, string docId) => DocumentAccess.Edit;

    public bool IsAdmin(ConnectionIdentity identity) => true;
}
