using System.Text;

namespace Collab.Ot;

/// <summary>
/// An operation on a UTF-16 text (PROTOCOL §1): retains, inserts and deletes applied left to
/// right from position 0, with an implicit trailing retain. Instances are immutable and always
/// canonical: no empty components, no two adjacent components of one kind, an insert before an
/// adjacent delete, no trailing retain.
/// </summary>
/// <remarks>
/// Pure functions only: no I/O, no logging. The server's document actor and every client use
/// the same code, and the TypeScript port is held to <c>tests/vectors/ot-vectors.json</c>.
/// </remarks>
[System.Text.Json.Serialization.JsonConverter(typeof(TextOperationJsonConverter))]
[MessagePack.MessagePackFormatter(typeof(TextOperationFormatter))]
public sealed class TextOperation : IEquatable<TextOperation>
{
    private readonly OpComponent[] _components;

    /// <summary>The operation that changes nothing.</summary>
    public static readonly TextOperation Empty = new([], 0, 0);

    private TextOperation(OpComponent[] components, int baseLength, int targetDelta, string? error = null)
    {
        _components = components;
        BaseLength = baseLength;
        LengthDelta = targetDelta;
        Error = error;
    }

    /// <summary>
    /// An operation that could not be read from the wire. It changes nothing; the server rejects
    /// it with <c>invalid_op</c> and <see cref="Error"/> as the reason, instead of failing to bind.
    /// </summary>
    public static TextOperation Malformed(string error) => new([], 0, 0, error);

    /// <summary>Why the wire form was not an operation, or null for a well-formed one.</summary>
    public string? Error { get; }

    /// <summary>The canonical components.</summary>
    public ReadOnlySpan<OpComponent> Components => _components;

    /// <summary>Number of components.</summary>
    public int Count => _components.Length;

    /// <summary>The shortest document this operation applies to: the sum of its retains and deletes, including a trailing retain that canonical form drops.</summary>
    public int BaseLength { get; }

    /// <summary>How much longer (or, if negative, shorter) the document is after this operation.</summary>
    public int LengthDelta { get; }

    /// <summary>Whether this operation changes nothing.</summary>
    public bool IsNoop => _components.Length == 0;

    /// <summary>Builds a canonical operation from components in any (valid) form.</summary>
    public static TextOperation Create(IEnumerable<OpComponent> components)
    {
        var builder = new Builder();
        foreach (var c in components)
        {
            builder.Add(c);
        }
        return builder.Build();
    }

    /// <summary>An operation that inserts <paramref name="text"/> at <paramref name="position"/>.</summary>
    public static TextOperation Insert(int position, string text) => new Builder().Retain(position).Insert(text).Build();

    /// <summary>An operation that deletes <paramref name="length"/> code units at <paramref name="position"/>.</summary>
    public static TextOperation Delete(int position, int length) => new Builder().Retain(position).Delete(length).Build();

    /// <summary>The smallest single replacement that turns <paramref name="from"/> into <paramref name="to"/>.</summary>
    public static TextOperation Diff(string from, string to)
    {
        var prefix = from.AsSpan().CommonPrefixLength(to);
        var maxSuffix = Math.Min(from.Length, to.Length) - prefix;
        var suffix = 0;
        while (suffix < maxSuffix && from[from.Length - 1 - suffix] == to[to.Length - 1 - suffix])
        {
            suffix++;
        }
        // Never cut a surrogate pair in two: move the cut points outwards past a pair's halves.
        if (prefix > 0 && char.IsHighSurrogate(from[prefix - 1]))
        {
            prefix--;
        }
        if (suffix > 0 && char.IsLowSurrogate(from[from.Length - suffix]))
        {
            suffix--;
        }
        return new Builder()
            .Retain(prefix)
            .Insert(to.Substring(prefix, to.Length - prefix - suffix))
            .Delete(from.Length - prefix - suffix)
            .Build();
    }

    /// <summary>
    /// Checks that this operation can be applied to <paramref name="document"/>: it does not run
    /// past the end and leaves no lone surrogate. Returns null when it is valid, else a sentence
    /// saying why not.
    /// </summary>
    public string? Validate(Rope document) => Validate<Rope>(document);

