using Collab.Ot;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// <see cref="CollabDocument.Text"/> and <see cref="CollabDocument.TextRope"/> are snapshots of a
/// text the document edits in place: the same instance until the text changes, a new one after,
/// so <see cref="CollabDocument.TryApply"/> still recognises an edit computed on an older text.
/// </summary>
public sealed class TextSnapshotTests
{
    [Fact]
    public void TextRopeIsTheSameInstanceUntilAChangeAndANewOneAfterEvenWhenTheTextIsEmptiedAgain()
    {
        var server = new DummyServer(seed: 1);
        var a = server.AddPeer("client-a");
        var b = server.AddPeer("client-b");
        a.CreateDocument("doc");
        b.CreateDocument("doc");
        var joinA = a.Document.JoinInitialAsync(CancellationToken.None);
        var joinB = b.Document.JoinInitialAsync(CancellationToken.None);
        server.DeliverAll();
        Assert.True(joinA.IsCompletedSuccessfully && joinB.IsCompletedSuccessfully);

        var empty = b.Document.TextRope;
        Assert.Same(empty, b.Document.TextRope);

        a.Document.Insert(0, "ab");
        server.DeliverAll();
        var written = b.Document.TextRope;
        Assert.NotSame(empty, written);
        Assert.Same(written, b.Document.TextRope);
        Assert.Equal("ab", written.ToString());
        Assert.Same(b.Document.Text, b.Document.Text);

        a.Document.Delete(0, 2);
        server.DeliverAll();
        var emptied = b.Document.TextRope;
        Assert.Equal(0, emptied.Length);
        Assert.NotSame(empty, emptied);
        Assert.False(b.Document.TryApply(TextOperation.Insert(0, "z"), empty));
        Assert.False(b.Document.TryApply(TextOperation.Insert(0, "z"), written));
        Assert.True(b.Document.TryApply(TextOperation.Insert(0, "z"), emptied));
        Assert.NotSame(emptied, b.Document.TextRope);
        server.DeliverAll();
        Assert.Equal("z", server.Text);
        Assert.Equal("z", a.Document.Text);
    }
}
