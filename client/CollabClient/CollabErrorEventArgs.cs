namespace Collab.Client;

/// <summary>An error the document recovered from on its own, for example a rejected submission.</summary>
public sealed class CollabErrorEventArgs : EventArgs
{
    /// <summary>Creates the arguments.</summary>
    public CollabErrorEventArgs(CollabException error, bool localChangesDiscarded)
    {
        Error = error;
        LocalChangesDiscarded = localChangesDiscarded;
    }

    /// <summary>The error, with its protocol code.</summary>
    public CollabException Error { get; }

    /// <summary>
    /// Whether the document dropped its unconfirmed local changes to recover (the server refused
    /// them) and is re-synchronizing with the server's text.
    /// </summary>
    public bool LocalChangesDiscarded { get; }
}
