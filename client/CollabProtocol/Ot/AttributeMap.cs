using System.Collections;
using System.Text;

namespace Collab.Ot;

/// <summary>
/// The attributes of one <see cref="DeltaOp"/>: a flat, immutable map from names to
/// <see cref="AttributeValue"/>s, never empty (an op without attributes has none, not an empty
/// map). Its static functions are quill-delta 5.1.0's <c>AttributeMap</c>, with a missing map
/// (null) where quill has <c>undefined</c>. Keys are kept in ordinal order; two maps are equal
/// when they have the same keys and values, whatever order they were written in.
/// </summary>
public sealed class AttributeMap : IEquatable<AttributeMap>, IReadOnlyCollection<KeyValuePair<string, AttributeValue>>
{
    /// <summary>The most keys an op's attributes may have (checked by <see cref="Delta.Validate"/>).</summary>
    public const int MaxKeys = 32;

    /// <summary>The longest key, in UTF-16 code units.</summary>
    public const int MaxKeyLength = 64;

    /// <summary>The largest value, in UTF-8 bytes of its JSON.</summary>
    public const int MaxValueBytes = 1024;

    // Names every JavaScript object inherits: quill-delta reads attributes as plain objects, where
    // these are never "undefined", so clients would disagree with the server about them.
    private static readonly HashSet<string> s_inheritedNames =
    [
        "__proto__", "constructor", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable", "toLocaleString",
        "toString", "valueOf", "__defineGetter__", "__defineSetter__", "__lookupGetter__", "__lookupSetter__",
    ];

    private readonly KeyValuePair<string, AttributeValue>[] _entries;

    private AttributeMap(KeyValuePair<string, AttributeValue>[] sortedEntries) => _entries = sortedEntries;

    /// <summary>
    /// A map of <paramref name="entries"/>, or null when there are none. Throws
    /// <see cref="ArgumentException"/> on a repeated key.
    /// </summary>
    public static AttributeMap? Create(IEnumerable<KeyValuePair<string, AttributeValue>> entries)
    {
        var array = entries.ToArray();
        if (array.Length == 0)
        {
            return null;
        }
        Array.Sort(array, (x, y) => string.CompareOrdinal(x.Key, y.Key));
        for (var i = 1; i < array.Length; i++)
        {
            if (string.Equals(array[i - 1].Key, array[i].Key, StringComparison.Ordinal))
            {
                throw new ArgumentException($"The attribute \"{array[i].Key}\" is given twice.", nameof(entries));
            }
        }
        return new AttributeMap(array);
    }

    /// <summary>A map of one attribute.</summary>
    public static AttributeMap Of(string key, AttributeValue value) => new([new(key, value)]);

    public int Count => _entries.Length;

    /// <summary>The value of <paramref name="key"/>, if the map has it (a null value is a value).</summary>
    public bool TryGetValue(string key, out AttributeValue value)
    {
        var i = IndexOf(key);
        value = i >= 0 ? _entries[i].Value : default;
        return i >= 0;
    }

    public bool ContainsKey(string key) => IndexOf(key) >= 0;

    private int IndexOf(string key)
    {
        int lo = 0, hi = _entries.Length - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            var c = string.CompareOrdinal(_entries[mid].Key, key);
            if (c == 0)
            {
                return mid;
            }
            if (c < 0)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        return -1;
    }

    /// <summary>Why these attributes break a per-attribute limit (a key's length or name, a value's size), or null.</summary>
    internal string? LimitError()
    {
        foreach (var (key, value) in _entries)
        {
            if (key.Length > MaxKeyLength)
            {
                return $"an attribute name is longer than {MaxKeyLength} characters";
            }
            if (s_inheritedNames.Contains(key))
            {
                return $"\"{key}\" cannot be an attribute name";
            }
            if (!TextOperation.IsWellFormed(key) || (value.Kind == AttributeValueKind.String && !TextOperation.IsWellFormed(value.String)))
            {
                return "an attribute has a lone surrogate";
            }
            if (value.JsonSize > MaxValueBytes)
            {
                return $"the value of attribute \"{key}\" is larger than {MaxValueBytes} bytes";
            }
        }
        return null;
    }

