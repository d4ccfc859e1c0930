using System.Threading.Channels;
using Collab;
using Collab.Messages;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CollabServer.Tests.Infrastructure;

/// <summary>Raw protocol calls, written as maps the way a client in any language would send them.</summary>
public static class Wire
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>A MessagePack hub connection over WebSockets to a server process at <paramref name="baseUrl"/>.</summary>
    public static async Task<HubConnection> ConnectAsync(Uri baseUrl)
    {
        var c = new HubConnectionBuilder()
            .WithUrl(new Uri(baseUrl, "hubs/collab"), o =>
            {
                o.Transports = Microsoft.AspNetCore.Http.Connections.HttpTransportType.WebSockets;
                o.SkipNegotiation = true;
            })
            .AddMessagePackProtocol()
            .Build();
        await c.StartAsync().WaitAsync(Timeout);
        return c;
    }

    /// <summary>
    /// Ends a writer that ran until its server was killed: closes its connection (which may fail
    /// against a dead server), then rethrows <paramref name="refusal"/>, an error the server
    /// answered with while alive, which is a failure of the test and not the kill.
    /// </summary>
    public static async Task EndWriterAsync(HubConnection? connection, HubException? refusal, string writer)
    {
        if (connection is not null)
        {
            try
            {
                await connection.DisposeAsync();
            }
            catch (Exception)
            {
                // Closing a connection to a dead server may fail.
            }
        }
        if (refusal is not null)
        {
            throw new InvalidOperationException($"{writer}: the server refused an op: {refusal.Message}", refusal);
        }
    }

    public static Dictionary<string, object?> JoinArgs(string docId, string clientId, int? sinceVersion = null)
    {
        var args = new Dictionary<string, object?> { ["docId"] = docId, ["clientId"] = clientId };
        if (sinceVersion is not null)
        {
            args["sinceVersion"] = sinceVersion;
        }
        return args;
    }

    public static Task<JoinResult> JoinAsync(this HubConnection c, string docId, string clientId, int? sinceVersion = null) =>
        c.InvokeAsync<JoinResult>("Join", JoinArgs(docId, clientId, sinceVersion)).WaitAsync(Timeout);

    public static Task<SubmitResult> SubmitAsync(this HubConnection c, string docId, int baseVersion, object?[] op, long opId) =>
        c.InvokeAsync<SubmitResult>("Submit", new Dictionary<string, object?>
        {
            ["docId"] = docId,
            ["baseVersion"] = baseVersion,
            ["op"] = op,
            ["opId"] = opId,
        }).WaitAsync(Timeout);

    /// <summary>Asserts that <paramref name="call"/> fails with the protocol's <paramref name="code"/>.</summary>
    public static async Task<string> AssertErrorAsync(string code, Func<Task> call)
    {
        var ex = await Assert.ThrowsAsync<HubException>(call);
        Assert.True(ErrorCodes.FromMessage(ex.Message) == code, $"expected {code}, got: {ex.Message}");
        return ex.Message;
    }

    /// <summary>Collects the messages a connection receives.</summary>
    public static Channel<T> Collect<T>(this HubConnection c, string method)
    {
        var channel = Channel.CreateUnbounded<T>();
        c.On<T>(method, m => channel.Writer.TryWrite(m));
        return channel;
    }

    public static async Task<T> NextAsync<T>(this Channel<T> channel) => await channel.Reader.ReadAsync().AsTask().WaitAsync(Timeout);
}
