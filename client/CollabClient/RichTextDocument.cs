using Collab.Messages;
using Collab.Ot;

namespace Collab.Client;

/// <summary>
/// An open rich-text document (type <c>rich-text</c>, PROTOCOL §1): its contents are a Quill
/// <see cref="Ot.Delta"/> of inserts with attributes, changed by deltas of retains, inserts and
/// deletes. It syncs as a <see cref="CollabDocument"/> does (the same engine, the same reconnects,
/// resumes and redirects), with Quill's ties: of two inserts at one place, the one the server took
/// first goes first; of two values set for one attribute, the one it took last stays. Thread-safe:
/// local changes may be made from any thread, and every event is raised in order, never two at once.
/// Positions (selections, retains) count UTF-16 code units, an embed one.
/// </summary>
/// <example>
/// <code>
/// await using var doc = await client.OpenRichTextAsync("notes");
/// doc.Apply(new Delta.Builder().Insert("Hello", AttributeMap.Of("bold", true)).Build());
/// await doc.WhenSynchronizedAsync();
/// </code>
/// </example>
public sealed class RichTextDocument : IAsyncDisposable
{
    private readonly CollabDocument _inner;

    internal RichTextDocument(CollabDocument inner)
    {
        _inner = inner;
        inner.RichTextChanged = e => Changed?.Invoke(this, e);
        inner.PresenceChanged += (_, e) => PresenceChanged?.Invoke(this, e);
        inner.Reset += (_, e) => Reset?.Invoke(this, e);
        inner.Error += (_, e) => Error?.Invoke(this, e);
        inner.ConnectionStateChanged += (_, e) => ConnectionStateChanged?.Invoke(this, e);
    }

    /// <summary>The document's id.</summary>
    public string DocId => _inner.DocId;

    /// <summary>
    /// The local contents: the server's at <see cref="Version"/> with the unconfirmed local changes
    /// applied. Immutable; a new one after every change, so comparing references tells whether it changed.
    /// </summary>
    public Delta Delta => _inner.RichText;

    /// <summary>The length of <see cref="Delta"/>: code units, an embed one.</summary>
    public int Length => _inner.Length;

    /// <summary>The server version the local contents are based on.</summary>
    public int Version => _inner.Version;

    /// <summary>Whether this client may only read the document (<see cref="Apply"/> throws).</summary>
    public bool ReadOnly => _inner.ReadOnly;

    /// <summary>Whether local changes are waiting for the server's confirmation.</summary>
    public bool HasUnconfirmedChanges => _inner.HasUnconfirmedChanges;

    /// <summary>Whether the document is joined, reconnecting, or disconnected for good (see <see cref="CollabDocument.ConnectionState"/>).</summary>
    public ConnectionState ConnectionState => _inner.ConnectionState;

    /// <summary>The other members present, by client id, with their selections in positions of <see cref="Delta"/>.</summary>
    public IReadOnlyDictionary<string, PresenceMessage> Presence => _inner.Presence;

    /// <summary>
    /// Raised after every change of <see cref="Delta"/>, local or remote, in order: composing the
    /// changes onto the contents before the first one gives the contents after the last one.
    /// </summary>
    public event EventHandler<RichTextChangedEventArgs>? Changed;

    /// <summary>Raised when a member's selection or presence changed, or a member left (then its <c>Selection</c> is null).</summary>
    public event EventHandler<PresenceMessage>? PresenceChanged;

    /// <summary>Raised when the server reset the document (deleted, renamed, moved); it joins again by itself (see <see cref="CollabDocument.Reset"/>).</summary>
    public event EventHandler<ResetMessage>? Reset;

    /// <summary>Raised when the server refused something; the document has recovered as well as it could (see <see cref="CollabDocument.Error"/>).</summary>
    public event EventHandler<CollabErrorEventArgs>? Error;

    /// <summary>Raised when <see cref="ConnectionState"/> changed.</summary>
    public event EventHandler<ConnectionStateChangedEventArgs>? ConnectionStateChanged;

    /// <summary>
    /// Applies a local change to <see cref="Delta"/> at once, and sends it to the server: for
    /// example <c>new Delta.Builder().Retain(6).Retain(5, AttributeMap.Of("bold", true)).Build()</c>
    /// makes characters 6 to 10 bold.
    /// </summary>
    /// <exception cref="ArgumentException">The change does not apply to the contents (runs past the end, splits a surrogate pair, breaks the attribute limits, is malformed).</exception>
    /// <exception cref="InvalidOperationException">The document is read-only.</exception>
    /// <exception cref="ObjectDisposedException">The document was disposed.</exception>
    public void Apply(Delta change) => _inner.TryApplyRich(change, basedOn: null);

    /// <summary>
    /// Applies a local change only if the contents are still <paramref name="basedOn"/> (a
    /// <see cref="Delta"/> read earlier): remote changes arrive on other threads, so a change
    /// computed from contents read before them could land somewhere else than meant.
    /// </summary>
    /// <returns>False, changing nothing, if the contents changed since <paramref name="basedOn"/> was read; read them again and retry.</returns>
    /// <exception cref="ArgumentException">The change does not apply to the contents.</exception>
    /// <exception cref="InvalidOperationException">The document is read-only.</exception>
    /// <exception cref="ObjectDisposedException">The document was disposed.</exception>
    public bool TryApply(Delta change, Delta basedOn)
    {
        ArgumentNullException.ThrowIfNull(basedOn);
        return _inner.TryApplyRich(change, basedOn);
    }

    /// <summary>Sets this client's selection, in positions of <see cref="Delta"/>, and sends it to the other members (as <see cref="CollabDocument.SetSelectionAsync"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A position is outside the contents.</exception>
    public Task SetSelectionAsync(IReadOnlyList<SelectionRange> selection, CancellationToken cancellationToken = default) =>
        _inner.SetSelectionAsync(selection, cancellationToken);

    /// <summary>Tries again now after the server refused for good (as <see cref="CollabDocument.ReconnectNow"/>).</summary>
    public void ReconnectNow() => _inner.ReconnectNow();

    /// <summary>Completes when the server has confirmed every local change made so far. Later changes start a new wait.</summary>
    /// <exception cref="ObjectDisposedException">The document was disposed before that.</exception>
    public Task WhenSynchronizedAsync(CancellationToken cancellationToken = default) => _inner.WhenSynchronizedAsync(cancellationToken);

    /// <summary>Leaves the document. Unconfirmed local changes may be lost; await <see cref="WhenSynchronizedAsync"/> first to keep them.</summary>
    public ValueTask DisposeAsync() => _inner.DisposeAsync();
}
