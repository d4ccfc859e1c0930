using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using Collab.Ot;

namespace Collab.Client.Tests.Integration;

/// <summary>Rich-text documents (Quill deltas) opened by real .NET clients against the real server.</summary>
public sealed class RichTextTests
{
    private static readonly TimeSpan s_timeout = ServerHost.Timeout;

    private static readonly string[] s_formats = ["bold", "italic", "underline"];

    [Theory]
    [InlineData(CollabProtocol.MessagePack, 31)]
    [InlineData(CollabProtocol.Json, 32)]
    public async Task SeveralClientsInsertingAndFormattingAtOnceConvergeWithEachOtherAndTheServer(CollabProtocol protocol, int seed)
    {
        await using var host = new ServerHost();
        const string docId = "rich-several";
        var clients = Enumerable.Range(0, 4).Select(_ => host.CreateClient(protocol)).ToList();
        var docs = await Task.WhenAll(clients.Select(c => c.OpenRichTextAsync(docId))).WaitAsync(s_timeout);
        var errors = new ConcurrentQueue<string>();
        foreach (var doc in docs)
        {
            doc.Error += (_, e) => errors.Enqueue($"{e.Error.Code}: {e.Error.Message}");
        }

        var editors = docs.Select((doc, i) => Task.Run(async () =>
        {
            var rng = new Random(seed * 100 + i);
            for (var n = 0; n < 50; n++)
            {
                RandomChange(doc, rng, $"{i}.{n} ");
                if (rng.Next(4) == 0)
                {
                    await Task.Delay(rng.Next(1, 4));
                }
            }
        }));
        await Task.WhenAll(editors).WaitAsync(s_timeout);
        await Task.WhenAll(docs.Select(d => d.WhenSynchronizedAsync())).WaitAsync(s_timeout);

        var (version, delta) = await GetRichDocAsync(host, docId);
        // Edits made while one is in flight are composed into one op, so there are fewer ops than edits.
        Assert.True(version > docs.Length, $"only {version} ops were committed");
        await ServerHost.EventuallyAsync(() => docs.All(d => d.Version == version), $"every client reached version {version}");
        foreach (var doc in docs)
        {
            Assert.Equal(delta, doc.Delta);
            Assert.False(doc.HasUnconfirmedChanges);
        }
        Assert.True(delta.Ops.ToArray().Any(o => o.Attributes is not null), $"no formatting survived: {delta}");
        Assert.Empty(errors);
        Assert.Empty(host.Errors.Entries);
    }

    [Fact]
    public async Task ConcurrentFormattingOfARangeAndAnInsertInsideItKeepBoth()
    {
        await using var host = new ServerHost();
        const string docId = "rich-concurrent";
        var a = await host.CreateClient(CollabProtocol.MessagePack).OpenRichTextAsync(docId).WaitAsync(s_timeout);
        var b = await host.CreateClient(CollabProtocol.MessagePack).OpenRichTextAsync(docId).WaitAsync(s_timeout);
        a.Apply(new Delta.Builder().Insert("abcde").Build());
        await a.WhenSynchronizedAsync().WaitAsync(s_timeout);
        await ServerHost.EventuallyAsync(() => b.Version == a.Version, "b has the text");

        // Whichever the server takes first, and whether b has seen a's format when it inserts, the insert keeps
        // only its own attributes and the format covers exactly the text it was made on.
        a.Apply(new Delta.Builder().Retain(5, AttributeMap.Of("bold", true)).Build());
        b.Apply(new Delta.Builder().Retain(2).Insert("X", AttributeMap.Of("italic", true)).Build());
        await Task.WhenAll(a.WhenSynchronizedAsync(), b.WhenSynchronizedAsync()).WaitAsync(s_timeout);
        var (version, delta) = await GetRichDocAsync(host, docId);
        await ServerHost.EventuallyAsync(() => a.Version == version && b.Version == version, $"both reached version {version}");

        var expected = new Delta.Builder()
            .Insert("ab", AttributeMap.Of("bold", true))
            .Insert("X", AttributeMap.Of("italic", true))
            .Insert("cde", AttributeMap.Of("bold", true))
            .Build();
        Assert.Equal(expected, delta);
        Assert.Equal(expected, a.Delta);
        Assert.Equal(expected, b.Delta);
    }

