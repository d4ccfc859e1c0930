using System.Net.Http.Json;
using System.Text;
using System.Text.RegularExpressions;
using Collab.Messages;
using Collab.Ot;

namespace Collab.Client.Tests.Integration;

/// <summary>Real clients against the real server (in-memory transport, real SQLite files).</summary>
public sealed partial class RealServerTests
{
    private static readonly TimeSpan s_timeout = ServerHost.Timeout;

    [Theory]
    [InlineData(CollabProtocol.MessagePack, 101)]
    [InlineData(CollabProtocol.Json, 202)]
    public async Task TenClientsEditingAtOnceConvergeWithEachOtherAndTheServer(CollabProtocol protocol, int seed)
    {
        await using var host = new ServerHost();
        const string docId = "ten-clients";
        var clients = Enumerable.Range(0, 10).Select(_ => host.CreateClient(protocol)).ToList();
        var docs = await Task.WhenAll(clients.Select(c => c.OpenAsync(docId))).WaitAsync(s_timeout);

        var editors = docs.Select((doc, i) => Task.Run(async () =>
        {
            var rng = new Random(seed * 100 + i);
            for (var n = 0; n < 60; n++)
            {
                RandomEdit(doc, rng);
                if (rng.Next(4) == 0)
                {
                    await Task.Delay(rng.Next(1, 4));
                }
            }
        }));
        await Task.WhenAll(editors).WaitAsync(s_timeout);
        await Task.WhenAll(docs.Select(d => d.WhenSynchronizedAsync())).WaitAsync(s_timeout);

        var (version, text) = await host.GetDocAsync(docId);
        Assert.True(version > 10, $"only {version} ops were committed");
        await ServerHost.EventuallyAsync(() => docs.All(d => d.Version == version), $"every client reached version {version}");
        foreach (var doc in docs)
        {
            Assert.Equal(text, doc.Text);
            Assert.False(doc.HasUnconfirmedChanges);
        }
        Assert.Empty(host.Errors.Entries);
    }

