using Collab;
using CollabServer.Tests.Infrastructure;
using Microsoft.AspNetCore.SignalR.Client;

namespace CollabServer.Tests.Hub;

/// <summary>
/// Every bad input of PROTOCOL §1 and §5: it gets its code, changes nothing, and the connection
/// stays usable (each test ends with a good request on the same connection).
/// </summary>
public sealed class HubErrorTests() : HostedTest(new Dictionary<string, string?>
{
    ["Collab:MaxDocumentLength"] = "100",
})
{
    public static TheoryData<WireProtocol, string> BadDocIds()
    {
        var data = new TheoryData<WireProtocol, string>();
        foreach (var protocol in new[] { WireProtocol.Json, WireProtocol.MessagePack })
        {
            foreach (var id in new[] { "", ".hidden", "a/b", "../etc", "sp ace", "ü", new string('x', 129) })
            {
                data.Add(protocol, id);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BadDocIds))]
    public async Task BadDocumentIdsAreRejectedEverywhere(WireProtocol protocol, string docId)
    {
        var c = await Host.ConnectAsync(protocol);
        await Wire.AssertErrorAsync(ErrorCodes.InvalidDocId, () => c.JoinAsync(docId, "c"));
        await Wire.AssertErrorAsync(ErrorCodes.InvalidDocId, () => c.SubmitAsync(docId, 0, ["x"], 1));
        await Wire.AssertErrorAsync(ErrorCodes.InvalidDocId, () => c.InvokeAsync("Leave", docId).WaitAsync(Wire.Timeout));
        Assert.Empty(Directory.EnumerateFiles(Host.DataDir, "*", SearchOption.AllDirectories));
        Assert.Equal(0, (await c.JoinAsync("fine", "c")).Version);
    }

    public static TheoryData<WireProtocol, string, object?[]> BadOps()
    {
        var data = new TheoryData<WireProtocol, string, object?[]>();
        foreach (var protocol in new[] { WireProtocol.Json, WireProtocol.MessagePack })
        {
            data.Add(protocol, "retain past the end", [7]);
            data.Add(protocol, "delete past the end", [3, -4]);
            data.Add(protocol, "split a surrogate pair", [2, "x"]);
            data.Add(protocol, "delete half a pair", [1, -1]);
            data.Add(protocol, "empty insert", [""]);
            data.Add(protocol, "fraction", [1.5]);
            data.Add(protocol, "boolean", [true]);
            data.Add(protocol, "null component", [null]);
            data.Add(protocol, "nested array", [new object[] { 1 }]);
            data.Add(protocol, "huge count", [long.MaxValue]);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(BadOps))]
    public async Task InvalidOpsAreRejectedAndChangeNothing(WireProtocol protocol, string what, object?[] op)
    {
        var docId = "bad-op-" + protocol + "-" + Math.Abs(what.GetHashCode());
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync(docId, "c");
        await c.SubmitAsync(docId, 0, ["a😀bc"], 1);
        var before = await Host.GetDocAsync(docId);

        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.SubmitAsync(docId, 1, op, 2));

        Assert.Equal(before, await Host.GetDocAsync(docId));
        // The same opId is still free, and the connection still works.
        Assert.Equal(2, (await c.SubmitAsync(docId, 1, ["ok "], 2)).Version);
    }

    // Lone surrogates as JSON escapes (for MessagePack see StrictUtf8Tests): .NET's
    // serializers replace them, so this test writes the frames by hand as a JavaScript client would.
    [Theory]
    [InlineData("[1, \"\\ud83d\"]")]
    [InlineData("[\"\\ude00x\"]")]
    [InlineData("[\"a\\ud83d\\ud83d\"]")]
    public async Task LoneSurrogatesFromARawJsonClientAreInvalidOp(string op)
    {
        await using var raw = await RawJsonClient.ConnectAsync(await Host.ConnectWebSocketAsync());
        var join = await raw.InvokeAsync("Join", "{\"docId\":\"raw\",\"clientId\":\"raw\"}");
        Assert.False(join.TryGetProperty("error", out _), join.ToString());
        var version = join.GetProperty("result").GetProperty("version").GetInt32();
        var before = await Host.GetDocAsync("raw");

        var failed = await raw.InvokeAsync("Submit", $"{{\"docId\":\"raw\",\"baseVersion\":{version},\"op\":{op},\"opId\":1}}");
        Assert.Equal(ErrorCodes.InvalidOp, ErrorCodes.FromMessage(failed.GetProperty("error").GetString()));
        Assert.Equal(before, await Host.GetDocAsync("raw"));

        var ok = await raw.InvokeAsync("Submit", $"{{\"docId\":\"raw\",\"baseVersion\":{version},\"op\":[\"\\ud83d\\ude00\"],\"opId\":{version + 100}}}");
        Assert.Equal(version + 1, ok.GetProperty("result").GetProperty("version").GetInt32());
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task MissingOpOrWrongShapeIsInvalidOp(WireProtocol protocol)
    {
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync("shape", "c");
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.InvokeAsync<object>("Submit", new Dictionary<string, object?>
        {
            ["docId"] = "shape",
            ["baseVersion"] = 0,
            ["opId"] = 1,
        }).WaitAsync(Wire.Timeout));
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.InvokeAsync<object>("Submit", new Dictionary<string, object?>
        {
            ["docId"] = "shape",
            ["baseVersion"] = 0,
            ["op"] = "insert x",
            ["opId"] = 1,
        }).WaitAsync(Wire.Timeout));
        Assert.Equal(1, (await c.SubmitAsync("shape", 0, ["x"], 1)).Version);
    }

    [Theory]
    [InlineData(WireProtocol.Json, -1)]
    [InlineData(WireProtocol.Json, 2)]
    [InlineData(WireProtocol.MessagePack, -1)]
    [InlineData(WireProtocol.MessagePack, 5)]
    public async Task BaseVersionsOutsideTheLogAreUnknown(WireProtocol protocol, int baseVersion)
    {
        var docId = $"versions-{protocol}-{baseVersion + 1}";
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync(docId, "c");
        await c.SubmitAsync(docId, 0, ["x"], 1);
        await Wire.AssertErrorAsync(ErrorCodes.UnknownVersion, () => c.SubmitAsync(docId, baseVersion, ["y"], 2));
        Assert.Equal((1, "x"), await Host.GetDocAsync(docId));
        Assert.Equal(2, (await c.SubmitAsync(docId, 1, ["y"], 2)).Version);
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task SubmittingWithoutJoiningIsNotJoined(WireProtocol protocol)
    {
        var c = await Host.ConnectAsync(protocol);
        await Wire.AssertErrorAsync(ErrorCodes.NotJoined, () => c.SubmitAsync("not-joined", 0, ["x"], 1));
        await Wire.AssertErrorAsync(ErrorCodes.NotJoined, () => c.InvokeAsync("SetPresence", new Dictionary<string, object?>
        {
            ["docId"] = "not-joined",
            ["version"] = 0,
            ["selection"] = Array.Empty<object>(),
        }).WaitAsync(Wire.Timeout));
        await c.JoinAsync("not-joined", "c");
        Assert.Equal(1, (await c.SubmitAsync("not-joined", 0, ["x"], 1)).Version);
    }

    /// <summary>Found by the hub fuzzer: a null in a selection's ranges threw in the document's loop.</summary>
    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task ANullSelectionRangeIsInvalidAndChangesNothing(WireProtocol protocol)
    {
        var docId = "null-range-" + protocol;
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync(docId, "c");
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.InvokeAsync("SetPresence", new Dictionary<string, object?>
        {
            ["docId"] = docId,
            ["version"] = 0,
            ["selection"] = new object?[] { null },
        }).WaitAsync(Wire.Timeout));
        Assert.Equal(1, (await c.SubmitAsync(docId, 0, ["x"], 1)).Version);
    }

    [Theory]
    [InlineData(WireProtocol.Json)]
    [InlineData(WireProtocol.MessagePack)]
    public async Task GrowingPastTheLengthLimitIsTooLarge(WireProtocol protocol)
    {
        var docId = "limit-" + protocol;
        var c = await Host.ConnectAsync(protocol);
        await c.JoinAsync(docId, "c");
        await c.SubmitAsync(docId, 0, [new string('a', 90)], 1);
        await Wire.AssertErrorAsync(ErrorCodes.TooLarge, () => c.SubmitAsync(docId, 1, [new string('b', 11)], 2));
        Assert.Equal((1, new string('a', 90)), await Host.GetDocAsync(docId));
        Assert.Equal(2, (await c.SubmitAsync(docId, 1, [new string('b', 10)], 2)).Version);
    }
}
