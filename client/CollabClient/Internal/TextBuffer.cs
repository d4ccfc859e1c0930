using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>
/// A mutable text for the client's own copies (the server's text and the local text): chunks of
/// <c>char[]</c> with spare room, edited in place, in an AVL tree ordered by position whose nodes
/// carry their subtree's length and chunk count. Applying a received op costs O(log n) per
/// component to find its chunk plus at most one chunk's worth of shifting, and allocates nothing
/// unless a chunk fills up and splits (one new chunk per <see cref="ChunkSize"/>/2 inserted code
/// units, amortized) or the op inserts more than fits.
/// </summary>
/// <remarks>
/// Invariants: no chunk is empty; a chunk holds at most <see cref="ChunkSize"/> code units; a
/// chunk below <see cref="ChunkSize"/>/4 is never next to another one (an edit that leaves one
/// merges it with a neighbour when both fit in one chunk), so there are O(n / ChunkSize) chunks.
/// A chunk boundary may fall between the halves of a surrogate pair; only reads see whole text.
/// Not thread-safe: the document's lock guards it.
/// </remarks>
internal sealed class TextBuffer
{
    /// <summary>Capacity of a chunk in code units: shifting one costs about as much as a cache-friendly 2 KB memmove.</summary>
    internal const int ChunkSize = 1024;

    private const int MinChunk = ChunkSize / 4;

    /// <summary>
    /// How full chunks made from a whole text are: room is left for typing, or the first insert
    /// into each full chunk of a freshly loaded large text would split it (measured on a 10 MB
    /// document in the load harness: a 2 KB chunk allocated per received op per copy of the text).
    /// </summary>
    private const int FillChunk = ChunkSize * 3 / 4;

    private Node? _root;
    // Holds a chunk's text while it is redistributed over new chunks; reused, so a split allocates only the new chunks.
    private readonly char[] _scratch = new char[ChunkSize];

    /// <summary>Length in UTF-16 code units.</summary>
    public int Length => _root?.Total ?? 0;

    /// <summary>Number of chunks, for tests.</summary>
    internal int ChunkCount => _root?.Count ?? 0;

    /// <summary>Height of the tree, for tests: O(log of <see cref="ChunkCount"/>).</summary>
    internal int Height => _root?.Height ?? 0;

