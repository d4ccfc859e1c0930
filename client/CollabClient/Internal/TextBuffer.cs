using System.Runtime.CompilerServices;
using Collab.Ot;

namespace Collab.Client.Internal;

/// <summary>
/// A mutable text for the client's own copies (the server's text and the local text): chunks of
/// <c>char[]</c> with spare room, edited in place, held in a B+tree ordered by position. A node
/// holds up to <see cref="MaxChildren"/> children (the bottom nodes: chunks) in inline arrays
/// next to the lengths of their subtrees, so finding a position scans a few contiguous arrays per
/// level over about three levels for a 10 MB text, instead of chasing one randomly placed object
/// per level of a binary tree. Applying a received op costs O(log n) per component to find its
/// chunk plus at most one chunk's worth of shifting, and allocates nothing unless a chunk fills
/// up and splits (one new chunk per <see cref="ChunkSize"/>/2 inserted code units, amortized,
/// and one new node per <see cref="MaxChildren"/>/2 new chunks) or the op inserts more than fits.
/// </summary>
/// <remarks>
/// Invariants: no chunk is empty; a chunk holds at most <see cref="ChunkSize"/> code units; a
/// chunk below <see cref="ChunkSize"/>/4 is never next to another one (an edit that leaves one
/// merges it with a neighbour when both fit in one chunk), so there are O(n / ChunkSize) chunks.
/// All chunks are at the same depth; a node other than the root has between
/// <see cref="MinChildren"/> and <see cref="MaxChildren"/> children, an inner root at least two,
/// and each length in a node is the sum of its child's lengths (see <see cref="CheckTree"/>).
/// A chunk boundary may fall between the halves of a surrogate pair; only reads see whole text.
/// Not thread-safe: the document's lock guards it.
/// </remarks>
internal sealed class TextBuffer : IEditableText
{
    /// <summary>Capacity of a chunk in code units: shifting one costs about as much as a cache-friendly 2 KB memmove.</summary>
    internal const int ChunkSize = 1024;

    /// <summary>Most children of a node: its lengths fill two cache lines.</summary>
    internal const int MaxChildren = 32;

    /// <summary>Fewest children of a node other than the root; a node left with fewer merges with or borrows from a sibling.</summary>
    internal const int MinChildren = MaxChildren / 4;

    private const int MinChunk = ChunkSize / 4;

    /// <summary>
    /// How full chunks made from a whole text are: room is left for typing, or the first insert
    /// into each full chunk of a freshly loaded large text would split it (measured on a 10 MB
    /// document in the load harness: a 2 KB chunk allocated per received op per copy of the text).
    /// </summary>
    private const int FillChunk = ChunkSize * 3 / 4;

    /// <summary>How full nodes built from a whole text are, for the same reason: the first new chunk under each would split it.</summary>
    private const int FillNode = MaxChildren * 3 / 4;

    /// <summary>Deeper than any tree of int.MaxValue code units can be (every node but the root has at least <see cref="MinChildren"/> children).</summary>
    private const int MaxDepth = 16;

    private Node? _root;
    // Levels of nodes: 0 when empty, 1 when the root holds the chunks.
    private int _height;
    private int _length;
    private int _chunkCount;

    // The path of the last Descend: the node at each level (0 is the root) and the slot taken in it.
    // Reused, so an edit allocates nothing to remember where it is.
    private readonly Node[] _pathNodes = new Node[MaxDepth];
    private readonly int[] _pathSlots = new int[MaxDepth];

    // Holds a chunk's text while it is redistributed over new chunks; reused, so a split allocates only the new chunks.
    private readonly char[] _scratch = new char[ChunkSize];

    /// <summary>Length in UTF-16 code units.</summary>
    public int Length => _length;

    /// <summary>Number of chunks, for tests.</summary>
    internal int ChunkCount => _chunkCount;

