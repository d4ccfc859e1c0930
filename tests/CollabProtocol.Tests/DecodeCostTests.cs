using System.Text.Json;
using Collab.Messages;
using Collab.Ot;
using MessagePack;
using Collab.Testing;

namespace Collab.Protocol.Tests;

/// <summary>
/// Building an op is linear in its size whatever its shape: an op of 500 000 one-character
/// inserts would take minutes of CPU to decode if adjacent inserts were joined by repeated
/// concatenation. These tests bound the work by counting the bytes allocated on the test's
/// thread (exact, unlike time): a quadratic builder allocates about n²/2 characters, 250 GB for
/// this op; a linear one allocates a few tens of bytes per component.
/// </summary>
public sealed class DecodeCostTests
{
    private const int N = 500_000;
    private static readonly MessagePackSerializerOptions s_hubOptions =
        MessagePackSerializerOptions.Standard.WithResolver(StrictUtf8Resolver.Instance).WithSecurity(MessagePackSecurity.UntrustedData);
    private static readonly JsonSerializerOptions s_jsonOptions = new(JsonSerializerDefaults.Web);

    /// <summary>Bytes allocated on this thread by <paramref name="work"/>, and its result.</summary>
    private static (long Bytes, T Result) Allocated<T>(Func<T> work)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = work();
        return (GC.GetAllocatedBytesForCurrentThread() - before, result);
    }

    private static void AssertLinear(Func<int, Func<TextOperation>> decode, int bytesPerComponent)
    {
        var (small, smallOp) = Allocated(decode(N / 10));
        var (large, largeOp) = Allocated(decode(N));
        Assert.Equal(new string('a', N / 10), Assert.Single(smallOp.Components.ToArray()).Text);
        Assert.Equal(new string('a', N), Assert.Single(largeOp.Components.ToArray()).Text);
        // Linear: ten times the components cost about ten times the bytes (quadratic: a hundred).
        Assert.True(large < 15 * small, $"{N / 10} inserts allocated {small} bytes, {N} allocated {large}");
        Assert.True(large < (long)bytesPerComponent * N, $"{N} inserts allocated {large} bytes");
    }

    [Fact]
    public void DecodingAMessagePackSubmitOfOneCharacterInsertsIsLinear()
    {
        var small = AttackMessages.MessagePackSubmit(N / 10);
        var large = AttackMessages.MessagePackSubmit(N);
        Assert.InRange(large.Length, 1_000_000, 1_000_100);
        AssertLinear(n => () => MessagePackSerializer.Deserialize<SubmitRequest>(n == N ? large : small, s_hubOptions).Op!, 100);
    }

    [Fact]
    public void DecodingAJsonSubmitOfOneCharacterInsertsIsLinear()
    {
        var small = AttackMessages.JsonSubmit(N / 10);
        var large = AttackMessages.JsonSubmit(N);
        AssertLinear(n => () => JsonSerializer.Deserialize<SubmitRequest>(n == N ? large : small, s_jsonOptions)!.Op!, 100);
    }

    [Fact]
    public void BuildingFromOneCharacterInsertsIsLinear() =>
        AssertLinear(n => () =>
        {
            var builder = new TextOperation.Builder();
            for (var i = 0; i < n; i++)
            {
                builder.Insert("a");
            }
            return builder.Build();
        }, 100);

    [Fact]
    public void InsertsAroundADeleteAreCollectedToo()
    {
        var builder = new TextOperation.Builder().Retain(2);
        for (var i = 0; i < 1000; i++)
        {
            builder.Insert("a").Delete(1);
        }
        var op = builder.Retain(3).Insert("b").Build();
        Assert.Equal(TextOperation.Create([OpComponent.Retain(2), OpComponent.Insert(new string('a', 1000)), OpComponent.Delete(1000), OpComponent.Retain(3), OpComponent.Insert("b")]), op);
        Assert.Equal("[2,\"" + new string('a', 1000) + "\",-1000,3,\"b\"]", op.ToString());
    }

    [Fact]
    public void ABuilderKeepsMergingAfterBuild()
    {
        var builder = new TextOperation.Builder().Insert("a").Delete(1);
        Assert.Equal("[\"a\",-1]", builder.Build().ToString());
        Assert.Equal("[\"ab\",-1]", builder.Insert("b").Build().ToString());
        Assert.Equal("[\"abc\",-2]", builder.Delete(1).Insert("c").Build().ToString());
    }

    // Compose and Transform build through the same builder; these shapes made them join many
    // adjacent insert pieces (b inserting between each character a inserted, or b deleting
    // everything between a's inserts).
    [Fact]
    public void ComposeOfManyInterleavedInsertsIsLinear() =>
        AssertLinear(n =>
        {
            var a = TextOperation.Insert(0, new string('a', n / 2));
            var b = new TextOperation.Builder();
            for (var i = 0; i < n / 2; i++)
            {
                b.Retain(1).Insert("a");
            }
            var bOp = b.Build();
            return () => TextOperation.Compose(a, bOp);
        }, 100);

    [Fact]
    public void TransformOverADeleteOfEverythingIsLinear() =>
        AssertLinear(n =>
        {
            var a = new TextOperation.Builder();
            for (var i = 0; i < n; i++)
            {
                a.Insert("a").Retain(1);
            }
            var aOp = a.Build();
            var b = TextOperation.Delete(0, n);
            return () => TextOperation.Transform(aOp, b, aWinsTies: true);
        }, 100);
}
