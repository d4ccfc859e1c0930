using System.Buffers;
using System.Text;
using System.Text.Json;
using Collab.Messages;
using Collab.Ot;
using MessagePack;

namespace Collab.Protocol.Tests;

/// <summary>
/// Decoding a delta is linear in its size whatever its shape, counted in bytes allocated on the
/// test's thread (see <see cref="DecodeCostTests"/>): 500 000 one-character inserts merge into
/// one insert without joining the text again for every piece (n²/2 characters, 250 GB).
/// </summary>
public sealed class DeltaDecodeCostTests
{
    private const int N = 500_000;
    private static readonly MessagePackSerializerOptions s_hubOptions =
        MessagePackSerializerOptions.Standard.WithResolver(StrictUtf8Resolver.Instance).WithSecurity(MessagePackSecurity.UntrustedData);

    private static (long Bytes, T Result) Allocated<T>(Func<T> work)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = work();
        return (GC.GetAllocatedBytesForCurrentThread() - before, result);
    }

    private static void AssertLinear(Func<int, Func<Delta>> decode, int bytesPerOp)
    {
        var smallDecode = decode(N / 10);
        var largeDecode = decode(N);
        var (small, smallDelta) = Allocated(smallDecode);
        var (large, largeDelta) = Allocated(largeDecode);
        Assert.Equal(new string('a', N / 10), Assert.Single(smallDelta.Ops.ToArray()).Text);
        Assert.Equal(new string('a', N), Assert.Single(largeDelta.Ops.ToArray()).Text);
        // Linear: ten times the ops cost about ten times the bytes (quadratic: a hundred).
        Assert.True(large < 15 * small, $"{N / 10} inserts allocated {small} bytes, {N} allocated {large}");
        Assert.True(large < (long)bytesPerOp * N, $"{N} inserts allocated {large} bytes");
    }

    /// <summary><c>[{"insert":"a"},…]</c>, <paramref name="n"/> times.</summary>
    private static byte[] Json(int n) => Encoding.UTF8.GetBytes("[" + string.Join(',', Enumerable.Repeat("{\"insert\":\"a\"}", n)) + "]");

    /// <summary>The same as a MessagePack array of maps.</summary>
    private static byte[] MessagePack(int n)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteArrayHeader(n);
        for (var i = 0; i < n; i++)
        {
            writer.WriteMapHeader(1);
            writer.Write("insert");
            writer.Write("a");
        }
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    [Fact]
    public void DecodingJsonOfOneCharacterInsertsIsLinear() =>
        AssertLinear(n =>
        {
            var bytes = Json(n);
            return () => JsonSerializer.Deserialize<Delta>(bytes)!;
        }, 200);

    [Fact]
    public void DecodingMessagePackOfOneCharacterInsertsIsLinear() =>
        AssertLinear(n =>
        {
            var bytes = MessagePack(n);
            return () => MessagePackSerializer.Deserialize<Delta>(bytes, s_hubOptions);
        }, 200);

    [Fact]
    public void ComposingManyInterleavedInsertsIsLinear() =>
        AssertLinear(n =>
        {
            var a = Delta.Document(new string('a', n / 2));
            var b = new Delta.Builder();
            for (var i = 0; i < n / 2; i++)
            {
                b.Retain(1).Insert("a");
            }
            var bDelta = b.Build();
            return () => a.Compose(bDelta);
        }, 300);
}
