using System.Net.WebSockets;
using CollabServer.Tests.Infrastructure;
using static CollabServer.Tests.Robustness.FuzzValue;
using Collab.Testing;

namespace CollabServer.Tests.Robustness;

/// <summary>
/// Found by <see cref="HubFuzzTests"/>: after a hub message of a type SignalR does not know
/// (for example <c>{"type":99}</c>), the server neither answers anything more on the connection
/// nor closes it, until the client has sent more than <c>Collab:MaxMessageBytes</c> in all (or
/// the 30 s client timeout ends it). PROTOCOL §5 keeps a connection usable after an error (closing
/// it only after an oversized message), and §2 says unknown fields are ignored; a connection that
/// silently stops is neither.
/// </summary>
public sealed class HubUnknownMessageTests
{
    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task AMessageOfUnknownTypeIsIgnoredOrClosesTheConnectionButDoesNotWedgeIt(WireProtocol protocol)
    {
        var dataDir = TestHost.NewDataDir();
        try
        {
            using var server = await ServerProcess.StartAsync(dataDir);
            await using var socket = await FuzzSocket.ConnectAsync(server.BaseUrl, protocol);
            var type = protocol == WireProtocol.Json ? WebSocketMessageType.Text : WebSocketMessageType.Binary;

            // Before: a Join is answered.
            Assert.NotNull(await JoinAsync(socket, protocol, "before"));

            // A message of type 99, alone in its WebSocket message, then a Join in the next one.
            var unknown = protocol == WireProtocol.Json ? [.. M(("type", I(99))).ToJson(), 0x1E] : LengthPrefixed(A(I(99), M()).ToMessagePack());
            Assert.True(await socket.SendRawAsync(unknown, type));
            var after = await JoinAsync(socket, protocol, "after");
            Assert.True(after is not null || socket.Closed.IsCompleted,
                $"{protocol}: after a message of unknown type the server neither answered a Join within {Wire.Timeout.TotalSeconds} s nor closed the connection");
        }
        finally
        {
            Directory.Delete(dataDir, recursive: true);
        }
    }

    private static async Task<Completion?> JoinAsync(FuzzSocket socket, WireProtocol protocol, string id)
    {
        var join = M(("docId", S("unknown-type")), ("clientId", S("c")));
        var message = protocol == WireProtocol.Json
            ? M(("type", I(1)), ("invocationId", S(id)), ("target", S("Join")), ("arguments", A(join)))
            : A(I(1), M(), S(id), S("Join"), A(join), A());
        var frame = new FuzzFrame
        {
            Messages = [protocol == WireProtocol.Json ? ([.. message.ToJson(), 0x1E], WebSocketMessageType.Text) : (LengthPrefixed(message.ToMessagePack()), WebSocketMessageType.Binary)],
            InvocationId = id,
            Kind = "Join",
        };
        Assert.True(await socket.SendAsync(frame));
        return await socket.WaitAsync(id, Wire.Timeout);
    }
}
