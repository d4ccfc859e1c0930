using Collab.Ot;

namespace Collab.Client;

/// <summary>Describes one change of a document's local text.</summary>
public sealed class DocumentChangedEventArgs : EventArgs
{
    /// <summary>Creates the arguments.</summary>
    public DocumentChangedEventArgs(TextOperation operation, bool isLocal, string? clientId)
    {
        Operation = operation;
        IsLocal = isLocal;
        ClientId = clientId;
    }

    /// <summary>
    /// The operation as applied to the local text: applying the operations of successive events in
    /// order to the text before the first one gives the text after the last one.
    /// </summary>
    public TextOperation Operation { get; }

    /// <summary>Whether the change is an edit made through this document object.</summary>
    public bool IsLocal { get; }

    /// <summary>
    /// The client that made a remote change; null for a local change and for a change that brings
    /// the text in line with the server's after a reset or a resume that returned the whole text.
    /// </summary>
    public string? ClientId { get; }
}
