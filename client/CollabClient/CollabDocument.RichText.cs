using Collab.Client.Internal;
using Collab.Ot;

namespace Collab.Client;

// The document's state by type: a text document's (the public surface of CollabDocument.cs) and a
// rich-text document's, which a RichTextDocument reads and edits through these members.
public sealed partial class CollabDocument
{
    /// <summary>The state of a text document; a rich-text document never reaches the text members.</summary>
    private EngineState TextState => (EngineState)_engine;

    /// <summary>Whether this is the inner document of a <see cref="RichTextDocument"/>.</summary>
    internal bool IsRichText => _engine is EngineState<Delta, Delta>;

    /// <summary>A rich-text document's changes, raised as <see cref="Changed"/> is.</summary>
    internal Action<RichTextChangedEventArgs>? RichTextChanged { get; set; }

    /// <summary>A rich-text document's local contents.</summary>
    internal Delta RichText
    {
        get
        {
            lock (_gate)
            {
                return ((EngineState<Delta, Delta>)_engine).Text;
            }
        }
    }

    /// <summary>
    /// Applies a local change to a rich-text document only if its contents are still
    /// <paramref name="basedOn"/> (when given); as <see cref="TryApply"/>.
    /// </summary>
    internal bool TryApplyRich(Delta change, Delta? basedOn)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var state = (EngineState<Delta, Delta>)_engine;
            if (basedOn is not null && !ReferenceEquals(basedOn, state.Text))
            {
                return false;
            }
            if (state.ReadOnly)
            {
                throw new InvalidOperationException($"Document '{DocId}' is read-only for this client.");
            }
            if (change.Validate(state.Text) is { } reason)
            {
                throw new ArgumentException($"The change does not apply to the document: {reason}.", nameof(change));
            }
            if (change.IsNoop)
            {
                return true;
            }
            var args = new RichTextChangedEventArgs(change, isLocal: true, clientId: null);
            _work.Enqueue(() => RichTextChanged?.Invoke(args));
            StepLocked(new LocalEdit<Delta>(change));
        }
        RunWork();
        return true;
    }
}
