using System.Net.WebSockets;
using System.Text;
using CollabServer.Tests.Infrastructure;
using static CollabServer.Tests.Robustness.FuzzValue;

namespace CollabServer.Tests.Robustness;

/// <summary>One generated fuzz frame: the WebSocket messages it is sent as, and what to expect back.</summary>
public sealed class FuzzFrame
{
    public required List<(byte[] Bytes, WebSocketMessageType Type)> Messages { get; init; }

    /// <summary>The invocation id of a well-formed invocation whose completion updates the slot's view of a document.</summary>
    public string? InvocationId { get; init; }

    public PendingCall? Pending { get; init; }

    /// <summary>The frame may leave the server's parser waiting for bytes that never come (truncated, bad length prefix).</summary>
    public bool BreaksFraming { get; init; }

    public required string Kind { get; init; }
}

/// <summary>What a well-formed call was, so its completion can update the slot's snapshot of the document.</summary>
public sealed record PendingCall(string Method, string DocId, int BaseVersion, int BaseLength, int Delta);

/// <summary>
/// Makes seeded random hub frames for one connection slot: well-formed Join/Submit/SetPresence/
/// Leave with random fields, the same with mutated value trees (wrong types, huge numbers, deep
/// nesting, invalid UTF-8, lone surrogates, random ops and versions), other hub message types,
/// and byte-level damage (bit flips, truncation, random bytes, splits).
/// </summary>
public sealed class FuzzFrames(Random rng, WireProtocol protocol, int slot, IReadOnlyList<string> docIds, Func<string, (int Version, int Length)> snapshot)
{
    private long _opId;
    private int _invocation;
    private readonly string _clientId = $"fz-{protocol}-{slot}";

    public FuzzFrame Next(bool forceJoin)
    {
        if (forceJoin)
        {
            return WellFormed("Join", withId: true);
        }
        var r = rng.Next(100);
        if (r < 55)
        {
            return WellFormed(PickMethod(), withId: rng.Next(10) < 8);
        }
        if (r < 82)
        {
            return Mutated();
        }
        if (r < 92)
        {
            return OtherMessage();
        }
        return ByteLevel();
    }

    public FuzzFrame SyncJoin(string docId) => Invocation("Join", [JoinArgs(docId, _clientId)], NextId(), new PendingCall("Join", docId, 0, 0, 0), "sync");

    private string PickMethod() => rng.Next(100) switch
    {
        < 22 => "Join",
        < 70 => "Submit",
        < 92 => "SetPresence",
        _ => "Leave",
    };

    private string NextId() => $"i{++_invocation}";

    private FuzzFrame WellFormed(string method, bool withId)
    {
        var docId = PickDocId();
        var (args, pending) = method switch
        {
            "Join" => ([JoinArgs(docId, PickClientId())], new PendingCall("Join", docId, 0, 0, 0)),
            "Submit" => SubmitArgs(docId),
            "SetPresence" => ([PresenceArgs(docId)], null),
            _ => (new List<FuzzValue> { S(docId) }, (PendingCall?)null),
        };
        return Invocation(method, args, withId ? NextId() : null, withId ? pending : null, "well-formed " + method);
    }

    private FuzzFrame Invocation(string target, List<FuzzValue> args, string? invocationId, PendingCall? pending, string kind)
    {
        var message = HubMessage(1, invocationId is null ? null : S(invocationId), S(target), new Arr(args));
        return new FuzzFrame { Messages = [Encode(message)], InvocationId = invocationId, Pending = pending, Kind = kind };
    }

    /// <summary>An invocation in the protocol's shape: a JSON object, or a MessagePack array.</summary>
    private FuzzValue HubMessage(int type, FuzzValue? invocationId, FuzzValue target, FuzzValue args)
    {
        if (protocol == WireProtocol.Json)
        {
            var entries = new List<(string, FuzzValue)> { ("type", I(type)) };
            if (invocationId is not null)
            {
                entries.Add(("invocationId", invocationId));
            }
            entries.Add(("target", target));
            entries.Add(("arguments", args));
            return M([.. entries]);
        }
        return A(I(type), M(), invocationId ?? new Nil(), target, args, A());
    }

    private (byte[], WebSocketMessageType) Encode(FuzzValue message) => protocol == WireProtocol.Json
        ? ([.. message.ToJson(), 0x1E], WebSocketMessageType.Text)
        : (LengthPrefixed(message.ToMessagePack()), WebSocketMessageType.Binary);

