namespace CollabServer.Documents;

/// <summary>
/// Where a document's actor is in its life. One value, changed only on the loop:
/// <code>
/// Loading ─▶ Live ⇄ Idle ─┐
///              │          ├─▶ Closing   (queue closed; queued work goes to the next actor)
///              ├─▶ Stopping ─┘
///              ├─▶ Deleted              (files gone; the next request starts a new actor)
///              └─▶ Moved                (another node owns it; the next request is redirected)
/// </code>
/// </summary>
internal enum DocumentState
{
    /// <summary>Reading the snapshot and the ops after it.</summary>
    Loading,

    /// <summary>Taking work.</summary>
    Live,

    /// <summary>No members for <see cref="CollabOptions.IdleTimeout"/>: closes once nothing is in flight, unless a join comes first.</summary>
    Idle,

    /// <summary>The server is stopping: commit what is sequenced, then close.</summary>
    Stopping,

    /// <summary>The queue is closed; work still in it is retried on the document's next actor.</summary>
    Closing,

    /// <summary>The document was deleted; the actor closes and a new one starts from nothing.</summary>
    Deleted,

    /// <summary>
    /// This node owns the document no more (moved, or its lease lost): members were sent away,
    /// and any work that comes after goes to the next actor, which redirects or forwards it.
    /// </summary>
    Moved,
}
