using System.Collections.Concurrent;
using System.Diagnostics;
using Collab.Client;
using Collab.Ot;

namespace Collab.Testing;

/// <summary>
/// One person typing through the real .NET client: appends tokens <c>[name:i]</c> at the end of
/// the document, one at a time, each awaited until the server acknowledged it. It knows every
/// token it typed and when each was acknowledged, so a test can say that none was lost, doubled
/// or reordered, and how long writing stopped.
/// </summary>
public sealed class Typist : IAsyncDisposable
{
    private readonly CollabClient _client;
    private readonly ConcurrentQueue<(int Token, long AckedAt)> _acks = new();
    private Task _typing = Task.CompletedTask;
    private CancellationTokenSource _stop = new();
    private int _typed;

    private Typist(string name, CollabClient client, CollabDocument document)
    {
        Name = name;
        _client = client;
        Document = document;
    }

    public string Name { get; }

    public CollabDocument Document { get; }

    /// <summary>Tokens typed so far (each is acknowledged before the next is typed).</summary>
    public int Typed => Volatile.Read(ref _typed);

    public static string Token(string name, int i) => $"[{name}:{i}]";

    /// <summary>Waits until the client knows <paramref name="count"/> nodes, so that it can move off a node that dies.</summary>
    public Task WaitKnowsNodesAsync(int count) =>
        Eventually.TrueAsync(() => Task.FromResult(_client.KnownNodes.Count >= count), $"{Name} knows {count} nodes");

    public static async Task<Typist> OpenAsync(string name, Uri server, string docId)
    {
        var client = new CollabClient(new CollabClientOptions
        {
            ServerUrl = server,
            MinReconnectDelay = TimeSpan.FromMilliseconds(100),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
        });
        try
        {
            return new Typist(name, client, await client.OpenAsync(docId));
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts typing, at most <paramref name="limit"/> tokens, until <see cref="StopAsync"/>.</summary>
    public void Start(int limit = 100_000)
    {
        _stop = new CancellationTokenSource();
        var stop = _stop.Token;
        _typing = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested && _typed < limit)
            {
                // Appended to the text as read: a remote op applied in between makes it read again.
                Rope text;
                do
                {
                    text = Document.TextRope;
                }
                while (!Document.TryApply(new TextOperation.Builder().Retain(text.Length).Insert(Token(Name, _typed)).Build(), text));
                Interlocked.Increment(ref _typed);
                await Document.WhenSynchronizedAsync(CancellationToken.None);
                _acks.Enqueue((_typed - 1, Stopwatch.GetTimestamp()));
            }
        });
    }

    /// <summary>Stops typing after the token in hand is acknowledged.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _typing.WaitAsync(Eventually.Timeout);
    }

    /// <summary>Tokens acknowledged so far.</summary>
    public int Acked => _acks.Count;

    /// <summary>Waits until <paramref name="total"/> tokens in all were acknowledged.</summary>
    public Task WaitForAckedAsync(int total) =>
        Eventually.TrueAsync(() => Task.FromResult(_acks.Count >= total), $"{Name} has {total} acknowledged tokens (has {_acks.Count}; {Document.ConnectionState}, pending {Document.PendingOps})");

    /// <summary>When the first token typed after <paramref name="timestamp"/> was acknowledged (a Stopwatch timestamp), or null.</summary>
    public long? FirstAckAfter(long timestamp) => _acks.Where(a => a.AckedAt > timestamp).Select(a => (long?)a.AckedAt).FirstOrDefault();

    /// <summary>The longest time between two acknowledgements.</summary>
    public TimeSpan LongestGap()
    {
        var times = _acks.Select(a => a.AckedAt).ToArray();
        var longest = 0L;
        for (var i = 1; i < times.Length; i++)
        {
            longest = Math.Max(longest, times[i] - times[i - 1]);
        }
        return Stopwatch.GetElapsedTime(0, longest);
    }

    /// <summary>
    /// Asserts that <paramref name="text"/> has each of this typist's tokens exactly once, in the
    /// order typed (one client's inserts at the end keep their order under OT).
    /// </summary>
    public void AssertAllOnceInOrder(string text)
    {
        var at = -1;
        for (var i = 0; i < Typed; i++)
        {
            var token = Token(Name, i);
            var first = text.IndexOf(token, StringComparison.Ordinal);
            Assert.True(first >= 0, $"{token} (typed, acknowledged) is missing");
            Assert.True(text.IndexOf(token, first + token.Length, StringComparison.Ordinal) < 0, $"{token} is in the text twice");
            Assert.True(first > at, $"{token} comes before the token typed before it");
            at = first;
        }
        Assert.DoesNotContain(Token(Name, Typed), text);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _client.DisposeAsync();
    }
}