    private string PickDocId() => rng.Next(100) switch
    {
        < 92 => docIds[rng.Next(docIds.Count)],
        < 94 => "",
        < 95 => ".hidden",
        < 96 => "a/b",
        < 97 => new string('x', 129),
        < 98 => "ü",
        < 99 => "\ud83d",
        _ => "fz-" + rng.Next(1000),
    };

    private string PickClientId() => rng.Next(100) switch
    {
        < 85 => _clientId,
        < 90 => $"fz-{protocol}-{rng.Next(4)}",
        < 93 => "",
        < 95 => new string('c', 129),
        < 97 => "c\ud800",
        _ => RandomString(),
    };

    private FuzzValue JoinArgs(string docId, string clientId)
    {
        var entries = new List<(string, FuzzValue)> { ("docId", S(docId)), ("clientId", S(clientId)) };
        if (rng.Next(4) == 0)
        {
            var (version, _) = snapshot(docId);
            entries.Add(("sinceVersion", I(rng.Next(5) switch
            {
                0 => -1,
                1 => version + rng.Next(1, 5),
                2 => int.MaxValue,
                _ => Math.Max(0, version - rng.Next(0, 20)),
            })));
        }
        if (rng.Next(3) == 0)
        {
            entries.Add(("user", M(("name", S(RandomString())), ("color", S("#" + rng.Next(0x1000000).ToString("x6"))))));
        }
        return M([.. entries]);
    }

    private (List<FuzzValue>, PendingCall?) SubmitArgs(string docId)
    {
        var (version, length) = snapshot(docId);
        var baseVersion = rng.Next(10) < 7 ? version : RandomVersion(version);
        FuzzValue op;
        var delta = 0;
        var valid = baseVersion == version && rng.Next(10) < 8;
        if (valid)
        {
            (op, delta) = ValidOp(length);
        }
        else
        {
            op = RandomOp();
        }
        long opId;
        var fresh = false;
        switch (rng.Next(10))
        {
            case 0:
                opId = Math.Max(1, _opId - rng.Next(0, 5));
                break;
            case 1:
                opId = rng.Next(4) switch { 0 => long.MinValue, 1 => long.MaxValue, 2 => 0, _ => -rng.Next(1, 100) };
                break;
            default:
                opId = ++_opId;
                fresh = true;
                break;
        }
        var args = M(("docId", S(docId)), ("baseVersion", I(baseVersion)), ("op", op), ("opId", I(opId)));
        return ([args], valid && fresh ? new PendingCall("Submit", docId, baseVersion, length, delta) : null);
    }

    private int RandomVersion(int version) => rng.Next(6) switch
    {
        0 => -1,
        1 => int.MinValue,
        2 => int.MaxValue,
        3 => version + rng.Next(1, 10),
        _ => rng.Next(0, version + 1),
    };

    /// <summary>An op that is valid on a document of <paramref name="length"/> (unless it splits a surrogate pair).</summary>
    private (FuzzValue Op, int Delta) ValidOp(int length)
    {
        var items = new List<FuzzValue>();
        var pos = rng.Next(0, length + 1);
        if (pos > 0)
        {
            items.Add(I(pos));
        }
        var delta = 0;
        var kind = length > 400 ? rng.Next(3) : rng.Next(2) == 0 ? 0 : rng.Next(3);
        if (kind != 1)
        {
            var text = InsertText();
            items.Add(S(text));
            delta += text.Length;
        }
        if (kind != 0 && pos < length)
        {
            var d = rng.Next(1, Math.Min(length - pos, 12) + 1);
            items.Add(I(-d));
            delta -= d;
        }
        if (rng.Next(4) == 0 && pos + Math.Max(0, -delta) < length)
        {
            items.Add(I(1)); // a trailing retain, which canonical form drops
        }
        return (new Arr(items), delta);
    }

    private string InsertText()
    {
        var sb = new StringBuilder();
        var n = rng.Next(1, 9);
        for (var i = 0; i < n; i++)
        {
            sb.Append(rng.Next(20) switch
            {
                0 => "é",
                1 => "😀",
                2 => "\n",
                _ => ((char)('a' + rng.Next(26))).ToString(),
            });
        }
        return sb.ToString();
    }

    private FuzzValue RandomOp()
    {
        var items = new List<FuzzValue>();
        var n = rng.Next(0, 7);
        for (var i = 0; i < n; i++)
        {
            items.Add(rng.Next(12) switch
            {
                0 => I(0),
                1 => S(""),
                2 => I(rng.Next(5) switch { 0 => int.MaxValue, 1 => int.MinValue, 2 => -int.MaxValue, 3 => (long)int.MaxValue + 1, _ => long.MinValue }),
                3 => new UInt(ulong.MaxValue),
                4 => S("\ud83d"),
                5 => S("x\ude00"),
                6 => RandomValue(2),
                7 or 8 => I(-rng.Next(1, 50)),
                _ => rng.Next(2) == 0 ? I(rng.Next(1, 50)) : S(InsertText()),
            });
        }
        return rng.Next(15) == 0 ? RandomValue(2) : new Arr(items);
    }

