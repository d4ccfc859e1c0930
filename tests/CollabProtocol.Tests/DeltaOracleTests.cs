using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Collab.Messages;
using Collab.Ot;
using Collab.Testing;
using MessagePack;

namespace Collab.Protocol.Tests;

/// <summary>
/// The C# <see cref="Delta"/> against quill-delta 5.1.0 itself: <c>scripts/delta-oracle.mjs</c>
/// writes seeded random cases with quill's results (compose, apply, transform with both
/// priorities, transformPosition, invert, diff, and whole concurrent histories of several sites
/// and a server), streamed line by line; each is replayed here and must give the same ops, op
/// for op (attribute and embed keys in any order). Inputs are also checked to be in the
/// canonical form quill built them in, and to survive JSON and MessagePack unchanged. Node and
/// <c>node_modules/quill-delta</c> must be there (npm ci): without them this test fails.
/// </summary>
public sealed class DeltaOracleTests
{
    private const int Seed = 20;
    private const int Cases = 100_000;
    private static readonly MessagePackSerializerOptions s_hubOptions =
        MessagePackSerializerOptions.Standard.WithResolver(StrictUtf8Resolver.Instance).WithSecurity(MessagePackSecurity.UntrustedData);

    [Fact]
    public async Task EveryCaseAgreesWithQuillDelta()
    {
        Assert.True(File.Exists(Path.Combine(Repo.Root, "node_modules", "quill-delta", "package.json")), "node_modules/quill-delta is missing: run npm ci in the repository's root");
        var info = new ProcessStartInfo("node")
        {
            WorkingDirectory = Repo.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
        };
        foreach (var arg in new[] { "scripts/delta-oracle.mjs", "--seed", Seed.ToString(), "--count", Cases.ToString() })
        {
            info.ArgumentList.Add(arg);
        }
        using var node = Process.Start(info) ?? throw new InvalidOperationException("node did not start");
        var stderr = node.StandardError.ReadToEndAsync();
        var mismatches = new List<string>();
        var failures = 0;
        var count = 0;
        var kinds = new Dictionary<string, int>();
        try
        {
            while (await node.StandardOutput.ReadLineAsync() is { } line)
            {
                count++;
                string? problem;
                string kind;
                try
                {
                    using var json = JsonDocument.Parse(line);
                    kind = json.RootElement.GetProperty("kind").GetString()!;
                    problem = Replay(kind, json.RootElement);
                }
                catch (Exception e)
                {
                    kind = "?";
                    problem = "threw " + e;
                }
                kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
                if (problem is not null)
                {
                    failures++;
                    if (mismatches.Count < 5)
                    {
                        mismatches.Add($"case {count}: {problem}\n  {line}");
                    }
                }
            }
        }
        finally
        {
            if (!node.HasExited)
            {
                node.Kill(entireProcessTree: true);
            }
        }
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        Assert.True(node.ExitCode == 0, $"node scripts/delta-oracle.mjs exited with {node.ExitCode}:\n{await stderr}");
        Assert.True(failures == 0, $"{failures} of {count} cases disagree with quill-delta; the first:\n{string.Join("\n", mismatches)}");
        Assert.Equal(Cases, count);
        // Every kind of case was replayed, so none can be silently missing from the oracle's output.
        Assert.All(new[] { "compose", "transform", "position", "invert", "diff", "history" }, k => Assert.True(kinds.GetValueOrDefault(k) > 100, $"only {kinds.GetValueOrDefault(k)} {k} cases of {count}"));
    }

    /// <summary>Replays one case; returns what disagrees with quill, or null.</summary>
    private static string? Replay(string kind, JsonElement c)
    {
        switch (kind)
        {
            case "compose":
            {
                var doc = Input(c, "doc");
                var a = Input(c, "a");
                var b = Input(c, "b");
                var applied = c.GetProperty("applied");
                return Check("a.compose(b)", a.Compose(b), c.GetProperty("ab"))
                    ?? Check("doc.compose(a)", doc.Compose(a), applied)
                    ?? (InsertsNull(a)
                        ? (a.Validate(doc) is null ? "Validate accepts an insert with a null attribute" : null)
                        : Check("a.Apply(doc)", a.Apply(doc), applied))
                    ?? RoundTrip(a) ?? RoundTrip(b);
            }
            case "transform":
            {
                var a = Input(c, "a");
                var b = Input(c, "b");
                return Check("a.transform(b, true)", a.Transform(b, priority: true), c.GetProperty("first"))
                    ?? Check("a.transform(b, false)", a.Transform(b, priority: false), c.GetProperty("second"));
            }
            case "position":
            {
                var a = Input(c, "a");
                var index = c.GetProperty("index").GetInt32();
                var first = a.TransformPosition(index, priority: true);
                var second = a.TransformPosition(index, priority: false);
                return first != c.GetProperty("first").GetInt32() ? $"transformPosition({index}, true) gave {first}"
                    : second != c.GetProperty("second").GetInt32() ? $"transformPosition({index}, false) gave {second}"
                    : null;
            }
            case "invert":
                return Check("a.invert(doc)", Input(c, "a").Invert(Input(c, "doc")), c.GetProperty("inverted"));
            case "diff":
            {
                var doc = Input(c, "doc");
                var other = Input(c, "other");
                var diff = doc.Diff(other);
                // Not checked: doc.Compose(diff) == other, which quill breaks for inserts with null attributes.
                return Check("doc.diff(other)", diff, c.GetProperty("diff")) ?? RoundTrip(doc);
            }
            case "history":
                return History(c);
            default:
                return $"unknown kind {kind}";
        }
    }

