using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// The shared sync engine scenarios (<c>tests/vectors/engine-scenarios.json</c>), replayed against
/// <see cref="SyncEngine"/> directly: after every event, the exact commands it gave and the state
/// it left. <c>tests/ts/engine-scenarios.test.mjs</c> replays the same file against engine.ts;
/// the file's description says what it leaves out and how the runner gives op ids. A scenario
/// of type <c>rich-text</c> runs a <see cref="RichTextType"/> engine, its ops and texts deltas.
/// </summary>
public sealed class EngineScenarioTests
{
    private const string DocId = "doc";

    private static readonly JsonObject s_vectors =
        Vectors.Read("engine-scenarios.json").AsObject();

    /// <summary>Messages as the file writes them: camelCase, a field without a value left out.</summary>
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public static TheoryData<string> Scenarios() => Vectors.ScenarioNames(s_vectors);

    [Fact]
    public void TheFileHoldsTheScenariosEachWithANameOfItsOwn()
    {
        var names = s_vectors["scenarios"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()).ToList();
        Assert.True(names.Count >= 24);
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void ScenarioGivesTheExpectedCommandsAndStateAfterEachEvent(string name)
    {
        var scenario = s_vectors["scenarios"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!;
        if (scenario["type"]?.GetValue<string>() == "rich-text")
        {
            Replay(scenario, new EngineState<Delta, Delta>(RichTextType.Instance), op => new LocalEdit<Delta>(Deserialize<Delta>(op)!), Serialize);
        }
        else
        {
            Replay(scenario, EngineState.Initial, op => new LocalEdit(Deserialize<TextOperation>(op)!), text => text.ToString());
        }
    }

    /// <summary>
    /// Replays <paramref name="scenario"/> from <paramref name="initial"/>: <paramref name="localEdit"/>
    /// reads a local edit's op, <paramref name="text"/> writes a document as the file's expect has it.
    /// </summary>
    private static void Replay<TDoc, TOp>(JsonNode scenario, EngineState<TDoc, TOp> initial, Func<JsonNode?, EngineEvent> localEdit, Func<TDoc, JsonNode?> text)
        where TDoc : class
        where TOp : class
    {
        var (state, commands) = SyncEngine.Step(initial, new Open(DocId, "me", Deserialize<UserInfo>(scenario["open"]?["user"])));
        Assert.Empty(commands);
        long nextOpId = 1;
        var index = 0;
        foreach (var step in scenario["steps"]!.AsArray())
        {
            var @event = step!["event"]!;
            var where = $"step {index++} ({@event["type"]})";
            if (state.OpIds.Count < SyncEngine.OpIdReserve)
            {
                var ids = new List<long>();
                while (state.OpIds.Count + ids.Count < SyncEngine.OpIdReserve)
                {
                    ids.Add(nextOpId++);
                }
                (state, commands) = SyncEngine.Step(state, new OpIds(ids));
                Assert.True(commands.Count == 0, $"{where}: OpIds gave commands");
            }
            var before = Snapshot(state);
            (var next, commands) = SyncEngine.Step(state, ToEvent(@event, localEdit));
            Assert.True(Snapshot(state) == before, $"{where}: the step changed the state it was given");
            state = next;
            var expect = step["expect"]!.AsObject();
            AssertSame(expect["commands"], new JsonArray([.. commands.Select(ToJson)]), $"{where}: commands");
            foreach (var (key, value) in expect)
            {
                if (key != "commands")
                {
                    AssertSame(value, key == "text" ? text(state.Text) : Project(state, key), $"{where}: {key}");
                }
            }
        }
    }

    /// <summary>An event from the file as the engine takes it, with every message's docId put back.</summary>
    private static EngineEvent ToEvent(JsonNode e, Func<JsonNode?, EngineEvent> localEdit)
    {
        EngineEvent @event = e["type"]!.GetValue<string>() switch
        {
            "connected" => new Connected(e["resume"]?.GetValue<bool>() ?? true),
            "disconnected" => new Disconnected(),
            "joinResult" => new JoinResultEvent(e["session"]!.GetValue<int>(), JoinResultOf(e["result"]!)),
            "joinFailed" => new JoinFailed(e["session"]!.GetValue<int>(), e["code"]?.GetValue<string>(), e["message"]!.GetValue<string>(), e["random"]!.GetValue<double>()),
            "localEdit" => localEdit(e["op"]),
            "serverOp" => new ServerOp(WithDocId(Deserialize<OpMessage>(e["message"])!)),
            "submitResult" => new SubmitResultEvent(e["session"]!.GetValue<int>(), e["opId"]!.GetValue<long>(), e["version"]!.GetValue<int>()),
            "submitFailed" => new SubmitFailed(
                e["session"]!.GetValue<int>(), e["opId"]!.GetValue<long>(), e["code"]?.GetValue<string>(), e["message"]!.GetValue<string>(), e["random"]!.GetValue<double>()),
            "presenceLocal" => new PresenceLocal([.. Deserialize<List<SelectionRange>>(e["selection"])!.Select(r => new SelectedRange(r.Anchor, r.Head))]),
            "presenceRemote" => new PresenceRemote(WithDocId(Deserialize<PresenceMessage>(e["message"])!)),
            "userChanged" => new UserChanged(Deserialize<UserInfo>(e["user"])),
            "reset" => new Reset(),
            "tick" => new Tick(),
            "leave" => new Leave(),
            var type => throw new InvalidDataException($"unknown event type {type}"),
        };
        return @event with { NowMs = e["nowMs"]?.GetValue<double>() };
    }

    private static JoinResult JoinResultOf(JsonNode node)
    {
        var result = Deserialize<JoinResult>(node)!;
        result.DocId = DocId;
        result.Ops?.ForEach(m => WithDocId(m));
        result.Presence.ForEach(m => WithDocId(m));
        return result;
    }

    private static OpMessage WithDocId(OpMessage message)
    {
        message.DocId = DocId;
        return message;
    }

    private static PresenceMessage WithDocId(PresenceMessage message)
    {
        message.DocId = DocId;
        return message;
    }

    private static T? Deserialize<T>(JsonNode? node) => node is null ? default : node.Deserialize<T>(s_json);

    /// <summary>A command as the file writes it: the names of engine.ts, a field without a value left out.</summary>
    private static JsonNode ToJson(EngineCommand command) => command switch
    {
        SendJoin c => new JsonObject { ["type"] = "sendJoin", ["session"] = c.Session, ["request"] = Serialize(c.Request) },
        SendSubmit c => new JsonObject { ["type"] = "sendSubmit", ["session"] = c.Session, ["request"] = Serialize(c.Request) },
        SendPresence c => new JsonObject { ["type"] = "sendPresence", ["request"] = Serialize(c.Request) },
        SendLeave c => new JsonObject { ["type"] = "sendLeave", ["docId"] = c.DocId },
        ApplyRemote c => ApplyRemoteJson(c),
        ApplyRemote<Delta> c => ApplyRemoteJson(c),
        Emit c => new JsonObject { ["type"] = "emit", ["event"] = Name(c.Event), ["payload"] = ToJson(c.Payload) },
        SetTimer c => new JsonObject { ["type"] = "setTimer", ["name"] = Name(c.Name), ["dueMs"] = c.DueMs },
        ClearTimer c => new JsonObject { ["type"] = "clearTimer", ["name"] = Name(c.Name) },
        Redirect c => new JsonObject { ["type"] = "redirect", ["url"] = c.Url },
        FailOpen c => new JsonObject { ["type"] = "failOpen", ["code"] = c.Code, ["message"] = c.Message },
        _ => throw new InvalidDataException($"unknown command {command}"),
    };

    private static JsonObject ApplyRemoteJson<TOp>(ApplyRemote<TOp> c) => WithoutNulls(new JsonObject
    {
        ["type"] = "applyRemote",
        ["op"] = Serialize(c.Op),
        ["origin"] = Name(c.Origin),
        ["clientId"] = c.ClientId,
    });

    private static JsonNode ToJson(EmitPayload payload) => payload switch
    {
        PresencePayload p => new JsonObject { ["members"] = Members(p.Members) },
        PendingPayload p => new JsonObject { ["pendingEdits"] = p.PendingEdits },
        JoinedPayload p => new JsonObject { ["version"] = p.Version, ["readOnly"] = p.ReadOnly, ["resumed"] = p.Resumed },
        ErrorPayload p => WithoutNulls(new JsonObject { ["code"] = p.Code, ["message"] = p.Message }),
        _ => throw new InvalidDataException($"unknown payload {payload}"),
    };

    private static JsonArray Members(IEnumerable<Member> members) => new([.. members.Select(m => (JsonNode)new JsonObject
    {
        ["clientId"] = m.ClientId,
        ["user"] = Serialize(m.User),
        ["selection"] = new JsonArray([.. m.Selection.Select(r => (JsonNode)new JsonObject { ["anchor"] = r.Anchor, ["head"] = r.Head })]),
    })]);

    /// <summary>What the file's expect keys other than text say about a state.</summary>
    private static JsonNode? Project<TDoc, TOp>(EngineState<TDoc, TOp> s, string key)
        where TDoc : class
        where TOp : class => key switch
    {
        "version" => s.Version,
        "syncState" => s.Sync.Kind.ToString(),
        "pendingEdits" => s.Sync.PendingEdits,
        "phase" => Name(s.Phase),
        "readOnly" => s.ReadOnly,
        "members" => Members(s.Members),
        "timers" => new JsonObject(s.Timers.Select(t => KeyValuePair.Create(Name(t.Key), (JsonNode?)t.Value))),
        _ => throw new InvalidDataException($"the file expects an unknown key {key}"),
    };

    /// <summary>Everything a state holds that a step could change by mistake, as a string.</summary>
    private static string Snapshot<TDoc, TOp>(EngineState<TDoc, TOp> s)
        where TDoc : class
        where TOp : class => string.Join(
        "\n",
        s.Text,
        s.ServerText,
        s.Version,
        s.Sync,
        s.Phase,
        s.Session,
        string.Join(",", s.OpIds),
        string.Join(",", s.Queue.OrderBy(q => q.Key).Select(q => q.Value is QueuedOp op ? $"{q.Key}:op {op.Message.ClientId} {op.Message.OpId} {op.Message.Op}" : $"{q.Key}:{q.Value}")),
        string.Join(",", s.Recent),
        string.Join(",", s.Members.Select(m => $"{m.ClientId}:{string.Join(";", m.Selection)}")),
        string.Join(",", s.FuturePresence.Select(m => $"{m.ClientId}@{m.Version}")),
        string.Join(",", s.Selection ?? []),
        string.Join(",", s.Timers.OrderBy(t => t.Key).Select(t => $"{t.Key}:{t.Value}")));

    private static JsonNode? Serialize<T>(T value) => JsonSerializer.SerializeToNode(value, s_json);

    private static JsonObject WithoutNulls(JsonObject o)
    {
        foreach (var key in o.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            o.Remove(key);
        }
        return o;
    }

    private static string Name<T>(T value) where T : struct, Enum => JsonNamingPolicy.CamelCase.ConvertName(value.ToString());

    /// <summary>
    /// Equal as JSON values: objects whatever their key order, numbers by value, and ops in their
    /// canonical form (engine.ts passes a local edit on as the shell gave it, so the file may
    /// write [0,"x"]; a C# <see cref="TextOperation"/> or <see cref="Delta"/> is canonical whatever
    /// it was read from).
    /// </summary>
    private static void AssertSame(JsonNode? expected, JsonNode? actual, string what)
    {
        var e = Canonical(expected);
        var a = Canonical(actual);
        Assert.True(e == a, $"{what}\nexpected: {e}\nactual:   {a}");
    }

    private static string Canonical(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(JsonSerializer.SerializeToElement(node), sb);
        return sb.ToString();

        static void Write(JsonElement e, StringBuilder sb)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    sb.Append('{');
                    var first = true;
                    foreach (var p in e.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                    {
                        sb.Append(first ? "" : ",").Append(JsonSerializer.Serialize(p.Name)).Append(':');
                        var value = p.Name == "op" ? JsonSerializer.SerializeToElement(p.Value.Deserialize<WireOp>(s_json), s_json) : p.Value;
                        Write(value, sb);
                        first = false;
                    }
                    sb.Append('}');
                    break;
                case JsonValueKind.Array:
                    sb.Append('[');
                    var i = 0;
                    foreach (var item in e.EnumerateArray())
                    {
                        sb.Append(i++ > 0 ? "," : "");
                        Write(item, sb);
                    }
                    sb.Append(']');
                    break;
                case JsonValueKind.Number:
                    sb.Append(e.GetDouble().ToString("R", CultureInfo.InvariantCulture));
                    break;
                default:
                    sb.Append(e.GetRawText());
                    break;
            }
        }
    }
}
