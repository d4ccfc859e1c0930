using System.Diagnostics;
using Collab.Client;
using Collab.Ot;

namespace CollabLoad;

/// <summary>
/// One simulated user: its own <see cref="CollabClient"/> (so its own connection) with one
/// document open. It writes through the client library exactly as an application would, and
/// reports the other members' ops it applies to the writers' <see cref="OpLog"/>s.
/// </summary>
public sealed class SimClient : IAsyncDisposable
{
    private const string Letters = "abcdefghijklmnopqrstuvwxyz    ";

    private static readonly string[] s_formats = ["bold", "italic", "underline"];

    private readonly CollabClient _client;
    private readonly RunCounters _counters;
    private DocGroup? _group;
    private int[] _received = [];
    private volatile bool _sealed;

    private SimClient(CollabClient client, CollabDocument? document, RichTextDocument? rich, RunCounters counters)
    {
        _client = client;
        Document = document;
        Rich = rich;
        DocId = document?.DocId ?? rich!.DocId;
        _counters = counters;
        void OnError(object? sender, CollabErrorEventArgs e) => _counters.Error($"{DocId}: {e.Error.Code}: {e.Error.Message}");
        void OnState(object? sender, ConnectionStateChangedEventArgs e)
        {
            if (_sealed && e.Current == ConnectionState.Reconnecting)
            {
                Interlocked.Increment(ref _counters.Reconnects);
                _counters.Error($"{DocId}: client {client.ClientId} lost its connection");
            }
        }
        if (document is not null)
        {
            document.Error += OnError;
            document.ConnectionStateChanged += OnState;
        }
        else
        {
            rich!.Error += OnError;
            rich.ConnectionStateChanged += OnState;
        }
    }

    /// <summary>The document, when it is a text document.</summary>
    public CollabDocument? Document { get; }

    /// <summary>The document, when it is a rich-text document (<c>--type rich-text</c>).</summary>
    public RichTextDocument? Rich { get; }

    public string DocId { get; }

    public ConnectionState ConnectionState => Document?.ConnectionState ?? Rich!.ConnectionState;

    public int Version => Document?.Version ?? Rich!.Version;

    public int Length => Document?.Length ?? Rich!.Length;

    public bool HasUnconfirmedChanges => Document?.HasUnconfirmedChanges ?? Rich!.HasUnconfirmedChanges;

    public Task WhenSynchronizedAsync(CancellationToken cancellationToken = default) =>
        Document?.WhenSynchronizedAsync(cancellationToken) ?? Rich!.WhenSynchronizedAsync(cancellationToken);

    public string ClientId => _client.ClientId;

    /// <summary>This member's ops, when it writes in a tracked group.</summary>
    public OpLog? Log { get; private set; }