    private FuzzValue PresenceArgs(string docId)
    {
        var (version, length) = snapshot(docId);
        var ranges = new List<FuzzValue>();
        for (var i = rng.Next(0, 3); i > 0; i--)
        {
            ranges.Add(M(("anchor", I(RandomPosition(length))), ("head", I(RandomPosition(length)))));
        }
        var entries = new List<(string, FuzzValue)>
        {
            ("docId", S(docId)),
            ("version", I(rng.Next(5) == 0 ? RandomVersion(version) : version)),
        };
        if (rng.Next(6) != 0)
        {
            entries.Add(("selection", new Arr(ranges)));
        }
        if (rng.Next(5) == 0)
        {
            entries.Add(("user", M(("name", S(RandomString())))));
        }
        return M([.. entries]);
    }

    private int RandomPosition(int length) => rng.Next(8) switch
    {
        0 => -1,
        1 => int.MaxValue,
        2 => length + rng.Next(1, 10),
        _ => rng.Next(0, length + 1),
    };

    // ---------------- mutations ----------------

    private FuzzFrame Mutated()
    {
        var method = PickMethod();
        var docId = PickDocId();
        var args = method switch
        {
            "Join" => [JoinArgs(docId, PickClientId())],
            "Submit" => SubmitArgs(docId).Item1,
            "SetPresence" => [PresenceArgs(docId)],
            _ => new List<FuzzValue> { S(docId) },
        };
        var message = HubMessage(1, S(NextId()), S(method), new Arr(args));
        var mutations = rng.Next(1, 4);
        var kinds = new List<string>();
        for (var i = 0; i < mutations; i++)
        {
            kinds.Add(MutateTree(ref message));
        }
        return new FuzzFrame { Messages = [Encode(message)], Kind = "mutated " + method + ": " + string.Join(",", kinds) };
    }

    /// <summary>Replaces, removes or wraps one random node of the tree.</summary>
    private string MutateTree(ref FuzzValue root)
    {
        var slots = new List<(List<FuzzValue>? List, List<KeyValuePair<FuzzValue, FuzzValue>>? Map, int Index)>();
        Collect(root, slots, 0);
        if (slots.Count == 0)
        {
            root = RandomValue(3);
            return "root";
        }
        var (list, map, index) = slots[rng.Next(slots.Count)];
        var current = list is not null ? list[index] : map![index].Value;
        FuzzValue replacement;
        string kind;
        switch (rng.Next(9))
        {
            case 0:
                replacement = DeepNest(rng.Next(2) == 0 ? rng.Next(10, 200) : rng.Next(200, 3000));
                kind = "deep";
                break;
            case 1:
                replacement = HugeNumber();
                kind = "huge";
                break;
            case 2:
                replacement = new RawStr(InvalidUtf8());
                kind = "utf8";
                break;
            case 3:
                replacement = S(LoneSurrogateString());
                kind = "surrogate";
                break;
            case 4:
                if (list is not null)
                {
                    list.RemoveAt(index);
                }
                else
                {
                    map!.RemoveAt(index);
                }
                return "remove";
            case 5:
                replacement = A(current);
                kind = "wrap";
                break;
            case 6 when map is not null:
                map.Add(new(S(rng.Next(2) == 0 ? RandomString() : map[index].Key is Str k ? k.Value : "x"), RandomValue(2)));
                return "extra-key";
            default:
                replacement = RandomValue(2);
                kind = "type";
                break;
        }
        if (list is not null)
        {
            list[index] = replacement;
        }
        else
        {
            map![index] = new(map[index].Key, replacement);
        }
        return kind;
    }

    private static void Collect(FuzzValue v, List<(List<FuzzValue>?, List<KeyValuePair<FuzzValue, FuzzValue>>?, int)> slots, int depth)
    {
        if (depth > 20)
        {
            return;
        }
        switch (v)
        {
            case Arr a:
                for (var i = 0; i < a.Items.Count; i++)
                {
                    slots.Add((a.Items, null, i));
                    Collect(a.Items[i], slots, depth + 1);
                }
                break;
            case Map m:
                for (var i = 0; i < m.Entries.Count; i++)
                {
                    slots.Add((null, m.Entries, i));
                    Collect(m.Entries[i].Value, slots, depth + 1);
                }
                break;
        }
    }

