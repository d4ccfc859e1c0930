using System.Text;

namespace Collab.Ot;

/// <summary>
/// A rich-text change or document in Quill's Delta format, with the semantics of npm
/// <c>quill-delta</c> 5.1.0 (Quill 2, ShareDB's rich-text type): a list of <see cref="DeltaOp"/>s
/// (insert text or an embed, retain, delete; inserts and retains with attributes) applied left to
/// right from position 0, with an implicit trailing retain. Positions count UTF-16 code units;
/// an embed counts 1. A <em>document</em> is a delta of inserts only.
/// </summary>
/// <remarks>
/// Instances are immutable and canonical, in the form quill's <c>push</c> and <c>chop</c> give:
/// no empty ops or empty attribute maps, adjacent text inserts with equal attributes merged, as
/// are adjacent deletes and adjacent retains with equal attributes, an insert before an adjacent
/// delete, no trailing retain without attributes. Every operation gives, op for op, what
/// quill-delta gives for the same canonical inputs (checked against quill-delta itself by
/// <c>scripts/delta-oracle.mjs</c>). Pure functions only: no I/O, no logging.
/// </remarks>
[System.Text.Json.Serialization.JsonConverter(typeof(DeltaJsonConverter))]
[MessagePack.MessagePackFormatter(typeof(DeltaFormatter))]
public sealed partial class Delta : IEquatable<Delta>
{
    private readonly DeltaOp[] _ops;

    /// <summary>The delta that changes nothing, and the empty document.</summary>
    public static readonly Delta Empty = new([], 0);

    private Delta(DeltaOp[] ops, int baseLength, string? error = null)
    {
        _ops = ops;
        BaseLength = baseLength;
        Error = error;
    }

    /// <summary>
    /// A delta that could not be read from the wire. It changes nothing; <see cref="Validate"/>
    /// returns <see cref="Error"/>, which the server sends back with <c>invalid_op</c>.
    /// </summary>
    public static Delta Malformed(string error) => new([], 0, error);

    /// <summary>Why the wire form was not a delta, or null for a well-formed one.</summary>
    public string? Error { get; }

    /// <summary>The canonical ops.</summary>
    public ReadOnlySpan<DeltaOp> Ops => _ops;

    /// <summary>Number of ops.</summary>
    public int Count => _ops.Length;

    /// <summary>The shortest document this delta applies to: its retains and deletes, including a trailing retain that canonical form drops.</summary>
    public int BaseLength { get; }

    /// <summary>Whether this delta changes nothing (for a document: whether it is empty).</summary>
    public bool IsNoop => _ops.Length == 0;

    /// <summary>Whether this delta is a document: inserts only.</summary>
    public bool IsDocument => Error is null && Array.TrueForAll(_ops, o => o.IsInsert);

    /// <summary>Sum of the ops' lengths (quill's <c>length()</c>); a document's length.</summary>
    public int Length => Sum(_ops, o => o.Length);

    /// <summary>How much longer (or, if negative, shorter) a document gets (quill's <c>changeLength()</c>).</summary>
    public int ChangeLength => Sum(_ops, o => o.IsInsert ? o.Length : o.IsDelete ? -o.Count : 0);

    private static int Sum(DeltaOp[] ops, Func<DeltaOp, int> length)
    {
        var sum = 0L;
        foreach (var op in ops)
        {
            sum += length(op);
        }
        return (int)Math.Clamp(sum, int.MinValue, int.MaxValue);
    }

    /// <summary>Builds a canonical delta from ops in any order quill's <c>push</c> takes them.</summary>
    public static Delta Create(IEnumerable<DeltaOp> ops)
    {
        var builder = new Builder();
        foreach (var op in ops)
        {
            builder.Push(op);
        }
        return builder.Build();
    }

    /// <summary>A document of <paramref name="text"/> with no attributes.</summary>
    public static Delta Document(string text) => new Builder().Insert(text).Build();

