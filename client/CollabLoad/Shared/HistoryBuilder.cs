using Collab.Messages;
using Collab.Ot;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CollabLoad;

/// <summary>
/// Gives a document a long op history quickly, through the server's hub: one raw SignalR
/// connection that pipelines up to <see cref="Window"/> Submits. It is the document's only
/// writer, so op i is made against version v0+i exactly (no transforms), and the server
/// sequences a connection's Submits in the order they were sent. It keeps its own copy of the
/// text (a rope), to compare with the server's afterwards.
/// </summary>
/// <remarks>
/// Not the client library: that one composes edits made while an op is in flight into one op,
/// which would shorten the history this builds.
/// </remarks>
public static class HistoryBuilder
{
    private const int Window = 256;
    private const string Letters = "abcdefghijklmnopqrstuvwxyz \n";

    /// <summary>Appends <paramref name="ops"/> ops of 1–3 characters (inserts, and deletes once the text is long enough).</summary>
    public static async Task<(int Version, Rope Text)> BuildAsync(Uri url, string docId, int ops, int seed, CancellationToken cancellationToken)
    {
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(url, HubNames.Path), http =>
            {
                http.Transports = HttpTransportType.WebSockets;
                http.SkipNegotiation = true;
            })
            .AddMessagePackProtocol()
            .Build();
        await using (hub.ConfigureAwait(false))
        {
            await hub.StartAsync(cancellationToken).ConfigureAwait(false);
            var clientId = "history-" + Guid.NewGuid().ToString("N")[..12];
            var join = await hub.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = docId, ClientId = clientId }, cancellationToken).ConfigureAwait(false);
            if (!string.IsNullOrEmpty(join.Redirect))
            {
                throw new InvalidOperationException($"{docId} is owned by {join.Redirect}: give that node's URL to prepare it");
            }
            var text = Rope.FromString(join.Text ?? "");
            var version = join.Version;
            var random = new Random(seed);
            using var window = new SemaphoreSlim(Window);
            var failure = (Exception?)null;
            var inFlight = new List<Task>(Window * 2);
            for (var i = 0; i < ops && Volatile.Read(ref failure) is null; i++)
            {
                var op = NextOp(random, text.Length);
                text = op.Apply(text);
                var baseVersion = version + i;
                var opId = i + 1;
                await window.WaitAsync(cancellationToken).ConfigureAwait(false);
                var submit = hub.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest { DocId = docId, BaseVersion = baseVersion, Op = op, OpId = opId }, cancellationToken);
                inFlight.Add(submit.ContinueWith(t =>
                {
                    window.Release();
                    if (t.IsFaulted)
                    {
                        Interlocked.CompareExchange(ref failure, t.Exception!.InnerException, null);
                    }
                    else if (t.IsCompletedSuccessfully && t.Result.Version != baseVersion + 1)
                    {
                        Interlocked.CompareExchange(ref failure, new InvalidOperationException($"op {opId} of {docId} landed at version {t.Result.Version}, not {baseVersion + 1}: another writer?"), null);
                    }
                }, TaskScheduler.Default));
                if (inFlight.Count >= Window * 2)
                {
                    inFlight.RemoveAll(t => t.IsCompleted);
                }
            }
            await Task.WhenAll(inFlight).ConfigureAwait(false);
            if (failure is not null)
            {
                throw new InvalidOperationException($"building the history of {docId} failed: {failure.Message}", failure);
            }
            return (version + ops, text);
        }
    }

    private static TextOperation NextOp(Random random, int length)
    {
        var position = random.Next(length + 1);
        if (length > 200 && random.Next(4) == 0)
        {
            var delete = Math.Min(random.Next(1, 4), length - position);
            if (delete > 0)
            {
                return TextOperation.Delete(position, delete);
            }
        }
        Span<char> typed = stackalloc char[3];
        var n = random.Next(1, 4);
        for (var k = 0; k < n; k++)
        {
            typed[k] = Letters[random.Next(Letters.Length)];
        }
        return TextOperation.Insert(position, new string(typed[..n]));
    }
}