    [Fact]
    public async Task ChangesEventsComposeToTheContentsAndSayWhoMadeThem()
    {
        await using var host = new ServerHost();
        const string docId = "rich-events";
        var aClient = host.CreateClient(CollabProtocol.Json);
        var a = await aClient.OpenRichTextAsync(docId).WaitAsync(s_timeout);
        var bClient = host.CreateClient(CollabProtocol.Json);
        var b = await bClient.OpenRichTextAsync(docId).WaitAsync(s_timeout);
        var seen = Delta.Empty;
        var origins = new ConcurrentQueue<(bool IsLocal, string? ClientId)>();
        b.Changed += (_, e) =>
        {
            seen = e.Change.Apply(seen);
            origins.Enqueue((e.IsLocal, e.ClientId));
        };

        a.Apply(new Delta.Builder().Insert("hello", AttributeMap.Of("bold", true)).Build());
        await ServerHost.EventuallyAsync(() => b.Delta.Length == 5, "b has a's insert");
        b.Apply(new Delta.Builder().Retain(5).Insert(" world").Build());
        await b.WhenSynchronizedAsync().WaitAsync(s_timeout);
        await ServerHost.EventuallyAsync(() => a.Version == b.Version, "a has b's insert");

        Assert.Equal(b.Delta, seen);
        Assert.Equal(a.Delta, b.Delta);
        Assert.Equal("hello world", b.Delta.PlainText());
        Assert.Equal([(false, aClient.ClientId), (true, null)], origins.ToArray());
    }

    [Theory]
    [InlineData(CollabProtocol.MessagePack, 41)]
    [InlineData(CollabProtocol.Json, 42)]
    public async Task ClientWhoseConnectionIsKilledResumesAndEveryInsertLandsOnce(CollabProtocol protocol, int seed)
    {
        await using var host = new ServerHost();
        const string docId = "rich-killed";
        var killer = new SocketKiller();
        var victim = await host.CreateClient(protocol, killer).OpenRichTextAsync(docId).WaitAsync(s_timeout);
        var other = await host.CreateClient(protocol).OpenRichTextAsync(docId).WaitAsync(s_timeout);
        var tokens = new ConcurrentBag<string>();
        var kills = 0;

        async Task Write(RichTextDocument doc, string name, int count, int writerSeed, int untilKills)
        {
            var rng = new Random(writerSeed);
            for (var i = 0; i < count || (Volatile.Read(ref kills) < untilKills && i < count * 10); i++)
            {
                var token = $"<{name}.{i}>";
                InsertToken(doc, token, rng);
                tokens.Add(token);
                await Task.Delay(rng.Next(1, 6));
            }
        }

        var victimWriter = Task.Run(() => Write(victim, "victim", 80, seed, untilKills: 2));
        var otherWriter = Task.Run(() => Write(other, "other", 40, seed + 1, untilKills: 0));
        var killRng = new Random(seed);
        while (!victimWriter.IsCompleted)
        {
            await Task.Delay(killRng.Next(30, 120));
            if (victim.ConnectionState == ConnectionState.Connected && killer.KillAll() > 0)
            {
                Interlocked.Increment(ref kills);
            }
        }
        await Task.WhenAll(victimWriter, otherWriter).WaitAsync(s_timeout);
        Assert.True(kills >= 2, $"the connection was killed only {kills} times");

        await Task.WhenAll(victim.WhenSynchronizedAsync(), other.WhenSynchronizedAsync()).WaitAsync(s_timeout);
        var (version, delta) = await GetRichDocAsync(host, docId);
        await ServerHost.EventuallyAsync(
            () => victim.Version == version && other.Version == version && victim.ConnectionState == ConnectionState.Connected,
            $"both are connected at version {version}");
        Assert.Equal(delta, victim.Delta);
        Assert.Equal(delta, other.Delta);
        var text = delta.PlainText();
        foreach (var token in tokens)
        {
            var first = text.IndexOf(token, StringComparison.Ordinal);
            Assert.True(first >= 0, $"{token} is missing from {text}");
            Assert.True(text.IndexOf(token, first + 1, StringComparison.Ordinal) < 0, $"{token} landed twice in {text}");
        }
    }

