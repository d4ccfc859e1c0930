using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using CollabServer.Tests.Infrastructure;
using MessagePack;

namespace CollabServer.Tests.Robustness;

/// <summary>A completion the fuzzer cares about: its error, or the version (and text length, for Join) in its result.</summary>
public sealed record Completion(string? Error, int? Version, int? TextLength);

/// <summary>
/// One raw SignalR connection over a <see cref="ClientWebSocket"/>: it does the handshake, then
/// reads and splits everything the server sends, reporting completions by invocation id and
/// noticing when the server closes the connection.
/// </summary>
public sealed class FuzzSocket : IAsyncDisposable
{
    private readonly ClientWebSocket _socket = new();
    private readonly WireProtocol _protocol;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<Completion>> _waiting = new();
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop = new();
    private Task _reader = Task.CompletedTask;
    private bool _closingOurselves;
    private int _parseErrors;

    /// <summary>The first server messages this client could not read.</summary>
    public ConcurrentBag<string> ParseErrorSamples { get; } = [];

    /// <summary>Why the last send failed.</summary>
    public string? LastSendError { get; private set; }

    /// <summary>Messages from the server this client could not read (should stay 0).</summary>
    public int ParseErrors => _parseErrors;

    private FuzzSocket(WireProtocol protocol) => _protocol = protocol;

    /// <summary>Completes with a description when the server ends the connection.</summary>
    public Task<string> Closed => _closed.Task;

    public bool IsOpen => !_closed.Task.IsCompleted && _socket.State == WebSocketState.Open;

    /// <summary>Called with every completion received (invocation id, completion).</summary>
    public Action<string, Completion>? OnCompletion { get; set; }