    /// <summary>The text of a document: its text inserts, without its embeds.</summary>
    public string PlainText()
    {
        var sb = new StringBuilder();
        foreach (var op in _ops)
        {
            sb.Append(op.Text);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Why this delta cannot be applied to <paramref name="document"/>, or null when it can: it
    /// was read without error, retains and deletes no more than the document's length, splits
    /// no surrogate pair of the document, inserts no lone surrogate and no null attribute, and
    /// every op keeps the attribute limits (<see cref="AttributeMap.MaxKeys"/> keys and the
    /// per-value limits). A document that only ever had valid deltas applied has no null attribute.
    /// </summary>
    public string? Validate(Delta document)
    {
        if (Error is not null)
        {
            return Error;
        }
        if (!document.IsDocument)
        {
            return "the base is not a document (a delta of inserts only)";
        }
        var length = document.Length;
        if (BaseLength > length)
        {
            return $"the delta retains or deletes {BaseLength} positions, past the end of the document (length {length})";
        }
        var doc = new DocumentCursor(document._ops);
        var pos = 0;
        var checkedPos = 0;
        for (var i = 0; i < _ops.Length; i++)
        {
            var op = _ops[i];
            if (op.Attributes is { } attributes)
            {
                if (attributes.Count > AttributeMap.MaxKeys)
                {
                    return $"op {i} has more than {AttributeMap.MaxKeys} attributes";
                }
                if (attributes.LimitError() is { } error)
                {
                    return $"op {i}: {error}";
                }
                // quill keeps a null on an insert, in the document too, where it means nothing
                // but stops the text merging with its neighbours and a diff from undoing itself.
                if (op.IsInsert && attributes.Any(a => a.Value.IsNull))
                {
                    return $"op {i} inserts with a null attribute (null removes an attribute only on a retain)";
                }
            }
            if (op.Text is not null && !TextOperation.IsWellFormed(op.Text))
            {
                return $"op {i} inserts a lone surrogate";
            }
            if (pos > checkedPos && doc.SplitsPair(pos, length))
            {
                return $"position {pos} splits a surrogate pair";
            }
            checkedPos = pos;
            if (!op.IsInsert)
            {
                pos += op.Count;
            }
        }
        return pos > checkedPos && doc.SplitsPair(pos, length) ? $"position {pos} splits a surrogate pair" : null;
    }

    /// <summary>
    /// This delta applied to <paramref name="document"/>: the document composed with it. Throws
    /// <see cref="ArgumentException"/> when <see cref="Validate"/> refuses it.
    /// </summary>
    public Delta Apply(Delta document)
    {
        var error = Validate(document);
        return error is null ? document.Compose(this) : throw new ArgumentException(error, nameof(document));
    }

    /// <summary>
    /// One delta with the effect of this one and then <paramref name="other"/> (quill's
    /// <c>a.compose(b)</c>). Composed onto a document it gives the new document.
    /// </summary>
    public Delta Compose(Delta other)
    {
        var thisIter = new Iterator(_ops);
        var otherIter = new Iterator(other._ops);
        var delta = new Builder();
        if (otherIter.HasNext && otherIter.Peek() is { IsRetain: true, Attributes: null } firstOther)
        {
            // Inserts wholly inside other's first plain retain are kept as they are.
            var firstLeft = firstOther.Count;
            while (thisIter.PeekType == DeltaOpKind.Insert && thisIter.PeekLength <= firstLeft)
            {
                firstLeft -= thisIter.PeekLength;
                delta.Push(thisIter.Next());
            }
            if (firstOther.Count - firstLeft > 0)
            {
                otherIter.Next(firstOther.Count - firstLeft);
            }
        }
        while (thisIter.HasNext || otherIter.HasNext)
        {
            if (otherIter.PeekType == DeltaOpKind.Insert)
            {
                delta.Push(otherIter.Next());
            }
            else if (thisIter.PeekType == DeltaOpKind.Delete)
            {
                delta.Push(thisIter.Next());
            }
            else
            {
                var length = Math.Min(thisIter.PeekLength, otherIter.PeekLength);
                var thisOp = thisIter.Next(length);
                var otherOp = otherIter.Next(length);
                if (otherOp.IsRetain)
                {
                    var attributes = AttributeMap.Compose(thisOp.Attributes, otherOp.Attributes, keepNull: thisOp.IsRetain);
                    var newOp = thisOp.IsRetain ? DeltaOp.Retain(length, attributes) : thisOp.WithAttributes(attributes);
                    if (delta.PushAppends(newOp) && !otherIter.HasNext)
                    {
                        // The rest of other retains everything: the rest of this is unchanged.
                        foreach (var op in thisIter.Rest())
                        {
                            delta.Push(op);
                        }
                        return delta.Build();
                    }
                }
                else if (thisOp.IsRetain)
                {
                    // other deletes what this retained; what this inserted and other deletes cancels out.
                    delta.Push(otherOp);
                }
            }
        }
        return delta.Build();
    }

    /// <summary>
    /// <paramref name="other"/> rewritten to apply after this delta, both made against the same
    /// document (quill's <c>a.transform(b, priority)</c>). <paramref name="priority"/> means this
    /// delta came first: at a tie its inserts go left, and its attributes win.
    /// </summary>
    /// <remarks>Convergence: <c>a.Compose(a.Transform(b, p)) == b.Compose(b.Transform(a, !p))</c> on any document.</remarks>
    public Delta Transform(Delta other, bool priority)
    {
        var thisIter = new Iterator(_ops);
        var otherIter = new Iterator(other._ops);
        var delta = new Builder();
        while (thisIter.HasNext || otherIter.HasNext)
        {
            if (thisIter.PeekType == DeltaOpKind.Insert && (priority || otherIter.PeekType != DeltaOpKind.Insert))
            {
                delta.Retain(thisIter.Next().Length);
            }
            else if (otherIter.PeekType == DeltaOpKind.Insert)
            {
                delta.Push(otherIter.Next());
            }
            else
            {
                var length = Math.Min(thisIter.PeekLength, otherIter.PeekLength);
                var thisOp = thisIter.Next(length);
                var otherOp = otherIter.Next(length);
                if (thisOp.IsDelete)
                {
                    // This delete makes other's delete redundant or removes what other retained.
                    continue;
                }
                if (otherOp.IsDelete)
                {
                    delta.Push(otherOp);
                }
                else
                {
                    delta.Retain(length, AttributeMap.Transform(thisOp.Attributes, otherOp.Attributes, priority));
                }
            }
        }
        return delta.Build();
    }

    /// <summary>
    /// Maps <paramref name="index"/> in the document before this delta to the document after it
    /// (quill's <c>transformPosition</c>). An insert exactly at the index moves it, unless
    /// <paramref name="priority"/>.
    /// </summary>
    public int TransformPosition(int index, bool priority = false)
    {
        var offset = 0;
        var i = 0;
        while (i < _ops.Length && offset <= index)
        {
            var op = _ops[i++];
            var length = op.Length;
            if (op.IsDelete)
            {
                index -= Math.Min(length, index - offset);
                continue;
            }
            if (op.IsInsert && (offset < index || !priority))
            {
                index += length;
            }
            offset += length;
        }
        return index;
    }

    /// <summary>
    /// The delta that undoes this one, given the document it was applied to (quill's
    /// <c>invert(base)</c>): <c>base.Compose(d).Compose(d.Invert(base)) == base</c>. Throws
    /// <see cref="ArgumentException"/> when <paramref name="baseDocument"/> is not a document this delta applies to.
    /// </summary>
    public Delta Invert(Delta baseDocument)
    {
        if (!baseDocument.IsDocument || BaseLength > baseDocument.Length)
        {
            throw new ArgumentException($"Invert needs the document this delta was applied to (a document of length at least {BaseLength}).", nameof(baseDocument));
        }
        var inverted = new Builder();
        var baseIter = new Iterator(baseDocument._ops);
        foreach (var op in _ops)
        {
            if (op.IsInsert)
            {
                inverted.Delete(op.Length);
            }
            else if (op.IsRetain && op.Attributes is null)
            {
                inverted.Retain(op.Count);
                Skip(ref baseIter, op.Count);
            }
            else
            {
                var left = op.Count;
                while (left > 0)
                {
                    var baseOp = baseIter.Next(left);
                    left -= baseOp.Length;
                    if (op.IsDelete)
                    {
                        inverted.Push(baseOp);
                    }
                    else
                    {
                        inverted.Retain(baseOp.Length, AttributeMap.Invert(op.Attributes, baseOp.Attributes));
                    }
                }
            }
        }
        return inverted.Build();
    }

    private static void Skip(ref Iterator iter, int n)
    {
        while (n > 0 && iter.HasNext)
        {
            n -= iter.Next(n).Length;
        }
    }

    /// <summary>
    /// The delta that turns this document into <paramref name="other"/> (quill's
    /// <c>a.diff(b)</c>): a diff of their texts (an embed as one U+0000) by fast-diff 1.3.0 with
    /// semantic cleanup, then attribute changes on what stayed. Throws
    /// <see cref="ArgumentException"/> when either is not a document.
    /// </summary>
    /// <remarks>
    /// Like fast-diff (Myers' O(ND) bisection without a time limit), its cost grows with the
    /// product of the texts' length and the size of the difference: about 1.6 s for two
    /// unrelated texts of 10 000 characters, 140 s for 100 000. Where that matters (a whole
    /// document from a client), use <see cref="Diff(Delta, long)"/>.
    /// </remarks>
    public Delta Diff(Delta other) => Diff(other, null);

    /// <summary>
    /// <see cref="Diff(Delta)"/> with at most about <paramref name="maxSteps"/> characters compared
    /// by its searches. When a diff needs more, the searches left give up as diff-match-patch's
    /// do at their deadline, replacing what they had not matched whole: the delta still turns
    /// this document into <paramref name="other"/>, but may be larger than quill's. Within the
    /// budget it is exactly quill's.
    /// </summary>
    public Delta Diff(Delta other, long maxSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSteps);
        return Diff(other, new FastDiff.Budget(maxSteps));
    }

    private Delta Diff(Delta other, FastDiff.Budget? budget)
    {
        if (!IsDocument)
        {
            throw new ArgumentException("Diff is called on a delta that is not a document.");
        }
        if (!other.IsDocument)
        {
            throw new ArgumentException("Diff is called with a delta that is not a document.", nameof(other));
        }
        var delta = new Builder();
        var thisIter = new Iterator(_ops);
        var otherIter = new Iterator(other._ops);
        foreach (var (kind, text) in FastDiff.Diff(DiffText(), other.DiffText(), budget))
        {
            var length = text.Length;
            while (length > 0)
            {
                int opLength;
                switch (kind)
                {
                    case FastDiff.Insert:
                        opLength = Math.Min(otherIter.PeekLength, length);
                        delta.Push(otherIter.Next(opLength));
                        break;
                    case FastDiff.Delete:
                        opLength = Math.Min(length, thisIter.PeekLength);
                        thisIter.Next(opLength);
                        delta.Delete(opLength);
                        break;
                    default:
                        opLength = Math.Min(Math.Min(thisIter.PeekLength, otherIter.PeekLength), length);
                        var thisOp = thisIter.Next(opLength);
                        var otherOp = otherIter.Next(opLength);
                        if (DeltaOp.SameInsert(thisOp, otherOp))
                        {
                            delta.Retain(opLength, AttributeMap.Diff(thisOp.Attributes, otherOp.Attributes));
                        }
                        else
                        {
                            delta.Push(otherOp).Delete(opLength);
                        }
                        break;
                }
                length -= opLength;
            }
        }
        return delta.Build();
    }

    private string DiffText()
    {
        var sb = new StringBuilder();
        foreach (var op in _ops)
        {
            if (op.Text is not null)
            {
                sb.Append(op.Text);
            }
            else
            {
                sb.Append('\0');
            }
        }
        return sb.ToString();
    }

    /// <summary>The delta in quill's JSON form, for example <c>[{"insert":"a","attributes":{"bold":true}},{"retain":3}]</c>.</summary>
    public override string ToString() => DeltaJsonConverter.ToJson(this);

    /// <inheritdoc/>
    public bool Equals(Delta? other) =>
        other is not null && Error == other.Error && _ops.AsSpan().SequenceEqual(other._ops);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as Delta);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var op in _ops)
        {
            hash.Add(op);
        }
        return hash.ToHashCode();
    }

    /// <summary>Answers, for positions that never go backwards, whether a position of a document falls inside a surrogate pair.</summary>
    private struct DocumentCursor(DeltaOp[] ops)
    {
        private int _index;
        private int _start;

        public bool SplitsPair(int pos, int length) =>
            pos > 0 && pos < length && char.IsHighSurrogate(CharAt(pos - 1)) && char.IsLowSurrogate(CharAt(pos));

        // An embed reads as U+0000.
        private char CharAt(int pos)
        {
            while (_start + ops[_index].Length <= pos)
            {
                _start += ops[_index].Length;
                _index++;
            }
            return ops[_index].Text is { } text ? text[pos - _start] : '\0';
        }
    }
}
