using Collab;
using Collab.Messages;
using CollabServer.Documents;
using CollabServer.Tests.Infrastructure;

namespace CollabServer.Tests.Documents;

/// <summary>The actor through its registry: REST writes, deletes and its life, with a member where one is needed.</summary>
public sealed class DocumentActorTests() : HostedTest
{
    private DocumentRegistry Registry => Host.GetService<DocumentRegistry>();

    [Fact]
    public async Task AReplaceIsSequencedLikeASubmitAndReachesMembersAsAnOp()
    {
        var c = await Host.ConnectAsync();
        var ops = c.Collect<OpMessage>("Op");
        await c.JoinAsync("replaced", "member");
        await c.SubmitAsync("replaced", 0, ["hello"], 1);
        Assert.Equal(2, await Registry.AskAsync("replaced", () => new ReplaceText("hello world")));
        var op = await ops.Reader.ReadAsync().AsTask().WaitAsync(Wire.Timeout);
        // The server's own op: clientId "", numbered by the version it was made at.
        Assert.Equal((2, "", 2L), (op.Version, op.ClientId, op.OpId));
        Assert.Equal("[5,\" world\"]", op.Op!.ToString());
        // The same text again is no op and no version.
        Assert.Equal(2, await Registry.AskAsync("replaced", () => new ReplaceText("hello world")));
        Assert.Equal((2, "hello world"), await Host.GetDocAsync("replaced"));
    }

    [Fact]
    public async Task ADeletedDocumentsActorClosesAndTheNextRequestStartsFromNothing()
    {
        var c = await Host.ConnectAsync();
        var resets = c.Collect<ResetMessage>("Reset");
        await c.JoinAsync("gone", "member");
        await c.SubmitAsync("gone", 0, ["old text"], 1);
        Assert.True(await Registry.AskAsync("gone", () => new DeleteDocument()));
        Assert.Equal("deleted", (await resets.Reader.ReadAsync().AsTask().WaitAsync(Wire.Timeout)).Reason);
        Assert.False(Registry.Exists("gone"));
        Assert.Null(await Registry.AskAsync("gone", () => new ReadText()));
        // A write recreates it at version 1 with none of the old state (ids included).
        Assert.Equal(1, await Registry.AskAsync("gone", () => new ReplaceText("new")));
        await c.JoinAsync("gone", "member");
        Assert.Equal(2, (await c.SubmitAsync("gone", 1, [3, "!"], 1)).Version);
        Assert.Equal((2, "new!"), await Host.GetDocAsync("gone"));
    }

    [Fact]
    public async Task ARefusedRequestChangesNothingAndTheDocumentGoesOn()
    {
        var c = await Host.ConnectAsync();
        await c.JoinAsync("refused", "member");
        await Wire.AssertErrorAsync(ErrorCodes.InvalidOp, () => c.SubmitAsync("refused", 0, [5], 1));
        var tooLarge = await Assert.ThrowsAsync<CollabServer.Errors.CollabError>(() => Registry.AskAsync("refused", () => new ReplaceText(new string('x', 17 * 1024 * 1024))));
        Assert.Equal(ErrorCodes.TooLarge, tooLarge.Code);
        Assert.Equal(1, (await c.SubmitAsync("refused", 0, ["fine"], 1)).Version);
    }
}
