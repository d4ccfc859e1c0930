using Collab.Messages;
using Collab.Ot;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Collab.Testing;

/// <summary>
/// A bare hub connection to one node, without the client library's retries: it shows exactly
/// what that node answers (an error code, or a version).
/// </summary>
public sealed class Probe : IAsyncDisposable
{
    private readonly HubConnection _hub;
    private long _opId;

    private Probe(HubConnection hub) => _hub = hub;

    public static async Task<Probe> ConnectAsync(Uri node)
    {
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(node, HubNames.Path), o =>
            {
                o.Transports = HttpTransportType.WebSockets;
                o.SkipNegotiation = true;
            })
            .AddMessagePackProtocol()
            .Build();
        hub.ServerTimeout = TimeSpan.FromMinutes(2); // a frozen node is not a dead connection
        await hub.StartAsync();
        return new Probe(hub);
    }

    public Task<JoinResult> JoinAsync(string docId) =>
        _hub.InvokeAsync<JoinResult>(HubNames.Join, new JoinRequest { DocId = docId, ClientId = "probe" });

    /// <summary>Inserts <paramref name="text"/> at 0 of the text at <paramref name="baseVersion"/> (<paramref name="length"/> long): the new version, or the error.</summary>
    public async Task<string> SubmitAsync(string docId, int baseVersion, int length, string text)
    {
        try
        {
            var result = await _hub.InvokeAsync<SubmitResult>(HubNames.Submit, new SubmitRequest
            {
                DocId = docId,
                BaseVersion = baseVersion,
                Op = new TextOperation.Builder().Insert(text).Retain(length).Build(),
                OpId = Interlocked.Increment(ref _opId),
            });
            return result.Version.ToString();
        }
        catch (HubException ex)
        {
            // SignalR puts "An unexpected error occurred invoking 'Submit' on the server. HubException: " before the server's own words.
            const string marker = "HubException: ";
            var at = ex.Message.IndexOf(marker, StringComparison.Ordinal);
            return at < 0 ? ex.Message : ex.Message[(at + marker.Length)..];
        }
    }

    public async ValueTask DisposeAsync() => await _hub.DisposeAsync();
}
