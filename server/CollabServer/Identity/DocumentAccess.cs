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

/// <summary>Decides what an identity may do with a document; asked by the hub when a connection joins.</summary>
public interface IDocumentAccessPolicy
{
    DocumentAccess For(ConnectionIdentity identity, string docId);
}

/// <summary>No access control: every connection may edit every document (the server runs open).</summary>
public sealed class OpenAccessPolicy : IDocumentAccessPolicy
{
    public DocumentAccess For(ConnectionIdentity identity, string docId) => DocumentAccess.Edit;
}