    [Fact]
    public async Task OpeningADocumentAsTheOtherTypeIsRefusedWithInvalidOpAndLeavesTheOpenOneWorking()
    {
        await using var host = new ServerHost();
        var textClient = host.CreateClient(CollabProtocol.MessagePack);
        var text = await textClient.OpenAsync("plain").WaitAsync(s_timeout);
        text.Insert(0, "plain text");
        await text.WhenSynchronizedAsync().WaitAsync(s_timeout);
        var rich = await host.CreateClient(CollabProtocol.MessagePack).OpenRichTextAsync("fancy").WaitAsync(s_timeout);
        rich.Apply(new Delta.Builder().Insert("fancy", AttributeMap.Of("bold", true)).Build());
        await rich.WhenSynchronizedAsync().WaitAsync(s_timeout);

        var other = host.CreateClient(CollabProtocol.Json);
        var asRich = await Assert.ThrowsAsync<CollabException>(() => other.OpenRichTextAsync("plain")).WaitAsync(s_timeout);
        Assert.Equal("invalid_op", asRich.Code);
        var asText = await Assert.ThrowsAsync<CollabException>(() => other.OpenAsync("fancy")).WaitAsync(s_timeout);
        Assert.Equal("invalid_op", asText.Code);
        Assert.Empty(other.Documents);

        // The text client is a text client as before: its document and a new one edit as ever.
        text.Insert(0, "still ");
        var second = await textClient.OpenAsync("plain-2").WaitAsync(s_timeout);
        second.Insert(0, "two");
        await Task.WhenAll(text.WhenSynchronizedAsync(), second.WhenSynchronizedAsync()).WaitAsync(s_timeout);
        Assert.Equal((2, "still plain text"), await host.GetDocAsync("plain"));
        Assert.Equal((1, "two"), await host.GetDocAsync("plain-2"));
        Assert.Equal(2, textClient.Documents.Count);
    }

    /// <summary>An insert of a short string (sometimes formatted), a format of a range, or a short delete, at random.</summary>
    private static void RandomChange(RichTextDocument doc, Random rng, string text)
    {
        while (true)
        {
            var basedOn = doc.Delta;
            var length = basedOn.Length;
            var kind = rng.Next(10);
            var at = rng.Next(length + 1);
            Delta change;
            if (kind < 6 || length == 0)
            {
                var attributes = rng.Next(3) == 0 ? AttributeMap.Of(s_formats[rng.Next(s_formats.Length)], true) : null;
                change = new Delta.Builder().Retain(at).Insert(text, attributes).Build();
            }
            else if (kind < 9)
            {
                var start = Math.Min(at, length - 1);
                var n = Math.Min(rng.Next(1, 8), length - start);
                var value = rng.Next(4) == 0 ? AttributeValue.Null : AttributeValue.From(true);
                change = new Delta.Builder().Retain(start).Retain(n, AttributeMap.Of(s_formats[rng.Next(s_formats.Length)], value)).Build();
            }
            else
            {
                var start = Math.Min(at, length - 1);
                change = new Delta.Builder().Retain(start).Delete(Math.Min(rng.Next(1, 4), length - start)).Build();
            }
            if (doc.TryApply(change, basedOn))
            {
                return;
            }
        }
    }

    /// <summary>Inserts <paramref name="token"/> where it cannot cut into another token: at the start, the end, or just after a '>'.</summary>
    private static void InsertToken(RichTextDocument doc, string token, Random rng)
    {
        while (true)
        {
            var basedOn = doc.Delta;
            var text = basedOn.PlainText();
            var boundaries = new List<int> { 0 };
            for (var i = 0; i < text.Length; i++)
            {
                if (text[i] == '>')
                {
                    boundaries.Add(i + 1);
                }
            }
            var at = boundaries[rng.Next(boundaries.Count)];
            var attributes = rng.Next(2) == 0 ? AttributeMap.Of("bold", true) : null;
            if (doc.TryApply(new Delta.Builder().Retain(at).Insert(token, attributes).Build(), basedOn))
            {
                return;
            }
        }
    }

    private static async Task<(int Version, Delta Delta)> GetRichDocAsync(ServerHost host, string id)
    {
        var doc = await host.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{id}").WaitAsync(s_timeout);
        Assert.Equal("rich-text", doc.GetProperty("type").GetString());
        return (doc.GetProperty("version").GetInt32(), doc.GetProperty("delta").Deserialize<Delta>()!);
    }
}
