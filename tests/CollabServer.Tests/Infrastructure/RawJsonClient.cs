using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace CollabServer.Tests.Infrastructure;

/// <summary>
/// Speaks SignalR's JSON hub protocol by hand over a WebSocket, as a client in another language
/// would: frames are text terminated by 0x1E. It can send what .NET serializers refuse to write,
/// such as escaped lone surrogates.
/// </summary>
public sealed class RawJsonClient(WebSocket socket) : IAsyncDisposable
{
    private const char Separator = '\u001e';
    private int _invocationId;
    private readonly StringBuilder _buffer = new();

    public static async Task<RawJsonClient> ConnectAsync(WebSocket socket)
    {
        var client = new RawJsonClient(socket);
        await client.SendFrameAsync("{\"protocol\":\"json\",\"version\":1}");
        var handshake = await client.ReceiveFrameAsync();
        Assert.Equal("{}", handshake);
        return client;
    }

    /// <summary>Invokes a hub method with arguments written as raw JSON; returns the completion message.</summary>
    public async Task<JsonElement> InvokeAsync(string target, string argumentsJson)
    {
        var id = (++_invocationId).ToString();
        await SendFrameAsync($"{{\"type\":1,\"invocationId\":\"{id}\",\"target\":\"{target}\",\"arguments\":[{argumentsJson}]}}");
        while (true)
        {
            var frame = JsonDocument.Parse(await ReceiveFrameAsync()).RootElement;
            if (frame.GetProperty("type").GetInt32() == 3 && frame.GetProperty("invocationId").GetString() == id)
            {
                return frame;
            }
        }
    }

    private Task SendFrameAsync(string json) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(json + Separator), WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(Wire.Timeout);

    private async Task<string> ReceiveFrameAsync()
    {
        var bytes = new byte[64 * 1024];
        while (true)
        {
            var text = _buffer.ToString();
            var end = text.IndexOf(Separator);
            if (end >= 0)
            {
                _buffer.Remove(0, end + 1);
                return text[..end];
            }
            var result = await socket.ReceiveAsync(bytes, CancellationToken.None).WaitAsync(Wire.Timeout);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new InvalidOperationException("The server closed the socket.");
            }
            _buffer.Append(Encoding.UTF8.GetString(bytes, 0, result.Count));
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (socket.State == WebSocketState.Open)
        {
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        socket.Dispose();
    }
}