    [Theory]
    [InlineData(CollabProtocol.MessagePack, 7)]
    [InlineData(CollabProtocol.Json, 8)]
    public async Task ClientWhoseConnectionIsKilledMidEditResumesAndEveryEditLandsOnce(CollabProtocol protocol, int seed)
    {
        await using var host = new ServerHost();
        const string docId = "killed";
        var killer = new SocketKiller();
        var victim = host.CreateClient(protocol, killer);
        var others = Enumerable.Range(0, 2).Select(_ => host.CreateClient(protocol)).ToList();
        var victimDoc = await victim.OpenAsync(docId).WaitAsync(s_timeout);
        var otherDocs = await Task.WhenAll(others.Select(c => c.OpenAsync(docId))).WaitAsync(s_timeout);
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        foreach (var doc in otherDocs.Prepend(victimDoc))
        {
            doc.Error += (_, e) => errors.Enqueue($"{doc.DocId}: {e.Error.Code} {e.Error.Message} (discarded: {e.LocalChangesDiscarded})");
        }
        var states = new List<ConnectionState>();
        victimDoc.ConnectionStateChanged += (_, e) =>
        {
            lock (states)
            {
                states.Add(e.Current);
            }
        };

        var tokens = new System.Collections.Concurrent.ConcurrentBag<string>();
        var kills = 0;
        // Writes count tokens, and goes on (up to 10 times as many) while untilKills kills have not happened yet.
        async Task WriteTokens(CollabDocument doc, string name, int count, int writerSeed, int untilKills = 0)
        {
            var rng = new Random(writerSeed);
            for (var i = 0; i < count || (Volatile.Read(ref kills) < untilKills && i < count * 10); i++)
            {
                var token = $"<{name}.{i}>";
                InsertAtRandomBoundary(doc, token, rng);
                tokens.Add(token);
                await Task.Delay(rng.Next(1, 6));
            }
        }

        var journals = all0().ToDictionary(d => d, _ => new List<(int Version, string Op)>());
        foreach (var (doc, journal) in journals)
        {
            doc.Journal = (v, op) => journal.Add((v, op.ToString()));
        }
        List<CollabDocument> all0() => otherDocs.Prepend(victimDoc).ToList();

        // However slowly a busy machine reconnects, the victim writes through at least three kills.
        var victimWriter = Task.Run(() => WriteTokens(victimDoc, "victim", 150, seed, untilKills: 3));
        var otherWriters = otherDocs.Select((d, i) => Task.Run(() => WriteTokens(d, $"other{i}", 60, seed * 10 + i))).ToList();
        var killRng = new Random(seed);
        while (!victimWriter.IsCompleted)
        {
            await Task.Delay(killRng.Next(30, 120));
            // Kill only a live connection, so that each kill interrupts real traffic.
            if (victimDoc.ConnectionState == ConnectionState.Connected && killer.KillAll() > 0)
            {
                Interlocked.Increment(ref kills);
            }
        }
        await victimWriter.WaitAsync(s_timeout);
        await Task.WhenAll(otherWriters).WaitAsync(s_timeout);
        Assert.True(kills >= 3, $"the connection was killed only {kills} times");

        var all = otherDocs.Prepend(victimDoc).ToList();
        await Task.WhenAll(all.Select(d => d.WhenSynchronizedAsync())).WaitAsync(s_timeout);
        var (version, text) = await host.GetDocAsync(docId);
        await ServerHost.EventuallyAsync(
            () => all.All(d => d.Version == version && d.ConnectionState == ConnectionState.Connected && !d.HasUnconfirmedChanges),
            $"every client is connected, with nothing pending, at version {version}");
        Assert.True(errors.IsEmpty, string.Join("\n", errors.Concat(host.Errors.Warnings)));
        if (all.Any(d => d.Text != text))
        {
            var ops = await host.Http.GetFromJsonAsync<List<OpMessage>>($"/api/docs/{docId}/ops?from=0&limit=10000").WaitAsync(s_timeout);
            var report = new StringBuilder();
            foreach (var (doc, journal) in journals)
            {
                var name = doc == victimDoc ? "victim" : "other";
                foreach (var entry in journal)
                {
                    var op = ops![entry.Version - 1];
                    if (op.Op.ToString() != entry.Op)
                    {
                        report.AppendLine($"{name}: version {entry.Version}: applied {entry.Op}; server has {op.ClientId}/{op.OpId} {op.Op}");
                        break;
                    }
                }
            }
            Assert.Fail($"diverged; client id of victim {victim.ClientId}\n{report}\n{string.Join("\n", host.Errors.Warnings)}");
        }
        var found = TokenPattern().Matches(text).Select(m => m.Value).ToList();
        Assert.Equal(text, string.Concat(found));
        Assert.Equal(tokens.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
        await ServerHost.EventuallyAsync(() => victimDoc.ConnectionState == ConnectionState.Connected, "the victim is connected again");
        await ServerHost.EventuallyAsync(
            () =>
            {
                lock (states)
                {
                    return states.Count > 0 && states[^1] == ConnectionState.Connected;
                }
            },
            "the last state change reported Connected");
        lock (states)
        {
            Assert.Contains(ConnectionState.Reconnecting, states);
        }
        Assert.Empty(host.Errors.Entries);
    }

    [Fact]
    public async Task DeletedDocumentResetsMembersWhoRejoinAndKeepEditing()
    {
        await using var host = new ServerHost();
        const string docId = "reset-me";
        var a = await host.CreateClient(CollabProtocol.MessagePack).OpenAsync(docId).WaitAsync(s_timeout);
        var b = await host.CreateClient(CollabProtocol.Json).OpenAsync(docId).WaitAsync(s_timeout);
        a.Insert(0, "old text");
        await a.WhenSynchronizedAsync().WaitAsync(s_timeout);
        await ServerHost.EventuallyAsync(() => b.Text == "old text", "b saw the text");

        var resetA = new TaskCompletionSource<ResetMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var resetB = new TaskCompletionSource<ResetMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Reset += (_, r) => resetA.TrySetResult(r);
        b.Reset += (_, r) => resetB.TrySetResult(r);
        var response = await host.Http.DeleteAsync($"/api/docs/{docId}").WaitAsync(s_timeout);
        Assert.True(response.IsSuccessStatusCode, $"DELETE answered {(int)response.StatusCode}");
        Assert.Equal(docId, (await resetA.Task.WaitAsync(s_timeout)).DocId);
        await resetB.Task.WaitAsync(s_timeout);

        await ServerHost.EventuallyAsync(() => a.ConnectionState == ConnectionState.Connected && b.ConnectionState == ConnectionState.Connected, "both rejoined");
        Assert.Equal("", a.Text);
        Assert.Equal("", b.Text);
        a.Insert(0, "new");
        await a.WhenSynchronizedAsync().WaitAsync(s_timeout);
        await ServerHost.EventuallyAsync(() => b.Text == "new", "b saw the new text");
        Assert.Equal((1, "new"), await host.GetDocAsync(docId));
    }

    [Fact]
    public async Task SelectionReachesOtherMembersAndLeavingRemovesIt()
    {
        await using var host = new ServerHost();
        const string docId = "presence";
        var aClient = host.CreateClient(CollabProtocol.MessagePack);
        var a = await aClient.OpenAsync(docId).WaitAsync(s_timeout);
        var b = await host.CreateClient(CollabProtocol.Json).OpenAsync(docId).WaitAsync(s_timeout);
        a.Insert(0, "hello");
        // Positions are sent in the server's coordinates; once confirmed, those are the local ones.
        await a.WhenSynchronizedAsync().WaitAsync(s_timeout);
        await a.SetSelectionAsync([new SelectionRange { Anchor = 1, Head = 4 }]).WaitAsync(s_timeout);
        await ServerHost.EventuallyAsync(
            () => b.Presence.TryGetValue(aClient.ClientId, out var p) && p.Selection is [{ Anchor: 1, Head: 4 }],
            "b saw a's selection");

        await a.DisposeAsync().AsTask().WaitAsync(s_timeout);
        await ServerHost.EventuallyAsync(() => !b.Presence.ContainsKey(aClient.ClientId), "a left b's presence");
    }

    [Fact]
    public async Task OpenAsyncReportsBadIdsAndUnreachableServers()
    {
        await using var host = new ServerHost();
        var client = host.CreateClient(CollabProtocol.MessagePack);
        await Assert.ThrowsAsync<ArgumentException>(() => client.OpenAsync(".hidden")).WaitAsync(s_timeout);
        var doc = await client.OpenAsync("twice").WaitAsync(s_timeout);
        await Assert.ThrowsAsync<InvalidOperationException>(() => client.OpenAsync("twice")).WaitAsync(s_timeout);
        Assert.Equal(ConnectionState.Connected, client.ConnectionState);
        Assert.Equal(ConnectionState.Connected, doc.ConnectionState);

        var nowhere = new CollabClient(new CollabClientOptions { ServerUrl = new Uri("http://127.0.0.1:1") });
        try
        {
            var error = await Assert.ThrowsAsync<CollabException>(() => nowhere.OpenAsync("doc")).WaitAsync(s_timeout);
            Assert.Equal(ErrorCodes.Unavailable, error.Code);
            Assert.Empty(nowhere.Documents);
        }
        finally
        {
            await nowhere.DisposeAsync().AsTask().WaitAsync(s_timeout);
        }
    }

    [GeneratedRegex("<[^<>]*>")]
    private static partial Regex TokenPattern();

    /// <summary>
    /// Inserts at a token boundary of the current text. Remote ops land on other threads between
    /// reading the text and inserting, so the insert is made only against the text it was
    /// computed on, and recomputed otherwise.
    /// </summary>
    private static void InsertAtRandomBoundary(CollabDocument doc, string token, Random rng)
    {
        while (true)
        {
            var text = doc.TextRope;
            var boundaries = new List<int> { 0 };
            var s = text.ToString();
            for (var i = 0; i < s.Length; i++)
            {
                if (s[i] == '>')
                {
                    boundaries.Add(i + 1);
                }
            }
            if (doc.TryApply(TextOperation.Insert(boundaries[rng.Next(boundaries.Count)], token), text))
            {
                return;
            }
        }
    }

    private static void RandomEdit(CollabDocument doc, Random rng)
    {
        while (true)
        {
            var text = doc.TextRope;
            var length = text.Length;
            var position = rng.Next(length + 1);
            var roll = rng.Next(10);
            var span = Math.Min(length - position, rng.Next(1, 5));
            var op = roll < 6 || span == 0
                ? TextOperation.Insert(position, RandomText(rng))
                : roll < 9
                    ? TextOperation.Delete(position, span)
                    : new TextOperation.Builder().Retain(position).Insert(RandomText(rng)).Delete(span).Build();
            if (doc.TryApply(op, text))
            {
                return;
            }
        }
    }

    private static string RandomText(Random rng)
    {
        var sb = new StringBuilder();
        for (var i = rng.Next(1, 4); i > 0; i--)
        {
            sb.Append((char)('a' + rng.Next(26)));
        }
        return sb.ToString();
    }
}