    // The oracle's simulation, step for step: sites edit their copies and keep one op in flight
    // and one buffered; the server transforms each op over the history since its base version.
    private static string? History(JsonElement c)
    {
        var start = Input(c, "start");
        var server = start;
        var history = new List<(int Site, Delta Op)>();
        var queue = new Queue<(int Site, int Base, Delta Op)>();
        var sites = Enumerable.Range(0, c.GetProperty("sites").GetInt32()).Select(_ => new Site(start)).ToArray();
        foreach (var e in c.GetProperty("events").EnumerateArray())
        {
            if (e.TryGetProperty("edit", out var edit))
            {
                var site = sites[edit.GetInt32()];
                var op = Input(e, "op");
                if (op.BaseLength > site.Doc.Length)
                {
                    return $"an edit runs past the end of its site's copy {site.Doc}";
                }
                site.Doc = site.Doc.Compose(op);
                site.Buffer = site.Buffer is null ? op : site.Buffer.Compose(op);
            }
            else if (e.TryGetProperty("send", out var send))
            {
                var site = sites[send.GetInt32()];
                site.Inflight = site.Buffer;
                site.Buffer = null;
                queue.Enqueue((send.GetInt32(), site.Version, site.Inflight!));
            }
            else if (e.TryGetProperty("process", out _))
            {
                var (from, version, op) = queue.Dequeue();
                for (var v = version; v < history.Count; v++)
                {
                    op = history[v].Op.Transform(op, priority: true);
                }
                server = server.Compose(op);
                history.Add((from, op));
            }
            else
            {
                var i = e.GetProperty("deliver").GetInt32();
                var site = sites[i];
                var (from, op) = history[site.Version++];
                if (from == i)
                {
                    site.Inflight = null;
                    continue;
                }
                if (site.Inflight is { } inflight)
                {
                    site.Inflight = op.Transform(inflight, priority: true);
                    op = inflight.Transform(op, priority: false);
                }
                if (site.Buffer is { } buffer)
                {
                    site.Buffer = op.Transform(buffer, priority: true);
                    op = buffer.Transform(op, priority: false);
                }
                site.Doc = site.Doc.Compose(op);
            }
        }
        var expected = c.GetProperty("history");
        if (expected.GetArrayLength() != history.Count)
        {
            return $"the server sequenced {history.Count} ops, quill {expected.GetArrayLength()}";
        }
        var index = 0;
        foreach (var op in expected.EnumerateArray())
        {
            if (Check($"sequenced op {index}", history[index].Op, op) is { } problem)
            {
                return problem;
            }
            index++;
        }
        foreach (var site in sites)
        {
            if (Check("a site's final document", site.Doc, c.GetProperty("final")) is { } problem)
            {
                return problem;
            }
        }
        return Check("the server's final document", server, c.GetProperty("final"));
    }

    private static bool InsertsNull(Delta delta)
    {
        foreach (var op in delta.Ops)
        {
            if (op.IsInsert && op.Attributes is { } attributes && attributes.Any(a => a.Value.IsNull))
            {
                return true;
            }
        }
        return false;
    }

    private sealed class Site(Delta doc)
    {
        public Delta Doc = doc;
        public int Version;
        public Delta? Inflight;
        public Delta? Buffer;
    }

    /// <summary>A case's input through the JSON converter; it must already be canonical (as quill built it), op for op.</summary>
    private static Delta Input(JsonElement c, string name)
    {
        var element = c.GetProperty(name);
        var delta = element.Deserialize<Delta>()!;
        Assert.True(delta.Error is null, $"{name}: {delta.Error}");
        var problem = Check($"input {name} in canonical form", delta, element);
        Assert.True(problem is null, problem);
        return delta;
    }

    /// <summary>Compares ops exactly with quill's, read without merging anything.</summary>
    private static string? Check(string what, Delta actual, JsonElement expected)
    {
        var ops = RawOps(expected);
        return ops is not null && actual.Ops.SequenceEqual(ops.ToArray())
            ? null
            : $"{what}: C# gives {actual}, quill {expected.GetRawText()}";
    }

    /// <summary>quill's op array as ops, one for one; null when one has no C# equivalent (an empty map, a zero count).</summary>
    private static List<DeltaOp>? RawOps(JsonElement array)
    {
        var ops = new List<DeltaOp>();
        foreach (var op in array.EnumerateArray())
        {
            if (op.TryGetProperty("attributes", out var attributes) && !attributes.EnumerateObject().Any())
            {
                return null;
            }
            if (attributes.ValueKind == JsonValueKind.Undefined && op.TryGetProperty("retain", out var retain) && retain.ValueKind == JsonValueKind.Number)
            {
                // A plain retain alone would be chopped by Build.
                if (!retain.TryGetInt32(out var n) || n <= 0)
                {
                    return null;
                }
                ops.Add(DeltaOp.Retain(n));
                continue;
            }
            var single = JsonSerializer.Deserialize<Delta>("[" + op.GetRawText() + "]")!;
            if (single.Error is not null || single.Count != 1)
            {
                return null;
            }
            ops.Add(single.Ops[0]);
        }
        return ops;
    }

    private static string? RoundTrip(Delta delta)
    {
        var json = JsonSerializer.Deserialize<Delta>(JsonSerializer.Serialize(delta))!;
        var pack = MessagePackSerializer.Deserialize<Delta>(MessagePackSerializer.Serialize(delta, s_hubOptions), s_hubOptions)!;
        return json.Equals(delta) && pack.Equals(delta) ? null : $"round trip of {delta}: JSON gives {json}, MessagePack {pack}";
    }
}
