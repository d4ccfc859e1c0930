using Collab.Ot;

namespace Collab.Client;

/// <summary>Describes one change of a rich-text document's local contents.</summary>
public sealed class RichTextChangedEventArgs : EventArgs
{
    /// <summary>Creates the arguments.</summary>
    public RichTextChangedEventArgs(Delta change, bool isLocal, string? clientId)
    {
        Change = change;
        IsLocal = isLocal;
        ClientId = clientId;
    }

    /// <summary>
    /// The change as applied to the local contents (a Quill delta of retains, inserts and deletes,
    /// with attributes): composing the changes of successive events in order onto the contents
    /// before the first one gives the contents after the last one.
    /// </summary>
    public Delta Change { get; }

    /// <summary>Whether the change is an edit made through this document object.</summary>
    public bool IsLocal { get; }

    /// <summary>
    /// The client that made a remote change; null for a local change and for a change that brings
    /// the contents in line with the server's after a reset or a resume that returned them whole.
    /// </summary>
    public string? ClientId { get; }
}
