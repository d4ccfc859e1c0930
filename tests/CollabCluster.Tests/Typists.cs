using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>Clients typing into one document of a <see cref="TestCluster"/>, each through the real .NET client, and the checks made when they stop.</summary>
internal static class Typists
{
    public static async Task<List<Typist>> OpenAsync(TestCluster cluster, string docId, int count, int? nodes = null)
    {
        var typists = new List<Typist>();
        for (var i = 0; i < count; i++)
        {
            // Each knows one node only; it learns the others from it.
            typists.Add(await Typist.OpenAsync($"{docId[0]}{i}", cluster.Url(i % (nodes ?? cluster.Count)), docId));
        }
        foreach (var typist in typists)
        {
            await typist.WaitKnowsNodesAsync(nodes ?? cluster.Count);
        }
        return typists;
    }

    public static void StartAll(List<Typist> typists)
    {
        foreach (var t in typists)
        {
            t.Start();
        }
    }

    /// <summary>Waits until every typist has <paramref name="tokens"/> more tokens acknowledged.</summary>
    public static async Task WaitForProgressAsync(List<Typist> typists, int tokens)
    {
        var targets = typists.Select(t => t.Acked + tokens).ToArray();
        for (var i = 0; i < typists.Count; i++)
        {
            await typists[i].WaitForAckedAsync(targets[i]);
        }
    }

    public static async Task StopAllAndCheckAsync(List<Typist> typists)
    {
        foreach (var t in typists)
        {
            await t.StopAsync();
        }
        await Eventually.TrueAsync(() => Task.FromResult(typists.All(t => t.Document.Text == typists[0].Document.Text)), "every client has the same text");
        var text = typists[0].Document.Text;
        foreach (var t in typists)
        {
            t.AssertAllOnceInOrder(text);
        }
    }

    public static async Task DisposeAllAsync(List<Typist> typists)
    {
        foreach (var t in typists)
        {
            await t.DisposeAsync();
        }
    }
}
