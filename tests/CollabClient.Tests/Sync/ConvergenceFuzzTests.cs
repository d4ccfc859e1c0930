using System.Text;
using System.Text.RegularExpressions;
using Collab.Client.Internal;
using Xunit.Abstractions;

namespace Collab.Client.Tests.Sync;

/// <summary>
/// Seeded random runs of several real documents against the <see cref="DummyServer"/>. A failing
/// run names its seed (in the test case's name and in the message); rerun that case to replay it.
/// </summary>
public sealed partial class ConvergenceFuzzTests(ITestOutputHelper output)
{
    private const string DocId = "fuzz";

    public static TheoryData<int> Seeds()
    {
        var seeds = new TheoryData<int>();
        for (var seed = 1; seed <= 40; seed++)
        {
            seeds.Add(seed);
        }
        return seeds;
    }

    // Invariant: whatever the interleaving of edits, deliveries (in any order), disconnects,
    // resumes by ops or by whole text, resets and rejected submits, once every peer is connected
    // and the network is quiet, every peer's text is the server's, at the server's version, with
    // nothing pending; and at every moment the text rebuilt from a document's Changed events alone
    // is the document's text.
    [Theory]
    [MemberData(nameof(Seeds))]
    public void PeersConvergeWhateverTheInterleaving(int seed) => Replay(seed, () =>
    {
        var server = new DummyServer(seed);
        var rng = new Random(seed);
        var peers = Enumerable.Range(0, 4).Select(i => server.AddPeer($"peer-{i}")).ToList();
        peers.ForEach(p => p.Open(DocId));

        for (var step = 0; step < 1500; step++)
        {
            var roll = rng.Next(1000);
            var peer = peers[rng.Next(peers.Count)];
            if (roll < 300)
            {
                RandomEdit(peer.Document, rng);
            }
            else if (roll < 315)
            {
                peer.Disconnect(requestsLost: rng.Next(2) == 0);
            }
            else if (roll < 345)
            {
                peer.Reconnect();
            }
            else if (roll < 350 && peer.Connected)
            {
                server.SendReset(peer);
            }
            else if (roll < 355)
            {
                string[] codes = [ErrorCodes.Unavailable, ErrorCodes.RateLimited, ErrorCodes.InvalidOp, ErrorCodes.UnknownVersion];
                server.RejectNextSubmit(peer.ClientId, codes[rng.Next(codes.Length)]);
            }
            else if (roll < 360)
            {
                server.KeepsHistory = !server.KeepsHistory;
            }
            else
            {
                server.Step();
            }
            server.CheckPeers($"step {step} after '{server.LastDelivered}'");
            foreach (var p in peers)
            {
                Assert.Equal(p.Document.Text, p.Mirror);
            }
        }

        peers.ForEach(p => p.Reconnect());
        server.RunUntilQuiet();
        AssertConverged(server, peers);
    });

    // Invariant: an edit is applied exactly once, however its submission was lost, repeated or
    // acknowledged. Every edit inserts a unique token at a token boundary (inserts only, so a
    // token is never split or removed); at the end each token is in the text exactly once.
    // Resumes return ops, or (wholeText) the whole text: then a submission lost with the
    // connection is submitted again with its op id before the rebase (RebaseOntoTextLocked).
    [Theory]
    [MemberData(nameof(Seeds))]
    public void EveryEditLandsExactlyOnceAcrossDisconnects(int seed) => Replay(seed, () => RunTokens(seed, withResets: false));

    [Theory]
    [MemberData(nameof(Seeds))]
    public void EveryEditLandsExactlyOnceAcrossResets(int seed) => Replay(seed, () => RunTokens(seed, withResets: true));

    [Theory]
    [MemberData(nameof(Seeds))]
    public void EveryEditLandsExactlyOnceAcrossDisconnectsResumedByWholeText(int seed) =>
        Replay(seed, () => RunTokens(seed, withResets: false, wholeText: true));