    /// <summary>
    /// Why this operation cannot be applied to <paramref name="text"/>, or null when it can: the
    /// one set of rules (and words) for every text type, the server's rope and a client's buffer.
    /// </summary>
    public string? Validate<TText>(TText text) where TText : ITextView
    {
        if (Error is not null)
        {
            return Error;
        }
        if (BaseLength > text.Length)
        {
            return $"the operation retains or deletes {BaseLength} code units, past the end of the document (length {text.Length})";
        }
        var pos = 0;
        foreach (var c in _components)
        {
            if (SplitsPair(text, pos))
            {
                return $"position {pos} splits a surrogate pair";
            }
            if (c.IsInsert)
            {
                if (!IsWellFormed(c.Text!))
                {
                    return "an insert contains a lone surrogate";
                }
            }
            else
            {
                pos += Math.Abs(c.Count);
            }
        }
        if (SplitsPair(text, pos))
        {
            return $"position {pos} splits a surrogate pair";
        }
        return null;
    }

    private static bool SplitsPair<TText>(TText text, int pos) where TText : ITextView =>
        pos > 0 && pos < text.Length && char.IsHighSurrogate(text[pos - 1]) && char.IsLowSurrogate(text[pos]);

    /// <summary>
    /// Applies this operation to <paramref name="text"/> in place, insert by insert and delete by
    /// delete. Throws <see cref="ArgumentException"/>, changing nothing, when it runs past the end.
    /// </summary>
    public void ApplyTo<TText>(TText text) where TText : IEditableText
    {
        if (BaseLength > text.Length)
        {
            throw new ArgumentException($"Operation base length {BaseLength} exceeds document length {text.Length}.");
        }
        var pos = 0;
        foreach (var c in _components)
        {
            if (c.IsInsert)
            {
                text.Insert(pos, c.Text!);
                pos += c.Text!.Length;
            }
            else if (c.Count > 0)
            {
                pos += c.Count;
            }
            else
            {
                text.Delete(pos, -c.Count);
            }
        }
    }