    private FuzzValue DeepNest(int depth)
    {
        var useMap = rng.Next(3) == 0;
        FuzzValue v = rng.Next(2) == 0 ? I(1) : S("x");
        for (var i = 0; i < depth; i++)
        {
            v = useMap ? M(("k", v)) : A(v);
        }
        return v;
    }

    private FuzzValue HugeNumber() => rng.Next(8) switch
    {
        0 => I(long.MaxValue),
        1 => I(long.MinValue),
        2 => new UInt(ulong.MaxValue),
        3 => I((long)int.MaxValue + 1),
        4 => new BigNum("123456789012345678901234567890123456789"),
        5 => new BigNum("-1e400"),
        6 => new Float(double.NaN),
        _ => new Float(1.5),
    };

    private byte[] InvalidUtf8() => rng.Next(7) switch
    {
        0 => [0xFF],
        1 => [(byte)'a', 0xC0, 0x80],             // overlong NUL
        2 => [0xED, 0xA0, 0xBD],                   // an encoded surrogate (WTF-8)
        3 => [0xE2, 0x82],                         // truncated sequence
        4 => [0xF8, 0x88, 0x80, 0x80, 0x80],       // 5-byte form
        5 => [0x80, 0x80, (byte)'b'],              // lone continuation bytes
        _ => RandomBytes(rng.Next(1, 16)),
    };

    private string LoneSurrogateString() => rng.Next(4) switch
    {
        0 => "\ud83d",
        1 => "a\ude00b",
        2 => "\ud83d\ud83d",
        _ => "😀"[1..] + "😀"[..1],
    };

    private string RandomString()
    {
        var n = rng.Next(0, 12);
        var sb = new StringBuilder();
        for (var i = 0; i < n; i++)
        {
            sb.Append(rng.Next(30) switch
            {
                0 => '\0',
                1 => '"',
                2 => '\\',
                3 => '\u001e',
                4 => 'é',
                5 => '\uffff',
                _ => (char)rng.Next(0x20, 0x7F),
            });
        }
        return sb.ToString();
    }

    private FuzzValue RandomValue(int depth)
    {
        switch (rng.Next(depth > 0 ? 14 : 11))
        {
            case 0: return new Nil();
            case 1: return new Bool(rng.Next(2) == 0);
            case 2: return I(rng.Next(-1000, 1000));
            case 3: return HugeNumber();
            case 4: return new Float(rng.NextDouble() * 1000);
            case 5: return S(RandomString());
            case 6: return S(LoneSurrogateString());
            case 7: return new RawStr(InvalidUtf8());
            case 8: return new Bin(RandomBytes(rng.Next(0, 20)));
            case 9: return S(new string('z', rng.Next(1000, 20_000)));
            case 10: return I(rng.Next(2) == 0 ? int.MinValue : int.MaxValue);
            case 11:
            case 12:
                var items = new List<FuzzValue>();
                for (var i = rng.Next(0, 4); i > 0; i--)
                {
                    items.Add(RandomValue(depth - 1));
                }
                return new Arr(items);
            default:
                var entries = new List<KeyValuePair<FuzzValue, FuzzValue>>();
                for (var i = rng.Next(0, 4); i > 0; i--)
                {
                    entries.Add(new(rng.Next(5) == 0 ? RandomValue(0) : S(rng.Next(2) == 0 ? RandomString() : "docId"), RandomValue(depth - 1)));
                }
                return new Map(entries);
        }
    }

    private byte[] RandomBytes(int n)
    {
        var bytes = new byte[n];
        rng.NextBytes(bytes);
        return bytes;
    }

    // ---------------- other hub messages ----------------

