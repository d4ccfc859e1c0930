using System.Buffers;
using System.Net.WebSockets;
using System.Text;
using MessagePack;

namespace CollabServer.Tests.Infrastructure;

/// <summary>
/// Speaks SignalR's MessagePack hub protocol by hand over a WebSocket (PROTOCOL §2): binary
/// messages, each a VarInt length and one MessagePack array. The arguments are written by the
/// caller with a <c>MessagePackWriter</c>, so a test can put any bytes in a string, such
/// as invalid UTF-8 or an encoded lone surrogate, which .NET's serializers never write.
/// </summary>
public sealed class RawMessagePackClient(WebSocket socket) : IAsyncDisposable
{
    private int _invocationId;
    private readonly List<byte> _buffer = [];

    /// <summary>A completion: the error string, or the raw MessagePack result (null for none).</summary>
    public sealed record Completion(string? Error, byte[]? Result)
    {
        public T Read<T>() => MessagePackSerializer.Deserialize<T>(Result ?? throw new InvalidOperationException($"no result: {Error}"));
    }

    public static async Task<RawMessagePackClient> ConnectAsync(WebSocket socket)
    {
        var client = new RawMessagePackClient(socket);
        await socket.SendAsync(Encoding.UTF8.GetBytes("{\"protocol\":\"messagepack\",\"version\":1}\u001e"), WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(Wire.Timeout);
        var handshake = new List<byte>();
        var bytes = new byte[4096];
        while (!handshake.Contains(0x1e))
        {
            var result = await socket.ReceiveAsync(bytes, CancellationToken.None).WaitAsync(Wire.Timeout);
            handshake.AddRange(bytes.AsSpan(0, result.Count));
        }
        var end = handshake.IndexOf(0x1e);
        Assert.Equal("{}", Encoding.UTF8.GetString(handshake.GetRange(0, end).ToArray()));
        client._buffer.AddRange(handshake.Skip(end + 1));
        return client;
    }

    /// <summary>The socket is open: the server has not closed the connection.</summary>
    public bool IsOpen => socket.State == WebSocketState.Open;

    /// <summary>Invokes <paramref name="target"/> with one argument written by <paramref name="writeArgument"/>.</summary>
    public async Task<Completion> InvokeAsync(string target, WriteArgument writeArgument)
    {
        var id = (++_invocationId).ToString();
        var body = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(body);
        writer.WriteArrayHeader(6);
        writer.Write(1);
        writer.WriteMapHeader(0);
        writer.Write(id);
        writer.Write(target);
        writer.WriteArrayHeader(1);
        writeArgument(ref writer);
        writer.WriteArrayHeader(0);
        writer.Flush();

        var frame = new List<byte>();
        for (var length = (uint)body.WrittenCount; ; length >>= 7)
        {
            frame.Add((byte)(length < 0x80 ? length : (length & 0x7f) | 0x80));
            if (length < 0x80)
            {
                break;
            }
        }
        frame.AddRange(body.WrittenSpan.ToArray());
        await socket.SendAsync(frame.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None).WaitAsync(Wire.Timeout);

        while (true)
        {
            var message = await ReceiveMessageAsync();
            var completion = ParseCompletion(message, id);
            if (completion is not null)
            {
                return completion;
            }
        }
    }

    public delegate void WriteArgument(ref MessagePackWriter writer);

    /// <summary>Writes a MessagePack string whose bytes are exactly <paramref name="utf8"/>, valid or not.</summary>
    public static void WriteRawString(ref MessagePackWriter writer, byte[] utf8)
    {
        writer.WriteStringHeader(utf8.Length);
        writer.WriteRaw(utf8);
    }

    private static Completion? ParseCompletion(byte[] message, string id)
    {
        var reader = new MessagePackReader(message);
        var count = reader.ReadArrayHeader();
        var type = reader.ReadInt32();
        if (type == 7)
        {
            throw new InvalidOperationException("The server sent Close: " + (count > 1 ? reader.ReadString() : ""));
        }
        if (type != 3)
        {
            return null;
        }
        reader.Skip(); // headers
        if (reader.ReadString() != id)
        {
            return null;
        }
        var kind = reader.ReadInt32();
        return kind switch
        {
            1 => new Completion(reader.ReadString(), null),
            2 => new Completion(null, null),
            _ => new Completion(null, reader.ReadRaw().ToArray()),
        };
    }

    private async Task<byte[]> ReceiveMessageAsync()
    {
        var bytes = new byte[64 * 1024];
        while (true)
        {
            if (TryTakeMessage(out var message))
            {
                return message;
            }
            var result = await socket.ReceiveAsync(bytes, CancellationToken.None).WaitAsync(Wire.Timeout);
            if (result.MessageType == WebSocketMessageType.Close)
            {
                throw new InvalidOperationException("The server closed the socket.");
            }
            _buffer.AddRange(bytes.AsSpan(0, result.Count));
        }
    }

    private bool TryTakeMessage(out byte[] message)
    {
        message = [];
        var length = 0;
        var shift = 0;
        var i = 0;
        while (true)
        {
            if (i >= _buffer.Count)
            {
                return false;
            }
            var b = _buffer[i++];
            length |= (b & 0x7f) << shift;
            shift += 7;
            if (b < 0x80)
            {
                break;
            }
        }
        if (_buffer.Count - i < length)
        {
            return false;
        }
        message = _buffer.GetRange(i, length).ToArray();
        _buffer.RemoveRange(0, i + length);
        return true;
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