    /// <summary>Whether <paramref name="s"/> has no lone surrogate.</summary>
    public static bool IsWellFormed(ReadOnlySpan<char> s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            var ch = s[i];
            if (char.IsHighSurrogate(ch))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return false;
                }
                i++;
            }
            else if (char.IsLowSurrogate(ch))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Applies this operation to a rope. Throws <see cref="ArgumentException"/> when it runs past the end.</summary>
    public Rope Apply(Rope document)
    {
        if (BaseLength > document.Length)
        {
            throw new ArgumentException($"Operation base length {BaseLength} exceeds document length {document.Length}.");
        }
        var pos = 0;
        foreach (var c in _components)
        {
            if (c.IsInsert)
            {
                document = document.Insert(pos, c.Text!);
                pos += c.Text!.Length;
            }
            else if (c.Count > 0)
            {
                pos += c.Count;
            }
            else
            {
                document = document.Delete(pos, -c.Count);
            }
        }
        return document;
    }

    /// <summary>Applies this operation to a string. Throws <see cref="ArgumentException"/> when it runs past the end.</summary>
    public string Apply(string document)
    {
        if (BaseLength > document.Length)
        {
            throw new ArgumentException($"Operation base length {BaseLength} exceeds document length {document.Length}.");
        }
        var sb = new StringBuilder(document.Length + Math.Max(0, LengthDelta));
        var pos = 0;
        foreach (var c in _components)
        {
            if (c.IsInsert)
            {
                sb.Append(c.Text);
            }
            else if (c.Count > 0)
            {
                sb.Append(document, pos, c.Count);
                pos += c.Count;
            }
            else
            {
                pos -= c.Count;
            }
        }
        sb.Append(document, pos, document.Length - pos);
        return sb.ToString();
    }

    /// <summary>
    /// Rewrites <paramref name="a"/> so that it applies after <paramref name="b"/>, both made
    /// against the same document. When both insert at one position, <paramref name="a"/>'s text
    /// goes first (to the left) if <paramref name="aWinsTies"/>.
    /// </summary>
    /// <remarks>
    /// Convergence (TP1): <c>b ∘ transform(a, b, w) == a ∘ transform(b, a, !w)</c>.
    /// On the server an incoming op wins ties over the ops already sequenced; on a client its
    /// own pending op wins ties over a server op (PROTOCOL §1).
    /// </remarks>
    public static TextOperation Transform(TextOperation a, TextOperation b, bool aWinsTies)
    {
        if (a.IsNoop)
        {
            // Also drops a trailing retain's claim on the length, which means nothing after b.
            return Empty;
        }
        if (b.IsNoop)
        {
            return a;
        }
        var result = new Builder();
        var ia = new Cursor(a._components);
        var ib = new Cursor(b._components);
        while (!ia.Done)
        {
            if (ia.IsInsert && (aWinsTies || !ib.IsInsert))
            {
                result.Insert(ia.TakeInsert());
                continue;
            }
            if (ib.IsInsert)
            {
                result.Retain(ib.TakeInsert().Length);
                continue;
            }
            if (ib.Done)
            {
                result.Add(ia.TakeAll());
                continue;
            }
            // Both are retains or deletes over the same stretch of the original document.
            var n = Math.Min(ia.Length, ib.Length);
            var aRetains = ia.IsRetain;
            var bRetains = ib.IsRetain;
            ia.Skip(n);
            ib.Skip(n);
            if (bRetains)
            {
                if (aRetains)
                {
                    result.Retain(n);
                }
                else
                {
                    result.Delete(n);
                }
            }
            // b deleted the stretch: whatever a retained or deleted there is already gone.
        }
        return result.Build();
    }

    /// <summary>One operation with the effect of applying <paramref name="a"/> and then <paramref name="b"/>.</summary>
    public static TextOperation Compose(TextOperation a, TextOperation b)
    {
        if (a.IsNoop)
        {
            return b;
        }
        if (b.IsNoop)
        {
            return a;
        }
        var result = new Builder();
        var ia = new Cursor(a._components);
        var ib = new Cursor(b._components);
        while (!ia.Done || !ib.Done)
        {
            if (ia.IsDelete)
            {
                result.Delete(ia.Length);
                ia.Skip(ia.Length);
                continue;
            }
            if (ib.IsInsert)
            {
                result.Insert(ib.TakeInsert());
                continue;
            }
            if (ia.Done)
            {
                result.Add(ib.TakeAll());
                continue;
            }
            if (ib.Done)
            {
                result.Add(ia.TakeAll());
                continue;
            }
            // a is a retain or an insert; b is a retain or a delete over what a produced.
            var n = Math.Min(ia.Length, ib.Length);
            if (ia.IsInsert)
            {
                var text = ia.TakeInsertPrefix(n);
                if (ib.IsRetain)
                {
                    result.Insert(text);
                }
                ib.Skip(n);
            }
            else
            {
                if (ib.IsRetain)
                {
                    result.Retain(n);
                }
                else
                {
                    result.Delete(n);
                }
                ia.Skip(n);
                ib.Skip(n);
            }
        }
        return result.Build();
    }

    /// <summary>
    /// Splits this operation into operations to apply one after another, each inserting at most
    /// <paramref name="maxInsert"/> code units (so that each fits in one hub message); their
    /// composition is this operation. Never cuts a surrogate pair. The same as <c>split</c> in
    /// <c>client/ts/ot.ts</c>.
    /// </summary>
    public IReadOnlyList<TextOperation> Split(int maxInsert)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxInsert);
        var total = 0L;
        foreach (var c in _components)
        {
            total += c.IsInsert ? c.Text!.Length : 0;
        }
        if (total <= maxInsert)
        {
            return [this];
        }
        var parts = new List<TextOperation>();
        var current = new Builder();
        var budget = maxInsert;
        // Position in the document as it is after the parts built so far and the current one.
        var pos = 0;
        foreach (var c in _components)
        {
            if (!c.IsInsert)
            {
                if (c.IsRetain)
                {
                    current.Retain(c.Count);
                    pos += c.Count;
                }
                else
                {
                    current.Delete(c.Length);
                }
                continue;
            }
            var text = c.Text!.AsSpan();
            while (text.Length > 0)
            {
                var take = Math.Min(budget, text.Length);
                if (take < text.Length && take > 0 && char.IsHighSurrogate(text[take - 1]))
                {
                    take--;
                }
                if (take == 0 && budget == maxInsert)
                {
                    // A limit of 1 and a surrogate pair: the pair goes whole.
                    take = Math.Min(2, text.Length);
                }
                if (take > 0)
                {
                    current.Insert(text[..take].ToString());
                    pos += take;
                    budget -= take;
                    text = text[take..];
                }
                if (text.Length > 0)
                {
                    parts.Add(current.Build());
                    current = new Builder().Retain(pos);
                    budget = maxInsert;
                }
            }
        }
        var last = current.Build();
        if (!last.IsNoop)
        {
            parts.Add(last);
        }
        return parts;
    }

    /// <summary>
    /// The operation that undoes this one, given the document it was applied to. Its inserts
    /// restore the deleted text, so it needs the original.
    /// </summary>
    public TextOperation Invert(Rope before) => Invert(before.Substring);

    /// <summary>
    /// The operation that undoes this one, given the text it deleted: <paramref name="original"/>
    /// answers (position, length) in the document the operation was applied to. For texts that
    /// are not a <see cref="Rope"/> (the .NET client's buffer).
    /// </summary>
    public TextOperation Invert(Func<int, int, string> original)
    {
        var result = new Builder();
        var pos = 0;
        foreach (var c in _components)
        {
            if (c.IsInsert)
            {
                result.Delete(c.Text!.Length);
            }
            else if (c.Count > 0)
            {
                result.Retain(c.Count);
                pos += c.Count;
            }
            else
            {
                result.Insert(original(pos, -c.Count));
                pos -= c.Count;
            }
        }
        return result.Build();
    }

    /// <summary>Maps a position in the document before this operation to the document after it.</summary>
    /// <param name="position">The position before.</param>
    /// <param name="stickToEnd">For a position where text is inserted: whether it moves past the insert.</param>
    public int TransformPosition(int position, bool stickToEnd = false)
    {
        var pos = 0;
        var result = position;
        foreach (var c in _components)
        {
            if (pos > position)
            {
                break;
            }
            if (c.IsInsert)
            {
                if (pos < position || stickToEnd)
                {
                    result += c.Text!.Length;
                }
            }
            else if (c.Count > 0)
            {
                pos += c.Count;
            }
            else
            {
                var n = -c.Count;
                result -= Math.Min(n, position - pos);
                pos += n;
            }
        }
        return result;
    }

    /// <summary>The operation in its wire form, for example <c>[5,"hi",-2]</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder("[");
        for (var i = 0; i < _components.Length; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }
            var c = _components[i];
            if (c.IsInsert)
            {
                sb.Append(System.Text.Json.JsonSerializer.Serialize(c.Text));
            }
            else
            {
                sb.Append(c.Count);
            }
        }
        return sb.Append(']').ToString();
    }

    /// <inheritdoc/>
    public bool Equals(TextOperation? other) =>
        other is not null && Error == other.Error && _components.AsSpan().SequenceEqual(other._components);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as TextOperation);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var c in _components)
        {
            hash.Add(c);
        }
        return hash.ToHashCode();
    }

    /// <summary>Builds canonical operations; each call appends one component and merges as canonical form requires.</summary>
    /// <remarks>
    /// Building is linear in the total size of what is added, whatever its shape: the pieces of
    /// adjacent inserts are collected and joined once, when a retain ends the insert or at
    /// <see cref="Build"/> (PROTOCOL §1), so an op of 500 000 one-character inserts costs no
    /// more than one insert of 500 000 characters.
    /// </remarks>
    public sealed class Builder
    {
        private readonly List<OpComponent> _list = [];
        private int _baseLength;
        private int _delta;

        // The insert still being added to: its index in _list (the last component, or the one
        // before a trailing delete), or -1. Its text is _insertFirst alone while it has one piece,
        // else _insertText; _list holds a placeholder at that index until it is closed.
        private int _openInsert = -1;
        private string? _insertFirst;
        private StringBuilder? _insertText;

        /// <summary>Keeps the next <paramref name="n"/> code units.</summary>
        public Builder Retain(int n)
        {
            if (n <= 0)
            {
                return this;
            }
            CloseInsert();
            _baseLength = Saturate(_baseLength, n);
            if (_list.Count > 0 && _list[^1].IsRetain)
            {
                _list[^1] = OpComponent.Retain(Saturate(_list[^1].Count, n));
            }
            else
            {
                _list.Add(OpComponent.Retain(n));
            }
            return this;
        }

        /// <summary>Deletes the next <paramref name="n"/> code units.</summary>
        public Builder Delete(int n)
        {
            if (n <= 0)
            {
                return this;
            }
            _baseLength = Saturate(_baseLength, n);
            _delta -= n;
            if (_list.Count > 0 && _list[^1].IsDelete)
            {
                _list[^1] = OpComponent.Delete(Saturate(_list[^1].Length, n));
            }
            else
            {
                _list.Add(OpComponent.Delete(n));
            }
            return this;
        }

        /// <summary>Inserts <paramref name="text"/>; written before an adjacent delete.</summary>
        public Builder Insert(string text)
        {
            if (string.IsNullOrEmpty(text))
            {
                return this;
            }
            _delta += text.Length;
            var n = _list.Count;
            if (_openInsert < 0)
            {
                // Only after Build can the last insert be closed and still be the one to merge with.
                _openInsert = n > 0 && _list[n - 1].IsInsert ? n - 1
                    : n > 1 && _list[n - 1].IsDelete && _list[n - 2].IsInsert ? n - 2
                    : -1;
                _insertFirst = _openInsert >= 0 ? _list[_openInsert].Text : null;
            }
            if (_openInsert >= 0)
            {
                // Adjacent to the open insert (possibly across a delete): collect the piece.
                if (_insertText is null)
                {
                    _insertText = new StringBuilder(_insertFirst!.Length + text.Length);
                    _insertText.Append(_insertFirst);
                    _insertFirst = null;
                }
                _insertText.Append(text);
                return this;
            }
            if (n > 0 && _list[n - 1].IsDelete)
            {
                _list.Insert(n - 1, OpComponent.Insert(text));
                _openInsert = n - 1;
            }
            else
            {
                _list.Add(OpComponent.Insert(text));
                _openInsert = n;
            }
            _insertFirst = text;
            return this;
        }

        // Writes the open insert's joined text into its component; called before anything that
        // cannot merge with it (a retain) and at Build.
        private void CloseInsert()
        {
            if (_openInsert < 0)
            {
                return;
            }
            if (_insertText is not null)
            {
                _list[_openInsert] = OpComponent.Insert(_insertText.ToString());
            }
            _openInsert = -1;
            _insertFirst = null;
            _insertText = null;
        }

        // Lengths from the wire can be huge; saturating keeps an absurd op invalid instead of wrapping it to a small one.
        private static int Saturate(int a, int b) => (int)Math.Min((long)a + b, int.MaxValue);

        /// <summary>Appends any component.</summary>
        public Builder Add(OpComponent c) =>
            c.IsInsert ? Insert(c.Text!) : c.Count > 0 ? Retain(c.Count) : Delete(-c.Count);

        /// <summary>The canonical operation; a trailing retain is dropped.</summary>
        public TextOperation Build()
        {
            CloseInsert();
            // The trailing retain is dropped from the components but still counts in BaseLength,
            // so [6] on "hello" is still rejected as running past the end.
            var count = _list.Count;
            if (count > 0 && _list[^1].IsRetain)
            {
                count--;
            }
            return count == 0 && _baseLength == 0 ? Empty : new TextOperation(_list.GetRange(0, count).ToArray(), _baseLength, _delta);
        }
    }

    /// <summary>Walks an operation's components, able to take part of one; past the end it reads as an endless retain.</summary>
    private ref struct Cursor(OpComponent[] components)
    {
        private readonly OpComponent[] _components = components;
        private int _index;
        private int _offset;

        public readonly bool Done => _index >= _components.Length;
        public readonly bool IsInsert => !Done && _components[_index].IsInsert;
        public readonly bool IsDelete => !Done && _components[_index].IsDelete;
        public readonly bool IsRetain => Done || _components[_index].IsRetain;
        public readonly int Length => Done ? int.MaxValue : _components[_index].Length - _offset;

        public string TakeInsert()
        {
            var text = _components[_index].Text!;
            var result = _offset == 0 ? text : text[_offset..];
            _index++;
            _offset = 0;
            return result;
        }

        public string TakeInsertPrefix(int n)
        {
            var text = _components[_index].Text!.Substring(_offset, n);
            Skip(n);
            return text;
        }

        public OpComponent TakeAll()
        {
            var c = _components[_index];
            var rest = c.Length - _offset;
            _index++;
            _offset = 0;
            return c.IsInsert ? OpComponent.Insert(c.Text![^rest..]) : c.IsRetain ? OpComponent.Retain(rest) : OpComponent.Delete(rest);
        }

        public void Skip(int n)
        {
            if (Done)
            {
                return;
            }
            _offset += n;
            if (_offset >= _components[_index].Length)
            {
                _index++;
                _offset = 0;
            }
        }
    }
}