    /// <summary>
    /// quill's <c>AttributeMap.compose</c>: <paramref name="b"/>'s attributes over
    /// <paramref name="a"/>'s. Unless <paramref name="keepNull"/> (composing onto a retain),
    /// <paramref name="b"/>'s nulls remove the attribute instead of staying as removals.
    /// </summary>
    public static AttributeMap? Compose(AttributeMap? a, AttributeMap? b, bool keepNull)
    {
        var result = new List<KeyValuePair<string, AttributeValue>>();
        if (b is not null)
        {
            foreach (var entry in b._entries)
            {
                if (keepNull || !entry.Value.IsNull)
                {
                    result.Add(entry);
                }
            }
        }
        if (a is not null)
        {
            foreach (var entry in a._entries)
            {
                if (b is null || !b.ContainsKey(entry.Key))
                {
                    result.Add(entry);
                }
            }
        }
        return result.Count == 0 ? null : Create(result);
    }

    /// <summary>quill's <c>AttributeMap.diff</c>: what turns <paramref name="a"/> into <paramref name="b"/> on a retain (null for a removed key).</summary>
    public static AttributeMap? Diff(AttributeMap? a, AttributeMap? b)
    {
        var result = new List<KeyValuePair<string, AttributeValue>>();
        if (a is not null)
        {
            foreach (var (key, value) in a._entries)
            {
                if (b is null || !b.TryGetValue(key, out var other))
                {
                    result.Add(new(key, AttributeValue.Null));
                }
                else if (value != other)
                {
                    result.Add(new(key, other));
                }
            }
        }
        if (b is not null)
        {
            foreach (var entry in b._entries)
            {
                if (a is null || !a.ContainsKey(entry.Key))
                {
                    result.Add(entry);
                }
            }
        }
        return result.Count == 0 ? null : Create(result);
    }

    /// <summary>
    /// quill's <c>AttributeMap.invert</c>: the attributes that undo <paramref name="attributes"/>
    /// applied to text that had <paramref name="base"/>.
    /// </summary>
    public static AttributeMap? Invert(AttributeMap? attributes, AttributeMap? @base)
    {
        var result = new List<KeyValuePair<string, AttributeValue>>();
        if (@base is not null && attributes is not null)
        {
            foreach (var (key, value) in @base._entries)
            {
                if (attributes.TryGetValue(key, out var changed) && changed != value)
                {
                    result.Add(new(key, value));
                }
            }
        }
        if (attributes is not null)
        {
            foreach (var entry in attributes._entries)
            {
                if (@base is null || !@base.ContainsKey(entry.Key))
                {
                    result.Add(new(entry.Key, AttributeValue.Null));
                }
            }
        }
        return result.Count == 0 ? null : Create(result);
    }

    /// <summary>
    /// quill's <c>AttributeMap.transform</c>: <paramref name="b"/>'s attributes after
    /// <paramref name="a"/>'s were applied to the same text. With <paramref name="priority"/>
    /// (a came first), a's keys win and are dropped from b.
    /// </summary>
    public static AttributeMap? Transform(AttributeMap? a, AttributeMap? b, bool priority)
    {
        if (a is null || b is null || !priority)
        {
            return b;
        }
        var result = new List<KeyValuePair<string, AttributeValue>>();
        foreach (var entry in b._entries)
        {
            if (!a.ContainsKey(entry.Key))
            {
                result.Add(entry);
            }
        }
        return result.Count == 0 ? null : Create(result);
    }

    /// <summary>Whether two maps, either possibly missing, are equal (quill's <c>isEqual</c> of two attribute objects).</summary>
    public static bool AreEqual(AttributeMap? a, AttributeMap? b) => a is null ? b is null : a.Equals(b);

    public bool Equals(AttributeMap? other)
    {
        if (other is null || other._entries.Length != _entries.Length)
        {
            return false;
        }
        for (var i = 0; i < _entries.Length; i++)
        {
            if (!string.Equals(_entries[i].Key, other._entries[i].Key, StringComparison.Ordinal) || _entries[i].Value != other._entries[i].Value)
            {
                return false;
            }
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as AttributeMap);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var (key, value) in _entries)
        {
            hash.Add(key, StringComparer.Ordinal);
            hash.Add(value);
        }
        return hash.ToHashCode();
    }

    public IEnumerator<KeyValuePair<string, AttributeValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, AttributeValue>>)_entries).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The map as a JSON object, keys in ordinal order.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder("{");
        foreach (var (key, value) in _entries)
        {
            if (sb.Length > 1)
            {
                sb.Append(',');
            }
            JsJson.AppendString(sb, key);
            sb.Append(':').Append(value.ToJson());
        }
        return sb.Append('}').ToString();
    }
}