    public static async Task<FuzzSocket> ConnectAsync(Uri baseUrl, WireProtocol protocol)
    {
        var socket = new FuzzSocket(protocol);
        socket._socket.Options.KeepAliveInterval = TimeSpan.Zero;
        var uri = new UriBuilder(baseUrl) { Scheme = "ws", Path = "/hubs/collab" }.Uri;
        using var timeout = new CancellationTokenSource(Wire.Timeout);
        await socket._socket.ConnectAsync(uri, timeout.Token);
        var name = protocol == WireProtocol.Json ? "json" : "messagepack";
        await socket._socket.SendAsync(Encoding.UTF8.GetBytes($"{{\"protocol\":\"{name}\",\"version\":1}}\u001e"), WebSocketMessageType.Text, true, timeout.Token);
        // The handshake answer is JSON text ending with 0x1E, alone in its WebSocket message.
        var buffer = new byte[4096];
        var received = new List<byte>();
        while (!received.Contains(0x1E))
        {
            var r = await socket._socket.ReceiveAsync(buffer, timeout.Token);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                throw new InvalidOperationException("The server closed the socket during the handshake.");
            }
            received.AddRange(buffer.AsSpan(0, r.Count).ToArray());
        }
        var answer = Encoding.UTF8.GetString([.. received]);
        if (answer != "{}\u001e")
        {
            throw new InvalidOperationException($"Handshake refused: {answer}");
        }
        socket._reader = Task.Run(socket.ReadLoopAsync);
        return socket;
    }

    /// <summary>Sends a frame's WebSocket messages; false if the socket is no longer usable.</summary>
    public async Task<bool> SendAsync(FuzzFrame frame)
    {
        if (frame.InvocationId is not null)
        {
            _waiting[frame.InvocationId] = new TaskCompletionSource<Completion>(TaskCreationOptions.RunContinuationsAsynchronously);
        }
        foreach (var (bytes, type) in frame.Messages)
        {
            if (!await SendRawAsync(bytes, type))
            {
                return false;
            }
        }
        return true;
    }

    public async Task<bool> SendRawAsync(byte[] bytes, WebSocketMessageType type)
    {
        if (!IsOpen)
        {
            return false;
        }
        try
        {
            using var timeout = new CancellationTokenSource(Wire.Timeout);
            await _socket.SendAsync(bytes, type, true, timeout.Token);
            return true;
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            LastSendError = ex.GetType().Name + ": " + ex.Message;
            // The server has gone (its close may not have been read yet): the socket is done.
            _closed.TrySetResult("server abort (send failed): " + ex.GetType().Name);
            return false;
        }
    }

    /// <summary>The completion of <paramref name="invocationId"/>, or null if none arrives within <paramref name="timeout"/> or the connection closes first.</summary>
    public async Task<Completion?> WaitAsync(string invocationId, TimeSpan timeout)
    {
        if (!_waiting.TryGetValue(invocationId, out var tcs))
        {
            return null;
        }
        await Task.WhenAny(tcs.Task, _closed.Task, Task.Delay(timeout));
        _waiting.TryRemove(new KeyValuePair<string, TaskCompletionSource<Completion>>(invocationId, tcs));
        return tcs.Task.IsCompleted ? tcs.Task.Result : null;
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[256 * 1024];
        var pending = new List<byte>();
        try
        {
            while (true)
            {
                var r = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    _closed.TrySetResult(_closingOurselves ? "client" : $"server close {(int?)_socket.CloseStatus} {_socket.CloseStatusDescription}");
                    return;
                }
                pending.AddRange(buffer.AsSpan(0, r.Count).ToArray());
                if (r.EndOfMessage)
                {
                    try
                    {
                        Parse(pending);
                    }
                    catch (Exception ex) when (ex is JsonException or MessagePackSerializationException or EndOfStreamException or InvalidOperationException or KeyNotFoundException or FormatException)
                    {
                        // Not ours to judge: we only read completions. Counted, and the rest of the buffer dropped.
                        if (Interlocked.Increment(ref _parseErrors) <= 3)
                        {
                            ParseErrorSamples.Add($"{ex.GetType().Name}: {ex.Message} in {Convert.ToHexString(pending.Take(120).ToArray())}");
                        }
                        pending.Clear();
                    }
                }
            }
        }
        catch (Exception ex)
        {
            _closed.TrySetResult(_closingOurselves || _stop.IsCancellationRequested ? "client" : "server abort: " + ex.GetType().Name);
        }
    }

    /// <summary>Splits and reads every complete hub message in <paramref name="data"/>; keeps an incomplete tail.</summary>
    private void Parse(List<byte> data)
    {
        var bytes = data.ToArray();
        var consumed = 0;
        if (_protocol == WireProtocol.Json)
        {
            int end;
            while ((end = Array.IndexOf(bytes, (byte)0x1E, consumed)) >= 0)
            {
                ReadJson(bytes.AsMemory(consumed, end - consumed));
                consumed = end + 1;
            }
        }
        else
        {
            while (TryReadVarInt(bytes, consumed, out var length, out var prefix) && consumed + prefix + length <= bytes.Length)
            {
                ReadMessagePack(bytes.AsMemory(consumed + prefix, (int)length));
                consumed += prefix + (int)length;
            }
        }
        data.RemoveRange(0, consumed);
    }

    private static bool TryReadVarInt(byte[] bytes, int offset, out long value, out int size)
    {
        value = 0;
        size = 0;
        for (var shift = 0; offset + size < bytes.Length && shift < 35; shift += 7)
        {
            var b = bytes[offset + size++];
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }
        return false;
    }

    private void ReadJson(ReadOnlyMemory<byte> record)
    {
        using var doc = JsonDocument.Parse(record);
        var root = doc.RootElement;
        var type = root.GetProperty("type").GetInt32();
        if (type == 3)
        {
            string id;
            try
            {
                id = root.GetProperty("invocationId").GetString()!;
            }
            catch (InvalidOperationException)
            {
                return; // an id with a lone surrogate (escaped, valid JSON) that a fuzz frame gave: not one of ours
            }
            string? error = root.TryGetProperty("error", out var e) ? e.GetString() : null;
            int? version = null, textLength = null;
            if (root.TryGetProperty("result", out var result) && result.ValueKind == JsonValueKind.Object)
            {
                if (result.TryGetProperty("version", out var v))
                {
                    version = v.GetInt32();
                }
                if (result.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                {
                    textLength = t.GetString()!.Length;
                }
            }
            Complete(id, new Completion(error, version, textLength));
        }
    }

    private void ReadMessagePack(ReadOnlyMemory<byte> payload)
    {
        var reader = new MessagePackReader(payload);
        var count = reader.ReadArrayHeader();
        var type = reader.ReadInt32();
        if (type != 3 || count < 4)
        {
            return;
        }
        reader.Skip(); // headers
        var id = reader.ReadString()!;
        var kind = reader.ReadInt32();
        string? error = null;
        int? version = null, textLength = null;
        if (kind == 1)
        {
            error = reader.ReadString();
        }
        else if (kind == 3 && reader.NextMessagePackType == MessagePackType.Map)
        {
            var entries = reader.ReadMapHeader();
            for (var i = 0; i < entries; i++)
            {
                var key = reader.ReadString();
                if (key == "version")
                {
                    version = reader.ReadInt32();
                }
                else if (key == "text" && reader.NextMessagePackType == MessagePackType.String)
                {
                    textLength = reader.ReadString()!.Length;
                }
                else
                {
                    reader.Skip();
                }
            }
        }
        Complete(id, new Completion(error, version, textLength));
    }

    private void Complete(string id, Completion completion)
    {
        OnCompletion?.Invoke(id, completion);
        // Kept until WaitAsync takes it: the answer may come before anyone waits for it.
        if (_waiting.TryGetValue(id, out var tcs))
        {
            tcs.TrySetResult(completion);
        }
    }

    /// <summary>Closes from our side (the server did not).</summary>
    public void Abort()
    {
        _closingOurselves = true;
        _socket.Abort();
    }

    public async ValueTask DisposeAsync()
    {
        _closingOurselves = true;
        if (_socket.State == WebSocketState.Open)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, timeout.Token);
            }
            catch (Exception)
            {
                // The server went first; nothing to close.
            }
        }
        _stop.Cancel();
        _socket.Abort();
        try
        {
            await _reader.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // The read loop ends with the socket; its errors were recorded in Closed.
        }
        _socket.Dispose();
        _stop.Dispose();
    }
}
