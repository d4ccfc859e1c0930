using System.Net.Http.Json;
using System.Text.Json;
using Collab.Testing;

namespace CollabCluster.Tests;

/// <summary>
/// Retention in a cluster whose nodes share one data directory: every node's pass sees every
/// database, and only the document's owner folds it (through its actor, under its lease).
/// </summary>
public sealed class RetentionTests
{
    [Fact]
    public async Task OnlyTheOwnerFoldsADocumentsHistory()
    {
        // Everything older than 1 ms is folded, looked at every second on every node.
        await using var cluster = await TestCluster.StartAsync(3, "--Collab:History:Retention=00:00:00.001", "--Collab:History:RetentionCheckInterval=00:00:01");
        await using var typist = await Typist.OpenAsync("r", cluster.Url(0), "kept");
        typist.Start(limit: 30);
        await typist.WaitForAckedAsync(30);
        await typist.StopAsync();
        var owner = await cluster.OwnerAsync("kept");

        const string folded = "Document kept: ops up to version";
        await Eventually.TrueAsync(() => Task.FromResult(cluster.Node(owner).Output.Contains(folded, StringComparison.Ordinal)), "the owner folds the document's history");
        // Every node passes over it again at least once (one pass a second): the others leave it
        // alone, and nobody fails at it. (Absence has no event to wait for.)
        await Task.Delay(TimeSpan.FromSeconds(3));
        for (var node = 0; node < cluster.Count; node++)
        {
            var output = cluster.Node(node).Output;
            Assert.True(node == owner || !output.Contains(folded, StringComparison.Ordinal), $"{TestCluster.NodeId(node)} folded a document it does not own:\n{output}");
            Assert.DoesNotContain("the retention pass failed", output);
        }
        // The text is whole, and the oldest version kept is past the start.
        var doc = await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(1), "/api/docs/kept"));
        typist.AssertAllOnceInOrder(doc.GetProperty("text").GetString()!);
        var old = await cluster.Http.GetAsync(new Uri(cluster.Url(1), "/api/docs/kept?version=1"));
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, old.StatusCode);
    }
}
