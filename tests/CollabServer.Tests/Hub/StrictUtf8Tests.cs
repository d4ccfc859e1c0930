using Collab;
using Collab.Messages;
using CollabServer.Tests.Infrastructure;
using MessagePack;

namespace CollabServer.Tests.Hub;

/// <summary>
/// Invalid UTF-8 in a MessagePack string (PROTOCOL §1, §2, §5) is refused with the field's code,
/// never decoded as U+FFFD and acknowledged. Frames are written by hand over a raw WebSocket, since .NET's
/// serializers never write such bytes; each test ends with an honest call on the same connection.
/// </summary>
public sealed class StrictUtf8Tests : HostedTest
{
    public static TheoryData<string, byte[]> BadUtf8() => new()
    {
        // What the TypeScript client's encoder sent for "\ud83d" before it refused lone surrogates.
        { "encoded lone high surrogate", [(byte)'a', 0xED, 0xA0, 0xBD] },
        { "encoded lone low surrogate", [0xED, 0xB8, 0x80] },
        { "invalid continuation", [0xC3, 0x28] },
        { "truncated sequence", [(byte)'x', 0xF0, 0x9F, 0x98] },
        { "overlong slash", [0xC0, 0xAF] },
        { "stray continuation byte", [0x80] },
    };

    private static void WriteSubmit(ref MessagePackWriter w, byte[] docId, int baseVersion, long opId, Action<RawOp> op)
    {
        w.WriteMapHeader(4);
        w.Write("docId");
        RawMessagePackClient.WriteRawString(ref w, docId);
        w.Write("baseVersion");
        w.Write(baseVersion);
        w.Write("op");
        var parts = new RawOp();
        op(parts);
        w.WriteArrayHeader(parts.Count);
        foreach (var part in parts)
        {
            if (part is int n)
            {
                w.Write(n);
            }
            else
            {
                RawMessagePackClient.WriteRawString(ref w, (byte[])part);
            }
        }
        w.Write("opId");
        w.Write(opId);
    }

    private sealed class RawOp : List<object>;

    private static void WriteJoin(ref MessagePackWriter w, byte[] docId, byte[] clientId, byte[]? userName = null)
    {
        w.WriteMapHeader(userName is null ? 2 : 3);
        w.Write("docId");
        RawMessagePackClient.WriteRawString(ref w, docId);
        w.Write("clientId");
        RawMessagePackClient.WriteRawString(ref w, clientId);
        if (userName is not null)
        {
            w.Write("user");
            w.WriteMapHeader(2);
            w.Write("name");
            RawMessagePackClient.WriteRawString(ref w, userName);
            w.Write("color");
            w.Write("#123456");
        }
    }