    /// <summary>
    /// Levels of nodes above the chunks, for tests: 0 when empty, 1 when the root holds the
    /// chunks, at most 1 + log base <see cref="MinChildren"/> of (<see cref="ChunkCount"/> / 2).
    /// </summary>
    internal int Height => _height;

    /// <summary>The code unit at <paramref name="index"/>.</summary>
    public char this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Length)
            {
                throw new ArgumentOutOfRangeException(nameof(index));
            }
            var chunk = Locate(index, out var offset, out _);
            return chunk[offset];
        }
    }

    /// <summary>Replaces the whole text with <paramref name="text"/>, in chunks three quarters full.</summary>
    public void Reset(string text) => Build(text);

    /// <summary>The whole text, built anew: O(n).</summary>
    public override string ToString()
    {
        if (_root is null)
        {
            return "";
        }
        return string.Create(_length, this, static (span, buffer) => CopyChunks(buffer._root!, buffer._height, span));
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
                var chunk = buffer.Locate(position, out var offset, out var chunkLength);
                var n = Math.Min(chunkLength - offset, span.Length);
                chunk.AsSpan(offset, n).CopyTo(span);
                span = span[n..];
                position += n;
            }
        });
    }

    /// <summary>Why <paramref name="op"/> cannot be applied to this text, or null when it can (<see cref="TextOperation.Validate{TText}"/>).</summary>
    public string? Validate(TextOperation op) => op.Validate(this);

    /// <summary>Applies <paramref name="op"/> in place (<see cref="TextOperation.ApplyTo{TText}"/>); throws, changing nothing, when it runs past the end.</summary>
    public void Apply(TextOperation op) => op.ApplyTo(this);

    /// <summary>The operation that undoes <paramref name="op"/>, which turns this text into the current one (see <see cref="TextOperation.Invert(Rope)"/>).</summary>
    public TextOperation Invert(TextOperation op) => op.Invert(Substring);

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
            Build(text);
            return;
        }
        var offset = Descend(position, forInsert: true);
        var leaf = _pathNodes[_height - 1];
        var slot = _pathSlots[_height - 1];
        var length = leaf.Lengths[slot];
        if (length + text.Length <= ChunkSize)
        {
            // The common case (typing): shift the chunk's tail and write the text in the gap.
            var chars = leaf.Chunks[slot]!;
            Array.Copy(chars, offset, chars, offset + text.Length, length - offset);
            text.CopyTo(0, chars, offset, text.Length);
            AddToPath(_height, text.Length);
            return;
        }
        Split(position - offset, offset, text);
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
            var offset = Descend(position, forInsert: false);
            var leaf = _pathNodes[_height - 1];
            var slot = _pathSlots[_height - 1];
            var chunkLength = leaf.Lengths[slot];
            var n = Math.Min(chunkLength - offset, remaining);
            if (n == chunkLength)
            {
                RemoveChunk();
            }
            else
            {
                var chars = leaf.Chunks[slot]!;
                Array.Copy(chars, offset + n, chars, offset, chunkLength - offset - n);
                AddToPath(_height, -n);
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
    /// The chunk starting at <paramref name="chunkStart"/>, found by the last Descend, cannot take
    /// <paramref name="text"/> at <paramref name="offset"/>: its text and the insert are spread
    /// evenly over as many full-ish chunks as needed (each at least half full), the first reusing
    /// this chunk's array.
    /// </summary>
    private void Split(int chunkStart, int offset, string text)
    {
        var leaf = _pathNodes[_height - 1];
        var slot = _pathSlots[_height - 1];
        var chars = leaf.Chunks[slot]!;
        var oldLength = leaf.Lengths[slot];
        chars.AsSpan(0, oldLength).CopyTo(_scratch);
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
                source.CopyTo(start, chars.AsSpan(0, length));
                AddToPath(_height, length - oldLength);
            }
            else
            {
                var chunk = new char[ChunkSize];
                source.CopyTo(start, chunk.AsSpan(0, length));
                InsertChunkAt(chunkStart + start, chunk, length);
            }
            start = end;
        }
    }

    /// <summary>If the chunk holding <paramref name="position"/> is small, merges it into a neighbour it fits with.</summary>
    private void MergeIfSmall(int position)
    {
        var chars = Locate(position, out var offset, out var length);
        if (length >= MinChunk)
        {
            return;
        }
        var start = position - offset;
        if (start + length < Length)
        {
            var next = Locate(start + length, out _, out var nextLength);
            if (length + nextLength <= ChunkSize)
            {
                // Move the next chunk's text to the end of this one, drop the next chunk, then count the text here.
                next.AsSpan(0, nextLength).CopyTo(chars.AsSpan(length));
                Descend(start + length, forInsert: false);
                RemoveChunk();
                Descend(start, forInsert: false);
                AddToPath(_height, nextLength);
                return;
            }
        }
        if (start > 0)
        {
            var previous = Locate(start - 1, out _, out var previousLength);
            if (previousLength + length <= ChunkSize)
            {
                chars.AsSpan(0, length).CopyTo(previous.AsSpan(previousLength));
                Descend(start, forInsert: false);
                RemoveChunk();
                Descend(start - 1, forInsert: false);
                AddToPath(_height, length);
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

    /// <summary>The chunk holding the code unit at <paramref name="position"/> (&lt; Length), its offset in it and the chunk's length; reads only.</summary>
    private char[] Locate(int position, out int offset, out int length)
    {
        var node = _root!;
        for (var level = 1; ; level++)
        {
            var i = 0;
            var last = node.Count - 1;
            while (i < last && position >= node.Lengths[i])
            {
                position -= node.Lengths[i];
                i++;
            }
            if (level == _height)
            {
                offset = position;
                length = node.Lengths[i];
                return node.Chunks[i]!;
            }
            node = node.Children[i]!;
        }
    }

    /// <summary>
    /// Finds the chunk holding <paramref name="position"/> and records the path to it in
    /// <see cref="_pathNodes"/> and <see cref="_pathSlots"/>; returns the offset in the chunk. With
    /// <paramref name="forInsert"/>, the chunk an insert goes into: the one the position is inside
    /// of or at the end of (the left one at a boundary); otherwise the one holding the code unit
    /// there (position &lt; Length).
    /// </summary>
    private int Descend(int position, bool forInsert)
    {
        var node = _root!;
        // At a boundary an insert stays in the left chunk, a read moves on to the right one.
        var bias = forInsert ? 0 : 1;
        for (var level = 0; ; level++)
        {
            var i = 0;
            var last = node.Count - 1;
            while (i < last && position + bias > node.Lengths[i])
            {
                position -= node.Lengths[i];
                i++;
            }
            _pathNodes[level] = node;
            _pathSlots[level] = i;
            if (level == _height - 1)
            {
                return position;
            }
            node = node.Children[i]!;
        }
    }

    /// <summary>Adds <paramref name="delta"/> to the text's length and to the lengths on the last path above level <paramref name="level"/> (all of it: <see cref="_height"/>).</summary>
    private void AddToPath(int level, int delta)
    {
        for (var l = 0; l < level; l++)
        {
            _pathNodes[l].Lengths[_pathSlots[l]] += delta;
        }
        _length += delta;
    }

    /// <summary>Makes the tree of <paramref name="text"/> bottom up: chunks three quarters full under nodes three quarters full.</summary>
    private void Build(string text)
    {
        _root = null;
        _height = 0;
        _length = 0;
        _chunkCount = 0;
        if (text.Length == 0)
        {
            return;
        }
        // The last piece takes the rest when it fits, so no chunk is left below a quarter full.
        var count = 1;
        for (var rest = text.Length; rest > ChunkSize; rest -= FillChunk)
        {
            count++;
        }
        var nodes = new Node[(count + FillNode - 1) / FillNode];
        var start = 0;
        var made = 0;
        for (var j = 0; j < nodes.Length; j++)
        {
            var node = new Node();
            var end = (int)((long)count * (j + 1) / nodes.Length);
            for (; made < end; made++)
            {
                var n = made == count - 1 ? text.Length - start : FillChunk;
                var chunk = new char[ChunkSize];
                text.CopyTo(start, chunk, 0, n);
                node.Chunks[node.Count] = chunk;
                node.Lengths[node.Count] = n;
                node.Count++;
                start += n;
            }
            nodes[j] = node;
        }
        _height = 1;
        while (nodes.Length > 1)
        {
            var parents = new Node[(nodes.Length + FillNode - 1) / FillNode];
            made = 0;
            for (var j = 0; j < parents.Length; j++)
            {
                var parent = new Node();
                var end = (int)((long)nodes.Length * (j + 1) / parents.Length);
                for (; made < end; made++)
                {
                    parent.Children[parent.Count] = nodes[made];
                    parent.Lengths[parent.Count] = nodes[made].Sum();
                    parent.Count++;
                }
                parents[j] = parent;
            }
            nodes = parents;
            _height++;
        }
        _root = nodes[0];
        _length = text.Length;
        _chunkCount = count;
    }

    /// <summary>Adds the chunk <paramref name="chars"/>[..<paramref name="length"/>] so it starts at <paramref name="position"/>, which is 0, the end or between two chunks.</summary>
    private void InsertChunkAt(int position, char[] chars, int length)
    {
        if (position == 0)
        {
            Descend(0, forInsert: false);
            InsertEntry(_height - 1, 0, null, chars, length);
        }
        else
        {
            // The chunk that ends at the position; the new one goes right after it.
            Descend(position, forInsert: true);
            InsertEntry(_height - 1, _pathSlots[_height - 1] + 1, null, chars, length);
        }
        _chunkCount++;
    }

    /// <summary>
    /// Inserts a child (a node, or a chunk at the bottom level) of <paramref name="length"/> code
    /// units at <paramref name="index"/> in the node at <paramref name="level"/> of the last path,
    /// splitting full nodes up the path.
    /// </summary>
    private void InsertEntry(int level, int index, Node? child, char[]? chunk, int length)
    {
        AddToPath(level, length);
        // From here on every step keeps the sums above it.
        while (true)
        {
            var node = _pathNodes[level];
            if (node.Count < MaxChildren)
            {
                node.InsertAt(index, child, chunk, length);
                return;
            }
            // Full: the upper half moves to a new right sibling, and the child goes into its half.
            const int half = MaxChildren / 2;
            var right = new Node();
            node.MoveTo(half, node.Count - half, right, 0);
            if (index <= half)
            {
                node.InsertAt(index, child, chunk, length);
            }
            else
            {
                right.InsertAt(index - half, child, chunk, length);
            }
            var rightLength = right.Sum();
            if (level == 0)
            {
                var root = new Node();
                root.InsertAt(0, node, null, node.Sum());
                root.InsertAt(1, right, null, rightLength);
                _root = root;
                _height++;
                return;
            }
            var parent = _pathNodes[level - 1];
            var parentSlot = _pathSlots[level - 1];
            parent.Lengths[parentSlot] -= rightLength;
            level--;
            index = parentSlot + 1;
            child = right;
            chunk = null;
            length = rightLength;
        }
    }

    /// <summary>Removes the chunk at the end of the last path, merging or refilling nodes left with too few children up the path.</summary>
    private void RemoveChunk()
    {
        var level = _height - 1;
        var leaf = _pathNodes[level];
        var slot = _pathSlots[level];
        AddToPath(level, -leaf.Lengths[slot]);
        leaf.RemoveAt(slot);
        _chunkCount--;
        // From here on every step keeps the sums above it.
        while (level > 0)
        {
            var node = _pathNodes[level];
            if (node.Count >= MinChildren)
            {
                return;
            }
            var parent = _pathNodes[level - 1];
            var parentSlot = _pathSlots[level - 1];
            // The parent has at least two children: an inner root has two, any other node MinChildren.
            var leftSlot = parentSlot + 1 < parent.Count ? parentSlot : parentSlot - 1;
            var left = parent.Children[leftSlot]!;
            var right = parent.Children[leftSlot + 1]!;
            if (left.Count + right.Count <= MaxChildren)
            {
                right.MoveTo(0, right.Count, left, left.Count);
                parent.Lengths[leftSlot] += parent.Lengths[leftSlot + 1];
                parent.RemoveAt(leftSlot + 1);
                level--;
                continue;
            }
            // Too many for one node: share them evenly (each then has at least MaxChildren / 2 - 1).
            var total = left.Count + right.Count;
            var leftCount = total / 2;
            if (left.Count < leftCount)
            {
                var moved = leftCount - left.Count;
                right.MoveTo(0, moved, left, left.Count);
            }
            else
            {
                var moved = left.Count - leftCount;
                left.MoveTo(leftCount, moved, right, 0);
            }
            var sum = parent.Lengths[leftSlot] + parent.Lengths[leftSlot + 1];
            parent.Lengths[leftSlot] = left.Sum();
            parent.Lengths[leftSlot + 1] = sum - parent.Lengths[leftSlot];
            return;
        }
        var root = _root!;
        if (root.Count == 0)
        {
            _root = null;
            _height = 0;
        }
        else if (_height > 1 && root.Count == 1)
        {
            _root = root.Children[0];
            _height--;
        }
    }

    /// <summary>Copies the subtree's text into <paramref name="destination"/>, in order; returns the code units written. Recursion depth is the tree's height.</summary>
    private static int CopyChunks(Node node, int height, Span<char> destination)
    {
        var written = 0;
        for (var i = 0; i < node.Count; i++)
        {
            if (height == 1)
            {
                var n = node.Lengths[i];
                node.Chunks[i].AsSpan(0, n).CopyTo(destination[written..]);
                written += n;
            }
            else
            {
                written += CopyChunks(node.Children[i]!, height - 1, destination[written..]);
            }
        }
        return written;
    }

    /// <summary>
    /// Why the tree breaks an invariant (see the remarks), or null when it keeps them all; O(n / ChunkSize), for tests.
    /// </summary>
    internal string? CheckTree()
    {
        if (_root is null)
        {
            return _height == 0 && _length == 0 && _chunkCount == 0 ? null : "an empty tree with a height, length or chunks";
        }
        if (_height > 1 && _root.Count < 2)
        {
            return "an inner root with one child";
        }
        var chunks = 0;
        var previousSmall = false;
        var error = CheckNode(_root, _height, isRoot: true, ref chunks, ref previousSmall, out var length);
        if (error is not null)
        {
            return error;
        }
        if (length != _length || chunks != _chunkCount)
        {
            return $"length {_length} and {_chunkCount} chunks counted, {length} and {chunks} in the tree";
        }
        return null;
    }

    private static string? CheckNode(Node node, int height, bool isRoot, ref int chunks, ref bool previousSmall, out int length)
    {
        length = 0;
        if (node.Count > MaxChildren || node.Count < (isRoot ? 1 : MinChildren))
        {
            return $"a node with {node.Count} children";
        }
        for (var i = 0; i < node.Count; i++)
        {
            if (height == 1)
            {
                var n = node.Lengths[i];
                if (n <= 0 || n > ChunkSize || node.Chunks[i] is null || node.Children[i] is not null)
                {
                    return $"a chunk of length {n}";
                }
                var small = n < MinChunk;
                if (small && previousSmall)
                {
                    return "two small chunks next to each other";
                }
                previousSmall = small;
                chunks++;
                length += n;
            }
            else
            {
                if (node.Children[i] is not { } child || node.Chunks[i] is not null)
                {
                    return "an inner node without a child node";
                }
                var error = CheckNode(child, height - 1, isRoot: false, ref chunks, ref previousSmall, out var childLength);
                if (error is not null)
                {
                    return error;
                }
                if (childLength != node.Lengths[i])
                {
                    return $"a node counts {node.Lengths[i]} code units under a child of {childLength}";
                }
                length += childLength;
            }
        }
        return null;
    }

    /// <summary>
    /// A node of the tree: up to <see cref="MaxChildren"/> children, nodes or (at the bottom level)
    /// chunks, with the length of each, all inline in the one object.
    /// </summary>
    private sealed class Node
    {
        public int Count;
        /// <summary>Code units under each child (for a chunk: used in it).</summary>
        public IntArray Lengths;
        public NodeArray Children;
        public ChunkArray Chunks;

        public int Sum()
        {
            var sum = 0;
            for (var i = 0; i < Count; i++)
            {
                sum += Lengths[i];
            }
            return sum;
        }

        public void InsertAt(int index, Node? child, char[]? chunk, int length)
        {
            var tail = Count - index;
            Span<int> lengths = Lengths;
            Span<Node?> children = Children;
            Span<char[]?> chunks = Chunks;
            lengths.Slice(index, tail).CopyTo(lengths[(index + 1)..]);
            children.Slice(index, tail).CopyTo(children[(index + 1)..]);
            chunks.Slice(index, tail).CopyTo(chunks[(index + 1)..]);
            lengths[index] = length;
            children[index] = child;
            chunks[index] = chunk;
            Count++;
        }

        public void RemoveAt(int index)
        {
            var tail = Count - index - 1;
            Span<int> lengths = Lengths;
            Span<Node?> children = Children;
            Span<char[]?> chunks = Chunks;
            lengths.Slice(index + 1, tail).CopyTo(lengths[index..]);
            children.Slice(index + 1, tail).CopyTo(children[index..]);
            chunks.Slice(index + 1, tail).CopyTo(chunks[index..]);
            Count--;
            lengths[Count] = 0;
            children[Count] = null;
            chunks[Count] = null;
        }

        /// <summary>Moves <paramref name="count"/> children from <paramref name="start"/> to <paramref name="destination"/> at <paramref name="at"/> (its start or its end).</summary>
        public void MoveTo(int start, int count, Node destination, int at)
        {
            Span<int> lengths = Lengths;
            Span<Node?> children = Children;
            Span<char[]?> chunks = Chunks;
            Span<int> toLengths = destination.Lengths;
            Span<Node?> toChildren = destination.Children;
            Span<char[]?> toChunks = destination.Chunks;
            // Make room in the destination, copy, then close the gap here.
            var destinationTail = destination.Count - at;
            toLengths.Slice(at, destinationTail).CopyTo(toLengths[(at + count)..]);
            toChildren.Slice(at, destinationTail).CopyTo(toChildren[(at + count)..]);
            toChunks.Slice(at, destinationTail).CopyTo(toChunks[(at + count)..]);
            lengths.Slice(start, count).CopyTo(toLengths[at..]);
            children.Slice(start, count).CopyTo(toChildren[at..]);
            chunks.Slice(start, count).CopyTo(toChunks[at..]);
            destination.Count += count;
            var tail = Count - start - count;
            lengths.Slice(start + count, tail).CopyTo(lengths[start..]);
            children.Slice(start + count, tail).CopyTo(children[start..]);
            chunks.Slice(start + count, tail).CopyTo(chunks[start..]);
            Count -= count;
            // Clear the vacated slots so the node holds no stale references.
            lengths[Count..].Clear();
            children[Count..].Clear();
            chunks[Count..].Clear();
        }
    }

    [InlineArray(MaxChildren)]
    private struct IntArray
    {
        private int _element;
    }

    [InlineArray(MaxChildren)]
    private struct NodeArray
    {
        private Node? _element;
    }

    [InlineArray(MaxChildren)]
    private struct ChunkArray
    {
        private char[]? _element;
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
