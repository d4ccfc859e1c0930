using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Collab.Messages;
using MessagePack;

using CollabServer.Tests.Ot;

namespace CollabBench;

/// <summary>
/// Issue 8's denial-of-service probe: one <c>Submit</c> whose op is 500 000 one-character
/// inserts (1 MB in MessagePack, 2 MB in JSON). Decoding it must be linear in its size; before
/// the fix the builder joined adjacent inserts by repeated concatenation (quadratic).
/// Measured on the 2 shared cores of the machine, with other work running: before the
/// fix one decode took 76 s (MessagePack) and 124 s (JSON), allocating about 250 GB; after it,
/// 53 ms and 38 ms, allocating 13 MB. To measure a quadratic version, run only this class with
/// <c>--filter '*AttackDecode*' --inProcess --job dry</c>: one iteration then takes minutes.
/// </summary>
[MemoryDiagnoser]
public class AttackDecodeBenchmarks
{
    private static readonly MessagePackSerializerOptions s_hubOptions =
        MessagePackSerializerOptions.Standard.WithSecurity(MessagePackSecurity.UntrustedData);

    private static readonly JsonSerializerOptions s_jsonOptions = new(JsonSerializerDefaults.Web);

    [Params(500_000)]
    public int Inserts { get; set; }

    private byte[] _msgpack = [];
    private byte[] _json = [];

    [GlobalSetup]
    public void Setup()
    {
        _msgpack = AttackMessages.MessagePackSubmit(Inserts);
        _json = AttackMessages.JsonSubmit(Inserts);
    }

    [Benchmark(Description = "MessagePack Submit, 500k one-char inserts")]
    public SubmitRequest DecodeMessagePack() => MessagePackSerializer.Deserialize<SubmitRequest>(_msgpack, s_hubOptions);

    [Benchmark(Description = "JSON Submit, 500k one-char inserts")]
    public SubmitRequest? DecodeJson() =>
        JsonSerializer.Deserialize<SubmitRequest>(_json, s_jsonOptions);
}
