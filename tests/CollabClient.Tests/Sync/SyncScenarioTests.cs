using System.Text.Json.Nodes;
using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Logging.Abstractions;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// The shared client sync scenarios (<c>tests/vectors/sync-scenarios.json</c>), replayed against
/// a real <see cref="CollabDocument"/> through a transport whose answers each step gives. The
/// TypeScript client replays the same file (<c>tests/ts/sync-scenarios.test.mjs</c>); both must
/// produce, after every step, the same text, version, state, and Submit and Join requests.
/// </summary>
public sealed class SyncScenarioTests
{
    private const string DocId = "doc";

    private static readonly JsonObject s_vectors =
        (JsonObject)Expand(Vectors.Read("sync-scenarios.json"))!;

    public static TheoryData<string> Scenarios() => Vectors.ScenarioNames(s_vectors);

    [Fact]
    public void TheFileHoldsTheScenariosAndTheSameSplitLimitAsTheClient()
    {
        Assert.True(s_vectors["scenarios"]!.AsArray().Count >= 15);
        Assert.Equal(SyncState.MaxInsertPerOp, s_vectors["maxInsertPerOp"]!.GetValue<int>());
    }

    [Theory]
    [MemberData(nameof(Scenarios))]
    public async Task ScenarioGivesTheExpectedTextVersionAndRequestsAfterEachStep(string name)
    {
        var scenario = s_vectors["scenarios"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!;
        var transport = new ScriptedTransport();
        long opIds = 0;
        var doc = new CollabDocument(
            DocId,
            "me",
            user: null,
            transport,
            () => ++opIds,
            NullLogger.Instance,
            // No step depends on time: a retry wait never ends on its own.
            delay: (_, cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken));
        try
        {
            Task opened = null!;
            DummyServer.Inline(() =>
            {
                opened = doc.JoinInitialAsync(CancellationToken.None);
                var join = scenario["join"]!;
                transport.Take("join").Join!.SetResult(new JoinResult
                {
                    DocId = DocId,
                    Version = join["version"]!.GetValue<int>(),
                    Text = join["text"]!.GetValue<string>(),
                });
            });
            Assert.True(opened.IsCompletedSuccessfully, $"the first join did not complete: {opened.Status}");
            transport.Log.Clear();
            var errors = new List<string>();
            doc.Error += (_, e) => errors.Add(e.Error.Code);

            var index = 0;
            foreach (var step in scenario["steps"]!.AsArray())
            {
                DummyServer.Inline(() => Run(doc, transport, step!));
                Check(doc, transport, step!, $"step {index++} ({step!.AsObject().First(p => p.Key != "expect").Key})", errors);
                errors.Clear();
            }
        }
        finally
        {
            await doc.DisposeAsync();
        }
    }

    private static void Run(CollabDocument doc, ScriptedTransport transport, JsonNode step)
    {
        if (step["local"] is { } local)
        {
            doc.Apply(ReadOp(local));
        }
        else if (step["op"] is { } op)
        {
            doc.OnOp(ReadOpMessage(op));
        }
        else if (step["ack"] is { } ack)
        {
            transport.Take("submit", ack["opId"]!.GetValue<long>()).Submit!.SetResult(new SubmitResult { Version = ack["version"]!.GetValue<int>() });
        }
        else if (step["reject"] is { } reject)
        {
            transport.Take("submit", reject["opId"]!.GetValue<long>()).Submit!
                .SetException(new HubException($"{reject["code"]!.GetValue<string>()}: refused by the scenario"));
        }
        else if (step["disconnect"] is not null)
        {
            transport.State = ConnectionState.Reconnecting;
            doc.OnConnectionLost();
            transport.FailUnanswered();
        }
        else if (step["connect"] is not null)
        {
            transport.State = ConnectionState.Connected;
            doc.OnConnectionRestored();
        }
        else if (step["joinResult"] is { } result)
        {
            transport.Take("join").Join!.SetResult(new JoinResult
            {
                DocId = DocId,
                Version = result["version"]!.GetValue<int>(),
                Text = result["text"]?.GetValue<string>(),
                Ops = result["ops"]?.AsArray().Select(m => ReadOpMessage(m!)).ToList(),
            });
        }
        else if (step["reset"] is not null)
        {
            doc.OnReset(new ResetMessage { DocId = DocId, Reason = "scenario" });
        }
        else
        {
            Assert.Fail($"a step that does nothing: {step.ToJsonString()}");
        }
    }

    private static void Check(CollabDocument doc, ScriptedTransport transport, JsonNode step, string where, List<string> errors)
    {
        var expect = step["expect"]!;
        var submits = transport.Log.OfType<SubmitRequest>().Select(r => (r.Op!.ToString(), r.BaseVersion, r.OpId)).ToList();
        var joins = transport.Log.OfType<JoinRequest>().Select(r => r.SinceVersion).ToList();
        transport.Log.Clear();
        var expectedSubmits = (expect["submits"]?.AsArray() ?? [])
            .Select(s => (ReadOp(s!["op"]!).ToString(), s["baseVersion"]!.GetValue<int>(), s["opId"]!.GetValue<long>()))
            .ToList();
        var expectedJoins = (expect["joins"]?.AsArray() ?? []).Select(j => j!["sinceVersion"]?.GetValue<int>()).ToList();

        var text = doc.Text;
        var expectedText = expect["text"]!.GetValue<string>();
        Assert.True(text == expectedText, $"{where}: text {Brief(text)}, expected {Brief(expectedText)}");
        Assert.True(expect["version"]!.GetValue<int>() == doc.Version, $"{where}: version {doc.Version}, expected {expect["version"]} ({doc.DebugState})");
        Assert.True(expect["state"]!.GetValue<string>() == doc.SyncState.ToString(), $"{where}: state {doc.SyncState}, expected {expect["state"]}");
        Assert.True(expect["pendingEdits"]!.GetValue<int>() == doc.PendingEdits, $"{where}: pending edits {doc.PendingEdits}, expected {expect["pendingEdits"]}");
        Assert.True(submits.SequenceEqual(expectedSubmits), $"{where}: submits [{Brief(submits)}], expected [{Brief(expectedSubmits)}]");
        Assert.True(joins.SequenceEqual(expectedJoins), $"{where}: joins since [{string.Join(", ", joins.Select(v => v?.ToString() ?? "null"))}], expected [{string.Join(", ", expectedJoins.Select(v => v?.ToString() ?? "null"))}]");
        if (expect["errors"]?.AsArray() is { } expectedErrors)
        {
            var codes = expectedErrors.Select(e => e!.GetValue<string>()).ToList();
            Assert.True(errors.SequenceEqual(codes), $"{where}: error events [{string.Join(", ", errors)}], expected [{string.Join(", ", codes)}]");
        }
    }

    private static string Brief(string s) => s.Length > 40 ? $"<{s.Length} code units: {s[..20]}…{s[^20..]}>" : $"'{s}'";

    private static string Brief(List<(string Op, int BaseVersion, long OpId)> submits) =>
        string.Join(", ", submits.Select(s => $"{(s.Op.Length > 60 ? $"<{s.Op.Length} chars>" : s.Op)} @{s.BaseVersion} #{s.OpId}"));

    private static TextOperation ReadOp(JsonNode node)
    {
        var builder = new TextOperation.Builder();
        foreach (var c in node.AsArray())
        {
            if (c!.GetValueKind() == System.Text.Json.JsonValueKind.String)
            {
                builder.Insert(c.GetValue<string>());
            }
            else if (c.GetValue<int>() is var n && n > 0)
            {
                builder.Retain(n);
            }
            else
            {
                builder.Delete(-n);
            }
        }
        return builder.Build();
    }

    private static OpMessage ReadOpMessage(JsonNode node) => new()
    {
        DocId = DocId,
        Version = node["version"]!.GetValue<int>(),
        Op = ReadOp(node["op"]!),
        ClientId = node["clientId"]!.GetValue<string>(),
        OpId = node["opId"]!.GetValue<long>(),
    };

    /// <summary>Strings may be written {repeat, times} or {concat: [...]}, to keep large inserts short.</summary>
    private static JsonNode? Expand(JsonNode? node) => node switch
    {
        JsonObject o when o.ContainsKey("repeat") =>
            JsonValue.Create(string.Concat(Enumerable.Repeat(o["repeat"]!.GetValue<string>(), o["times"]!.GetValue<int>()))),
        JsonObject o when o.ContainsKey("concat") =>
            JsonValue.Create(string.Concat(o["concat"]!.AsArray().Select(p => Expand(p)!.GetValue<string>()))),
        JsonObject o => new JsonObject(o.Select(p => KeyValuePair.Create(p.Key, Expand(p.Value)))),
        JsonArray a => new JsonArray(a.Select(Expand).ToArray()),
        _ => node?.DeepClone(),
    };

    /// <summary>
    /// The document's connection, answered by hand: every call is recorded and waits until a step
    /// answers it. Continuations run inline (no RunContinuationsAsynchronously, and steps run
    /// without a SynchronizationContext), so a step's consequences are done when it returns.
    /// </summary>
    private sealed class ScriptedTransport : IDocumentTransport
    {
        private readonly List<Call> _calls = [];

        public ConnectionState State { get; set; } = ConnectionState.Connected;

        /// <summary>Join and Submit requests in the order they were sent.</summary>
        public List<object> Log { get; } = [];

        public sealed record Call(object Request, TaskCompletionSource<JoinResult>? Join, TaskCompletionSource<SubmitResult>? Submit)
        {
            public bool Answered { get; set; }
        }

        /// <summary>The oldest unanswered Join, or Submit with <paramref name="opId"/>.</summary>
        public Call Take(string kind, long? opId = null)
        {
            var call = _calls.FirstOrDefault(c => !c.Answered
                && (kind == "join" ? c.Join is not null : c.Request is SubmitRequest r && r.OpId == opId));
            Assert.True(call is not null, $"no unanswered {kind} call{(opId is null ? "" : $" for op {opId}")} to answer");
            call.Answered = true;
            return call;
        }

        /// <summary>The connection dropped: every call still waiting fails, without a protocol code.</summary>
        public void FailUnanswered()
        {
            foreach (var call in _calls.Where(c => !c.Answered).ToList())
            {
                call.Answered = true;
                var error = new IOException("The connection was closed.");
                call.Join?.SetException(error);
                call.Submit?.SetException(error);
            }
        }

        public Task<JoinResult> JoinAsync(JoinRequest request, CancellationToken cancellationToken)
        {
            if (State != ConnectionState.Connected)
            {
                return Task.FromException<JoinResult>(new InvalidOperationException("The connection is not active."));
            }
            var result = new TaskCompletionSource<JoinResult>();
            _calls.Add(new Call(request, result, null));
            Log.Add(request);
            return result.Task;
        }

        public Task<SubmitResult> SubmitAsync(SubmitRequest request, CancellationToken cancellationToken)
        {
            if (State != ConnectionState.Connected)
            {
                return Task.FromException<SubmitResult>(new InvalidOperationException("The connection is not active."));
            }
            var result = new TaskCompletionSource<SubmitResult>();
            _calls.Add(new Call(request, null, result));
            Log.Add(request);
            return result.Task;
        }

        public Task SetPresenceAsync(PresenceRequest request, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task LeaveAsync(string docId, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IDocumentTransport> RedirectAsync(CollabDocument document, string baseUrl, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public Task<IDocumentTransport> ReturnHomeAsync(CollabDocument document, CancellationToken cancellationToken) =>
            throw new NotSupportedException();

        public void Detach(CollabDocument document)
        {
        }

        // The script makes the connection's drops and returns: nothing to retry here.
        public void ReconnectNow()
        {
        }
    }
}