    /// <summary>Connects, joins <paramref name="docId"/> and returns once the text is here.</summary>
    public static async Task<SimClient> OpenAsync(Uri url, string docId, LoadOptions options, RunCounters counters, CancellationToken cancellationToken)
    {
        var client = new CollabClient(new CollabClientOptions
        {
            ServerUrl = url,
            Protocol = options.Protocol,
            // Reconnects are counted as errors; keep them quick so a run can still converge.
            MinReconnectDelay = TimeSpan.FromMilliseconds(100),
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
        });
        try
        {
            return options.RichText
                ? new SimClient(client, null, await client.OpenRichTextAsync(docId, cancellationToken).ConfigureAwait(false), counters)
                : new SimClient(client, await client.OpenAsync(docId, cancellationToken).ConfigureAwait(false), null, counters);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Called by <see cref="DocGroup.Seal"/> once every member has joined, before anyone writes.</summary>
    internal void Attach(DocGroup group, int memberCount, bool track)
    {
        _group = group;
        _received = new int[memberCount];
        if (track)
        {
            Log = new OpLog();
            if (Document is not null)
            {
                Document.Changed += (_, e) => OnChanged(e.IsLocal, e.ClientId);
            }
            else
            {
                Rich!.Changed += (_, e) => OnChanged(e.IsLocal, e.ClientId);
            }
        }
        _sealed = true;
    }

    private void OnChanged(bool isLocal, string? clientId)
    {
        if (isLocal)
        {
            return;
        }
        if (clientId is null)
        {
            // The text was replaced wholesale (a reset, or a resume the server answered with text):
            // the per-writer counts no longer line up, and the run says so.
            Interlocked.Increment(ref _counters.Resyncs);
            _counters.Error($"{DocId}: client {ClientId} resynchronized from the whole text");
            return;
        }
        if (_group!.TryGetMember(clientId, out var writer))
        {
            // Events of one document are raised one at a time, so this member's counts need no lock.
            var sequence = _received[writer]++;
            _group.Members[writer].Log!.Arrive(sequence, _counters);
        }
    }

    /// <summary>
    /// Makes one edit of 1–3 typed characters at a random place (replacing up to 4 characters when
    /// <paramref name="deletes"/>; in a rich-text document one op in four instead sets an attribute on
    /// up to 8 characters, and some inserts are bold), then waits until the server has acknowledged it: at most one
    /// op in flight, as a real OT client has. False when the run was cancelled or the log is full.
    /// </summary>
    public async Task<bool> WriteAsync(Random random, bool deletes, CancellationToken cancellationToken)
    {
        if (Log is not { HasRoom: true } log)
        {
            return false;
        }
        Span<char> typed = stackalloc char[3];
        var typedLength = random.Next(1, 4);
        for (var i = 0; i < typedLength; i++)
        {
            typed[i] = Letters[random.Next(Letters.Length)];
        }
        var text = new string(typed[..typedLength]);
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var length = Length;
            var position = random.Next(length + 1);
            var delete = deletes && length > 64 ? Math.Min(random.Next(0, 5), length - position) : 0;
            var submitted = Stopwatch.GetTimestamp();
            try
            {
                if (Rich is { } rich)
                {
                    rich.Apply(RichEdit(random, position, length, delete, text));
                }
                else
                {
                    Document!.Replace(position, delete, text);
                }
            }
            catch (ArgumentException)
            {
                // A remote delete shortened the text between reading its length and editing: retry.
                continue;
            }
            log.Append(submitted, _group!.Members.Count - 1);
            _counters.OnSubmitted(submitted);
            try
            {
                await WhenSynchronizedAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            _counters.OnCommitted(submitted);
            return true;
        }
        _counters.Error($"{DocId}: could not place an edit in 5 attempts");
        return true;
    }

    /// <summary>
    /// A rich-text edit at <paramref name="position"/>: one in four (when there is text after it)
    /// formats up to 8 characters and types <paramref name="text"/> after them, else the text edit.
    /// Every edit inserts, so none becomes a no-op under transformation (two members setting one
    /// format at once would make the later a no-op), which <see cref="OpLog"/>'s matching needs.
    /// </summary>
    private static Delta RichEdit(Random random, int position, int length, int delete, string text)
    {
        if (position < length && random.Next(4) == 0)
        {
            var attribute = AttributeMap.Of(s_formats[random.Next(s_formats.Length)], random.Next(3) == 0 ? AttributeValue.Null : AttributeValue.From(true));
            return new Delta.Builder().Retain(position).Retain(Math.Min(random.Next(1, 9), length - position), attribute).Insert(text).Build();
        }
        var bold = random.Next(4) == 0 ? AttributeMap.Of("bold", true) : null;
        return new Delta.Builder().Retain(position).Insert(text, bold).Delete(delete).Build();
    }

    public ValueTask DisposeAsync() => _client.DisposeAsync();
}

/// <summary>The members of one document, with their indexes for matching ops to writers.</summary>
public sealed class DocGroup(string docId)
{
    private Dictionary<string, int> _index = [];

    public string DocId { get; } = docId;

    public List<SimClient> Members { get; } = [];

    /// <summary>Freezes the membership; with <paramref name="track"/>, members start matching ops to writers.</summary>
    public void Seal(bool track)
    {
        _index = Members.Select((m, i) => (m.ClientId, i)).ToDictionary(p => p.ClientId, p => p.i, StringComparer.Ordinal);
        foreach (var member in Members)
        {
            member.Attach(this, Members.Count, track);
        }
    }

    public bool TryGetMember(string clientId, out int index) => _index.TryGetValue(clientId, out index);

    public int Undelivered() => Members.Sum(m => m.Log?.Undelivered() ?? 0);
}