    private static byte[] Utf8(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    private async Task<(RawMessagePackClient Raw, int Version)> JoinedAsync(string docId)
    {
        var raw = await RawMessagePackClient.ConnectAsync(await Host.ConnectWebSocketAsync());
        var join = await raw.InvokeAsync("Join", (ref MessagePackWriter w) => WriteJoin(ref w, Utf8(docId), Utf8("raw")));
        Assert.Null(join.Error);
        var version = join.Read<JoinResult>().Version;
        var first = await raw.InvokeAsync("Submit", (ref MessagePackWriter w) =>
            WriteSubmit(ref w, Utf8(docId), version, 1, op => op.Add(Utf8("a😀bc"))));
        Assert.Null(first.Error);
        return (raw, first.Read<SubmitResult>().Version);
    }

    [Theory]
    [MemberData(nameof(BadUtf8))]
    public async Task InvalidUtf8InAnInsertIsInvalidOp(string what, byte[] bytes)
    {
        var docId = "utf8-op-" + Math.Abs(what.GetHashCode());
        var (raw, version) = await JoinedAsync(docId);
        await using var _ = raw;
        var before = await Host.GetDocAsync(docId);

        var failed = await raw.InvokeAsync("Submit", (ref MessagePackWriter w) =>
            WriteSubmit(ref w, Utf8(docId), version, 2, op => { op.Add(1); op.Add(bytes); }));
        Assert.Equal(ErrorCodes.InvalidOp, ErrorCodes.FromMessage(failed.Error));
        Assert.Contains("not valid UTF-8", failed.Error);
        Assert.Equal(before, await Host.GetDocAsync(docId));

        // The connection still works, and the same opId is still free.
        var ok = await raw.InvokeAsync("Submit", (ref MessagePackWriter w) =>
            WriteSubmit(ref w, Utf8(docId), version, 2, op => op.Add(Utf8("ok "))));
        Assert.Null(ok.Error);
        Assert.Equal(version + 1, ok.Read<SubmitResult>().Version);
        Assert.Equal("ok a😀bc", (await Host.GetDocAsync(docId)).Text);
    }

    private string[] DocumentFiles() => [.. Directory.GetFiles(Path.Combine(Host.DataDir, "docs"), "*", SearchOption.AllDirectories).Order()];

    [Theory]
    [MemberData(nameof(BadUtf8))]
    public async Task InvalidUtf8InAnIdOrUserNameIsRefusedWithItsCodeAndOnlyThatCallFails(string what, byte[] bytes)
    {
        var docId = "utf8-ids-" + Math.Abs(what.GetHashCode());
        var (raw, version) = await JoinedAsync(docId);
        await using var _ = raw;
        var before = await Host.GetDocAsync(docId);
        // The documents' files: the node log's own files change on its schedule (a segment every few seconds), not per request.
        var files = DocumentFiles();

        // A bad string in a payload is refused with the protocol's code for that field, never
        // taken as a string with U+FFFD in it.
        var badDoc = await raw.InvokeAsync("Join", (ref MessagePackWriter w) => WriteJoin(ref w, bytes, Utf8("raw")));
        var badClient = await raw.InvokeAsync("Join", (ref MessagePackWriter w) => WriteJoin(ref w, Utf8(docId), bytes));
        var badUser = await raw.InvokeAsync("Join", (ref MessagePackWriter w) => WriteJoin(ref w, Utf8(docId), Utf8("raw2"), bytes));
        var badSubmitDoc = await raw.InvokeAsync("Submit", (ref MessagePackWriter w) =>
            WriteSubmit(ref w, [.. Utf8(docId), .. bytes], version, 2, op => op.Add(Utf8("x"))));
        foreach (var (failed, code) in new[] { (badDoc, ErrorCodes.InvalidDocId), (badClient, ErrorCodes.InvalidOp), (badUser, ErrorCodes.InvalidOp), (badSubmitDoc, ErrorCodes.InvalidDocId) })
        {
            Assert.True(ErrorCodes.FromMessage(failed.Error) == code, $"expected {code}, got: {failed.Error}");
        }
        Assert.True(raw.IsOpen);
        Assert.Equal(before, await Host.GetDocAsync(docId));
        Assert.Equal(files, DocumentFiles());

        // The membership is still the honest one, and the connection still works.
        var ok = await raw.InvokeAsync("Submit", (ref MessagePackWriter w) =>
            WriteSubmit(ref w, Utf8(docId), version, 2, op => op.Add(Utf8("ok "))));
        Assert.Null(ok.Error);
        Assert.Equal(version + 1, ok.Read<SubmitResult>().Version);
        var rejoin = await raw.InvokeAsync("Join", (ref MessagePackWriter w) => WriteJoin(ref w, Utf8(docId), Utf8("raw"), Utf8("Zoë")));
        Assert.Null(rejoin.Error);
        Assert.Equal(version + 1, rejoin.Read<JoinResult>().Version);
    }

    [Fact]
    public void TheStrictResolverStillReadsWellFormedStrings()
    {
        var options = MessagePackSerializerOptions.Standard.WithResolver(StrictUtf8Resolver.Instance);
        var request = new JoinRequest { DocId = "d", ClientId = "c😀", User = new UserInfo { Name = "Zoë", Color = null } };
        var back = MessagePackSerializer.Deserialize<JoinRequest>(MessagePackSerializer.Serialize(request, options), options);
        Assert.Equal(("d", "c😀", "Zoë", (string?)null), (back.DocId, back.ClientId, back.User!.Name, back.User.Color));
    }
}
