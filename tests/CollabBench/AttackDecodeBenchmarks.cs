using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Collab.Messages;
using MessagePack;

using Collab.Testing;

namespace CollabBench;

/// <summary>
/// A denial-of-service probe: one <c>Submit</c> whose op is 500 000 one-character inserts (1 MB
/// in MessagePack, 2 MB in JSON). Decoding it must be linear in its size, not quadratic as a
/// builder that joins adjacent inserts by repeated concatenation would be.
/// On 2 shared cores with other work running, one decode takes 53 ms (MessagePack) and 38 ms
/// (JSON), allocating 13 MB; a quadratic builder took 76 s and 124 s, allocating about 250 GB. To measure a quadratic version, run only this class with
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