    /// <summary>The code unit at <paramref name="index"/>.</summary>
    public char this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Length)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }
            var node = FindForRead(index, out var offset, out _);
            return node.Chars[offset];
        }
    }

    /// <summary>Replaces the whole text with <paramref name="text"/>, in chunks three quarters full.</summary>
    public void Reset(string text)
    {
        _root = null;
        InsertChunks(0, text, 0, text.Length);
    }

    /// <summary>The whole text, built anew: O(n).</summary>
    public override string ToString()
    {
        if (_root is null)
        {
            return "";
        }
        return string.Create(_root.Total, _root, static (span, root) => CopyChunks(root, span));
    }

    /// <summary>The <paramref name="length"/> code units at <paramref name="start"/>.</summary>
    public string Substring(int start, int length)
    {
        CheckRange(start, length);
        if (length == 0)
        {
            return "";
        }
        return string.Create(length, (this, start), static (span, state) =>
        {
            var (buffer, position) = state;
            while (span.Length > 0)
            {
                var node = buffer.FindForRead(position, out var offset, out _);
                var n = Math.Min(node.Length - offset, span.Length);
                node.Chars.AsSpan(offset, n).CopyTo(span);
                span = span[n..];
                position += n;
            }
        });
    }

    /// <summary>
    /// Why <paramref name="op"/> cannot be applied to this text, in the words of
    /// <see cref="TextOperation.Validate(Rope)"/>, or null when it can.
    /// </summary>
    public string? Validate(TextOperation op)
    {
        if (op.Error is not null)
        {
            return op.Error;
        }
        if (op.BaseLength > Length)
        {
            return $"the operation retains or deletes {op.BaseLength} code units, past the end of the document (length {Length})";
        }
        var pos = 0;
        foreach (var c in op.Components)
        {
            if (SplitsPair(pos))
            {
                return $"position {pos} splits a surrogate pair";
            }
            if (c.IsInsert)
            {
                if (!TextOperation.IsWellFormed(c.Text!))
                {
                    return "an insert contains a lone surrogate";
                }
            }
            else
            {
                pos += Math.Abs(c.Count);
            }
        }
        if (SplitsPair(pos))
        {
            return $"position {pos} splits a surrogate pair";
        }
        return null;
    }

    private bool SplitsPair(int pos) =>
        pos > 0 && pos < Length && char.IsHighSurrogate(this[pos - 1]) && char.IsLowSurrogate(this[pos]);

    /// <summary>
    /// Applies <paramref name="op"/> in place, as <see cref="TextOperation.Apply(Rope)"/> would.
    /// Throws <see cref="ArgumentException"/>, changing nothing, when it runs past the end.
    /// </summary>
    public void Apply(TextOperation op)
    {
        if (op.BaseLength > Length)
        {
            throw new ArgumentException($"Operation base length {op.BaseLength} exceeds document length {Length}.");
        }
        var pos = 0;
        foreach (var c in op.Components)
        {
            if (c.IsInsert)
            {
                Insert(pos, c.Text!);
                pos += c.Text!.Length;
            }
            else if (c.Count > 0)
            {
                pos += c.Count;
            }
            else
            {
                Delete(pos, -c.Count);
            }
        }
    }

    /// <summary>The operation that undoes <paramref name="op"/>, which turns this text into the current one (see <see cref="TextOperation.Invert(Rope)"/>).</summary>
    public TextOperation Invert(TextOperation op)
    {
        var result = new TextOperation.Builder();
        var pos = 0;
        foreach (var c in op.Components)
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
                result.Insert(Substring(pos, -c.Count));
                pos -= c.Count;
            }
        }
        return result.Build();
    }

    /// <summary>Inserts <paramref name="text"/> at <paramref name="position"/>.</summary>
    public void Insert(int position, string text)
    {
        CheckRange(position, 0);
        if (text.Length == 0)
        {
            return;
        }
        if (_root is null)
        {
            InsertChunks(0, text, 0, text.Length);
            return;
        }
        var node = FindForInsert(position, out var offset, out var index);
        if (node.Length + text.Length <= ChunkSize)
        {
            // The common case (typing): shift the chunk's tail and write the text in the gap.
            var chars = node.Chars;
            Array.Copy(chars, offset, chars, offset + text.Length, node.Length - offset);
            text.CopyTo(0, chars, offset, text.Length);
            node.Length += text.Length;
            AddToPath(index, text.Length);
            return;
        }
        Split(node, index, offset, text);
    }

    /// <summary>Deletes the <paramref name="length"/> code units at <paramref name="position"/>.</summary>
    public void Delete(int position, int length)
    {
        CheckRange(position, length);
        if (length == 0)
        {
            return;
        }
        var remaining = length;
        while (remaining > 0)
        {
            var node = FindForRead(position, out var offset, out var index);
            var n = Math.Min(node.Length - offset, remaining);
            if (n == node.Length)
            {
                _root = Remove(_root!, index);
            }
            else
            {
                var chars = node.Chars;
                Array.Copy(chars, offset + n, chars, offset, node.Length - offset - n);
                node.Length -= n;
                AddToPath(index, -n);
            }
            remaining -= n;
        }
        // Only the two chunks at the seam can have become small.
        if (position > 0)
        {
            MergeIfSmall(position - 1);
        }
        if (position < Length)
        {
            MergeIfSmall(position);
        }
    }

    /// <summary>
    /// The chunk at <paramref name="index"/> cannot take <paramref name="text"/> at
    /// <paramref name="offset"/>: its text and the insert are spread evenly over as many full-ish
    /// chunks as needed (each at least half full), the first reusing this chunk's array.
    /// </summary>
    private void Split(Node node, int index, int offset, string text)
    {
        var oldLength = node.Length;
        node.Chars.AsSpan(0, oldLength).CopyTo(_scratch);
        var total = oldLength + text.Length;
        var pieces = (total + ChunkSize - 1) / ChunkSize;
        var source = new Pieces(_scratch.AsMemory(0, offset), text.AsMemory(), _scratch.AsMemory(offset, oldLength - offset));
        var start = 0;
        for (var i = 0; i < pieces; i++)
        {
            var end = (int)((long)total * (i + 1) / pieces);
            var length = end - start;
            if (i == 0)
            {
                source.CopyTo(start, node.Chars.AsSpan(0, length));
                node.Length = length;
                AddToPath(index, length - oldLength);
            }
            else
            {
                var chunk = new Node(new char[ChunkSize]);
                source.CopyTo(start, chunk.Chars.AsSpan(0, length));
                chunk.Length = length;
                _root = InsertNode(_root, index + i, chunk);
            }
            start = end;
        }
    }

    /// <summary>Inserts <paramref name="text"/>[start..start+length] as new chunks, three quarters full, before chunk <paramref name="index"/>.</summary>
    private void InsertChunks(int index, string text, int start, int length)
    {
        while (length > 0)
        {
            // The last piece takes the rest when it fits, so no chunk is left below a quarter full.
            var n = length <= ChunkSize ? length : Math.Min(length, FillChunk);
            var chunk = new Node(new char[ChunkSize]) { Length = n };
            text.CopyTo(start, chunk.Chars, 0, n);
            _root = InsertNode(_root, index++, chunk);
            start += n;
            length -= n;
        }
    }

    /// <summary>If the chunk holding <paramref name="position"/> is small, merges it into a neighbour it fits with.</summary>
    private void MergeIfSmall(int position)
    {
        var node = FindForRead(position, out _, out var index);
        if (node.Length >= MinChunk)
        {
            return;
        }
        if (index + 1 < _root!.Count)
        {
            var next = FindByIndex(index + 1);
            if (node.Length + next.Length <= ChunkSize)
            {
                next.Chars.AsSpan(0, next.Length).CopyTo(node.Chars.AsSpan(node.Length));
                var moved = next.Length;
                node.Length += moved;
                AddToPath(index, moved);
                AddToPath(index + 1, -moved);
                next.Length = 0;
                _root = Remove(_root, index + 1);
                return;
            }
        }
        if (index > 0)
        {
            var previous = FindByIndex(index - 1);
            if (previous.Length + node.Length <= ChunkSize)
            {
                node.Chars.AsSpan(0, node.Length).CopyTo(previous.Chars.AsSpan(previous.Length));
                var moved = node.Length;
                previous.Length += moved;
                AddToPath(index - 1, moved);
                AddToPath(index, -moved);
                node.Length = 0;
                _root = Remove(_root!, index);
            }
        }
    }

    private void CheckRange(int start, int length)
    {
        if (start < 0 || length < 0 || start > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"Range {start}+{length} is outside the text (length {Length}).");
        }
    }

    /// <summary>The chunk holding the code unit at <paramref name="position"/> (&lt; Length).</summary>
    private Node FindForRead(int position, out int offset, out int index)
    {
        var node = _root!;
        index = 0;
        while (true)
        {
            var leftTotal = node.Left?.Total ?? 0;
            if (position < leftTotal)
            {
                node = node.Left!;
            }
            else if (position < leftTotal + node.Length)
            {
                offset = position - leftTotal;
                index += node.Left?.Count ?? 0;
                return node;
            }
            else
            {
                position -= leftTotal + node.Length;
                index += (node.Left?.Count ?? 0) + 1;
                node = node.Right!;
            }
        }
    }

    /// <summary>The chunk an insert at <paramref name="position"/> goes into: the one it is inside of or at the end of (the left one at a boundary).</summary>
    private Node FindForInsert(int position, out int offset, out int index)
    {
        var node = _root!;
        index = 0;
        while (true)
        {
            var leftTotal = node.Left?.Total ?? 0;
            if (node.Left is not null && position <= leftTotal)
            {
                node = node.Left;
            }
            else if (position <= leftTotal + node.Length || node.Right is null)
            {
                offset = position - leftTotal;
                index += node.Left?.Count ?? 0;
                return node;
            }
            else
            {
                position -= leftTotal + node.Length;
                index += (node.Left?.Count ?? 0) + 1;
                node = node.Right;
            }
        }
    }

    private Node FindByIndex(int index)
    {
        var node = _root!;
        while (true)
        {
            var leftCount = node.Left?.Count ?? 0;
            if (index < leftCount)
            {
                node = node.Left!;
            }
            else if (index == leftCount)
            {
                return node;
            }
            else
            {
                index -= leftCount + 1;
                node = node.Right!;
            }
        }
    }

    /// <summary>Adds <paramref name="delta"/> to the subtree lengths on the path to chunk <paramref name="index"/>, after its length changed in place.</summary>
    private void AddToPath(int index, int delta)
    {
        var node = _root!;
        while (true)
        {
            node.Total += delta;
            var leftCount = node.Left?.Count ?? 0;
            if (index < leftCount)
            {
                node = node.Left!;
            }
            else if (index == leftCount)
            {
                return;
            }
            else
            {
                index -= leftCount + 1;
                node = node.Right!;
            }
        }
    }

    /// <summary>Copies the subtree's text into <paramref name="destination"/>, in order; returns the code units written. Recursion depth is the tree's height.</summary>
    private static int CopyChunks(Node? node, Span<char> destination)
    {
        if (node is null)
        {
            return 0;
        }
        var written = CopyChunks(node.Left, destination);
        node.Chars.AsSpan(0, node.Length).CopyTo(destination[written..]);
        written += node.Length;
        return written + CopyChunks(node.Right, destination[written..]);
    }

    private static Node InsertNode(Node? node, int index, Node chunk)
    {
        if (node is null)
        {
            chunk.Left = null;
            chunk.Right = null;
            chunk.Update();
            return chunk;
        }
        var leftCount = node.Left?.Count ?? 0;
        if (index <= leftCount)
        {
            node.Left = InsertNode(node.Left, index, chunk);
        }
        else
        {
            node.Right = InsertNode(node.Right, index - leftCount - 1, chunk);
        }
        return Balance(node);
    }

    private static Node? Remove(Node node, int index)
    {
        var leftCount = node.Left?.Count ?? 0;
        if (index < leftCount)
        {
            node.Left = Remove(node.Left!, index);
        }
        else if (index > leftCount)
        {
            node.Right = Remove(node.Right!, index - leftCount - 1);
        }
        else
        {
            if (node.Left is null)
            {
                return node.Right;
            }
            if (node.Right is null)
            {
                return node.Left;
            }
            var right = RemoveFirst(node.Right, out var successor);
            successor.Left = node.Left;
            successor.Right = right;
            return Balance(successor);
        }
        return Balance(node);
    }

    private static Node? RemoveFirst(Node node, out Node first)
    {
        if (node.Left is null)
        {
            first = node;
            return node.Right;
        }
        node.Left = RemoveFirst(node.Left, out first);
        return Balance(node);
    }

    private static int HeightOf(Node? node) => node?.Height ?? 0;

    private static Node Balance(Node node)
    {
        node.Update();
        var balance = HeightOf(node.Left) - HeightOf(node.Right);
        if (balance > 1)
        {
            if (HeightOf(node.Left!.Left) < HeightOf(node.Left.Right))
            {
                node.Left = RotateLeft(node.Left);
            }
            return RotateRight(node);
        }
        if (balance < -1)
        {
            if (HeightOf(node.Right!.Right) < HeightOf(node.Right.Left))
            {
                node.Right = RotateRight(node.Right);
            }
            return RotateLeft(node);
        }
        return node;
    }

    private static Node RotateRight(Node node)
    {
        var left = node.Left!;
        node.Left = left.Right;
        node.Update();
        left.Right = node;
        left.Update();
        return left;
    }

    private static Node RotateLeft(Node node)
    {
        var right = node.Right!;
        node.Right = right.Left;
        node.Update();
        right.Left = node;
        right.Update();
        return right;
    }

    /// <summary>A chunk and the root of the subtree of chunks around it.</summary>
    private sealed class Node(char[] chars)
    {
        public readonly char[] Chars = chars;
        /// <summary>Code units used in <see cref="Chars"/>.</summary>
        public int Length;
        public Node? Left;
        public Node? Right;
        /// <summary>Code units in this subtree.</summary>
        public int Total;
        /// <summary>Chunks in this subtree.</summary>
        public int Count;
        public int Height;

        public void Update()
        {
            Total = Length + (Left?.Total ?? 0) + (Right?.Total ?? 0);
            Count = 1 + (Left?.Count ?? 0) + (Right?.Count ?? 0);
            Height = 1 + Math.Max(Left?.Height ?? 0, Right?.Height ?? 0);
        }
    }

    /// <summary>Three pieces of text read as one: a chunk's head, the inserted text, the chunk's tail.</summary>
    private readonly struct Pieces(ReadOnlyMemory<char> a, ReadOnlyMemory<char> b, ReadOnlyMemory<char> c)
    {
        public void CopyTo(int start, Span<char> destination)
        {
            foreach (var piece in (ReadOnlySpan<ReadOnlyMemory<char>>)[a, b, c])
            {
                if (destination.Length == 0)
                {
                    return;
                }
                if (start >= piece.Length)
                {
                    start -= piece.Length;
                    continue;
                }
                var n = Math.Min(piece.Length - start, destination.Length);
                piece.Span.Slice(start, n).CopyTo(destination);
                destination = destination[n..];
                start = 0;
            }
        }
    }
}