    private static void RunTokens(int seed, bool withResets, bool wholeText = false)
    {
        var server = new DummyServer(seed) { KeepsHistory = !wholeText };
        var rng = new Random(seed);
        var peers = Enumerable.Range(0, 3).Select(i => server.AddPeer($"peer-{i}")).ToList();
        peers.ForEach(p => p.Open(DocId));
        var tokens = new List<string>();

        for (var step = 0; step < 1200; step++)
        {
            var roll = rng.Next(1000);
            var peer = peers[rng.Next(peers.Count)];
            if (roll < 250)
            {
                var token = $"<{peer.ClientId}.{tokens.Count}>";
                tokens.Add(token);
                var boundaries = Boundaries(peer.Document.Text);
                peer.Document.Insert(boundaries[rng.Next(boundaries.Count)], token);
            }
            else if (roll < 280 && !withResets)
            {
                peer.Disconnect(requestsLost: rng.Next(2) == 0);
            }
            else if (roll < 320 && !withResets)
            {
                peer.Reconnect();
            }
            else if (roll < 300 && withResets && peer.Connected)
            {
                server.SendReset(peer);
            }
            else if (roll < 330)
            {
                string[] codes = [ErrorCodes.Unavailable, ErrorCodes.RateLimited, ErrorCodes.UnknownVersion];
                server.RejectNextSubmit(peer.ClientId, codes[rng.Next(codes.Length)]);
            }
            else
            {
                server.Step();
            }
            server.CheckPeers($"step {step} after '{server.LastDelivered}'");
            foreach (var p in peers)
            {
                Unnest(p.Document.Text, $"step {step}, {p.ClientId}, after '{server.LastDelivered}'");
            }
        }

        peers.ForEach(p => p.Reconnect());
        server.RunUntilQuiet();
        AssertConverged(server, peers);
        var found = Unnest(server.Text, "the final text");
        Assert.Equal(tokens.Order(StringComparer.Ordinal), found.Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// The tokens of a text made of whole tokens, some inserted inside others: innermost tokens
    /// are taken out until nothing is left. A resume or reset that brings the whole text rebases
    /// pending edits over one replacement (TextOperation.Diff), which can put a pending token
    /// inside another one; it is still there exactly once, and so is the other.
    /// </summary>
    private static List<string> Unnest(string text, string when)
    {
        var found = new List<string>();
        while (text.Length > 0)
        {
            var inner = TokenPattern().Matches(text);
            Assert.True(inner.Count > 0, $"{when}: not made of whole tokens: {text}");
            found.AddRange(inner.Select(m => m.Value));
            text = TokenPattern().Replace(text, "");
        }
        return found;
    }

    [GeneratedRegex("<[^<>]*>")]
    private static partial Regex TokenPattern();

    private static List<int> Boundaries(string text)
    {
        var result = new List<int> { 0 };
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] == '>')
            {
                result.Add(i + 1);
            }
        }
        return result;
    }

    private static void RandomEdit(CollabDocument document, Random rng)
    {
        var text = document.Text;
        var position = AvoidSplit(text, rng.Next(text.Length + 1));
        var roll = rng.Next(10);
        if (roll < 6 || text.Length == 0)
        {
            document.Insert(position, RandomText(rng));
            return;
        }
        var end = AvoidSplit(text, Math.Min(text.Length, position + rng.Next(1, 6)));
        if (roll < 9)
        {
            document.Delete(position, end - position);
        }
        else
        {
            document.Replace(position, end - position, RandomText(rng));
        }
    }

    private static int AvoidSplit(string text, int position) =>
        position > 0 && position < text.Length && char.IsLowSurrogate(text[position]) ? position - 1 : position;

    private static string RandomText(Random rng)
    {
        var sb = new StringBuilder();
        var length = rng.Next(1, 4);
        for (var i = 0; i < length; i++)
        {
            sb.Append(rng.Next(12) switch
            {
                0 => "\U0001F600",
                1 => "\n",
                var n => ((char)('a' + n)).ToString(),
            });
        }
        return sb.ToString();
    }

    private static void AssertConverged(DummyServer server, List<Peer> peers)
    {
        var states = $"server at {server.Version}, in transit: [{string.Join(", ", server.InTransitNames)}]\n"
            + string.Join("\n", peers.Select(p => $"{p.ClientId}: {p.Document.DebugState}"));
        Assert.True(peers.All(p => p.Document.Version == server.Version && p.Document.SyncState == ClientSyncState.Synchronized), states);
        foreach (var peer in peers)
        {
            var doc = peer.Document;
            Assert.Equal(ConnectionState.Connected, doc.ConnectionState);
            Assert.Equal(ClientSyncState.Synchronized, doc.SyncState);
            Assert.Equal(server.Version, doc.Version);
            Assert.Equal(server.Text, doc.Text);
            Assert.Equal(server.Text, peer.Mirror);
        }
    }

    private void Replay(int seed, Action run)
    {
        try
        {
            run();
        }
        catch (Exception ex)
        {
            output.WriteLine($"Failing seed: {seed}");
            throw new Xunit.Sdk.XunitException($"seed {seed}: {ex.Message}\n{ex.StackTrace}");
        }
    }
}