    private FuzzFrame OtherMessage()
    {
        FuzzValue message;
        string kind;
        switch (rng.Next(10))
        {
            case 0:
                message = protocol == WireProtocol.Json ? M(("type", I(6))) : A(I(6));
                kind = "ping";
                break;
            case 1:
                message = HubMessage(1, S(NextId()), S(rng.Next(2) == 0 ? "NoSuchMethod" : "OnDisconnectedAsync"), A(S("x")));
                kind = "unknown target";
                break;
            case 2:
                message = HubMessage(1, S(NextId()), S("Submit"), rng.Next(2) == 0 ? A() : A(M(), M()));
                kind = "wrong argument count";
                break;
            case 3:
                message = HubMessage(1, S(NextId()), S("Join"), rng.Next(2) == 0 ? RandomValue(2) : new Nil());
                kind = "arguments not an array";
                break;
            case 4:
                message = HubMessage(4, S(NextId()), S("Join"), A(JoinArgs(PickDocId(), _clientId)));
                kind = "stream invocation";
                break;
            case 5:
                message = protocol == WireProtocol.Json
                    ? M(("type", I(rng.Next(2) == 0 ? 2 : 5)), ("invocationId", S("i1")), ("item", RandomValue(1)))
                    : A(I(rng.Next(2) == 0 ? 2 : 5), M(), S("i1"), RandomValue(1));
                kind = "stream item/cancel";
                break;
            case 6:
                message = protocol == WireProtocol.Json
                    ? M(("type", I(3)), ("invocationId", S("i1")), ("result", RandomValue(1)))
                    : A(I(3), M(), S("i1"), I(3), RandomValue(1));
                kind = "completion from client";
                break;
            case 7:
                // SignalR ignores a message of an unknown type, but then parses nothing more on the
                // connection until it has buffered more than the message limit (HubUnknownMessageTests):
                // treated as damaged framing, so the fuzzer unwedges the connection at once.
                message = protocol == WireProtocol.Json ? M(("type", I(rng.Next(8, 1000)))) : A(I(rng.Next(8, 1000)), M());
                return new FuzzFrame { Messages = [Encode(message)], Kind = "message: unknown type", BreaksFraming = true };
            case 8:
                message = protocol == WireProtocol.Json ? M(("type", I(7)), ("error", S("bye"))) : A(I(7), S("bye"), new Bool(false));
                kind = "close from client";
                break;
            default:
                message = RandomValue(3);
                kind = "random value";
                break;
        }
        return new FuzzFrame { Messages = [Encode(message)], Kind = "message: " + kind };
    }

    // ---------------- byte-level damage ----------------

    private FuzzFrame ByteLevel()
    {
        var message = HubMessage(1, S(NextId()), S("Submit"), A(SubmitArgs(docIds[rng.Next(docIds.Count)]).Item1[0]));
        var (bytes, type) = Encode(message);
        switch (rng.Next(7))
        {
            case 0:
            {
                var flipped = (byte[])bytes.Clone();
                for (var i = rng.Next(1, 6); i > 0; i--)
                {
                    flipped[rng.Next(flipped.Length)] ^= (byte)(1 << rng.Next(8));
                }
                return Raw("bit flips", flipped, type, breaks: true);
            }
            case 1:
                return Raw("truncated", bytes[..rng.Next(1, bytes.Length)], type, breaks: true);
            case 2:
            {
                // Truncated but still delimited: the record/length says it is complete.
                if (protocol == WireProtocol.Json)
                {
                    return Raw("truncated record", [.. bytes[..rng.Next(1, bytes.Length - 1)], 0x1E], type, breaks: false);
                }
                var payload = message.ToMessagePack();
                return Raw("truncated payload", LengthPrefixed(payload[..rng.Next(1, payload.Length)]), type, breaks: false);
            }
            case 3:
            {
                var random = RandomBytes(rng.Next(1, 200));
                return protocol == WireProtocol.Json
                    ? Raw("random bytes", [.. random, 0x1E], rng.Next(2) == 0 ? WebSocketMessageType.Text : WebSocketMessageType.Binary, breaks: false)
                    : Raw("random bytes", rng.Next(2) == 0 ? LengthPrefixed(random) : random, type, breaks: true);
            }
            case 4:
            {
                // One frame split over several WebSocket messages (legal), plus a second copy in the last one.
                var cut = rng.Next(1, bytes.Length);
                return new FuzzFrame
                {
                    Messages = [(bytes[..cut], type), ([.. bytes[cut..], .. bytes], type)],
                    Kind = "bytes: split and repeated",
                };
            }
            case 5:
                // A huge declared length (MessagePack) or an unterminated record (JSON).
                return protocol == WireProtocol.Json
                    ? Raw("unterminated", bytes[..^1], type, breaks: true)
                    : Raw("huge length prefix", [.. VarInt(rng.Next(2) == 0 ? 5_000_000UL : (ulong)uint.MaxValue * 4), .. bytes], type, breaks: true);
            default:
                // The other protocol's framing on this connection.
                return Raw("wrong message type", bytes, type == WebSocketMessageType.Text ? WebSocketMessageType.Binary : WebSocketMessageType.Text, breaks: false);
        }
    }

    private static FuzzFrame Raw(string kind, byte[] bytes, WebSocketMessageType type, bool breaks) =>
        new() { Messages = [(bytes, type)], BreaksFraming = breaks, Kind = "bytes: " + kind };
}
