using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Collab.Ot;
using MessagePack;

namespace CollabBench;

/// <summary>
/// An op's encodings: JSON text as the op log stores it (written per commit, parsed per op when a
/// document loads) and MessagePack as the hub sends it.
/// </summary>
[MemoryDiagnoser]
public class SerializationBenchmarks
{
    private readonly TextOperation _op = new TextOperation.Builder().Retain(52_431).Insert("abc").Delete(2).Build();
    private string _json = "";
    private byte[] _msgpack = [];

    [GlobalSetup]
    public void Setup()
    {
        _json = _op.ToString();
        _msgpack = MessagePackSerializer.Serialize(_op);
    }

    [Benchmark(Description = "op.ToString() (log write)")]
    public string ToJsonText() => _op.ToString();

    [Benchmark(Description = "JsonSerializer.Deserialize (log read)")]
    public TextOperation? FromJson() => JsonSerializer.Deserialize<TextOperation>(_json);

    [Benchmark(Description = "MessagePack serialize (hub)")]
    public byte[] ToMessagePack() => MessagePackSerializer.Serialize(_op);

    [Benchmark(Description = "MessagePack deserialize (hub)")]
    public TextOperation FromMessagePack() => MessagePackSerializer.Deserialize<TextOperation>(_msgpack);
}
