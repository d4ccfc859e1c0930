using System.Net.Http.Json;
using System.Text.Json;
using Collab.Testing;

namespace CollabBrowser.Tests;

/// <summary>
/// The editor in a real three-node cluster: opened on a node that does not own the document it
/// follows the redirect, and when the owner is killed it keeps the edits made meanwhile and
/// carries on with the node that takes over.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ClusterEditorTests(BrowserFixture fixture) : IAsyncLifetime
{
    private TestCluster? _cluster;

    public async Task InitializeAsync() => _cluster = await TestCluster.StartAsync();

    [Fact]
    public async Task TheEditorOnANonOwnerWorksAndKeepsWorkingWhenTheOwnerIsKilled()
    {
        var cluster = _cluster!;
        // A .NET client makes node 0 the owner.
        await using var typist = await Typist.OpenAsync("net", cluster.Url(0), "web");
        typist.Start(limit: 3);
        await typist.WaitForAckedAsync(3);
        Assert.Equal(0, await cluster.OwnerAsync("web"));

        await using var editor = await EditorPage.OpenDocumentAsync(fixture.Browser, cluster.Url(1).AbsoluteUri.TrimEnd('/'), "web", "Ada", "#d33");
        await editor.SetCursorAsync(0);
        await editor.TypeAsync("hello ");
        await editor.WaitSynchronizedAsync();
        Assert.Equal(0, await cluster.OwnerAsync("web"));
        Assert.StartsWith("hello ", await TextOnAsync(cluster, 2));

        await typist.WaitKnowsNodesAsync(cluster.Count); // or it would have nowhere to go
        cluster.Node(0).Kill();
        await editor.SetCursorAsync(6);
        await editor.TypeAsync("world ");
        await editor.WaitSynchronizedAsync();
        Assert.NotEqual(0, await cluster.OwnerAsync("web", via: 2));
        var text = await TextOnAsync(cluster, 2);
        Assert.StartsWith("hello world ", text);
        Assert.Equal(text, await editor.TextAsync());
        await Expect.EventuallyAsync(() => Task.FromResult(typist.Document.Text == text), "the .NET client, moved off the dead node, has the same text");
        typist.AssertAllOnceInOrder(text);
        // Chromium itself logs each refused connection to the dead node (and the request that asks
        // it why); nothing else may be logged.
        Assert.DoesNotContain(editor.ConsoleErrors, e => !EditorPage.IsHubConnectionFailure(e, cluster.Url(0)));
    }

    private static async Task<string> TextOnAsync(TestCluster cluster, int node) =>
        (await cluster.Http.GetFromJsonAsync<JsonElement>(new Uri(cluster.Url(node), "/api/docs/web"))).GetProperty("text").GetString()!;

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }
}
