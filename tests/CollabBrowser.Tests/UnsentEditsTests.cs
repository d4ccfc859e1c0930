using System.Text.Json;
using Microsoft.Playwright;

using static CollabBrowser.Tests.BrowserFixture;

namespace CollabBrowser.Tests;

/// <summary>
/// Unsent edits kept in the browser (IndexedDB, client/web/unsent.ts): a tab that crashes with
/// edits the server never confirmed loses none of them, and opening the document again sends them
/// once each, the one the server had committed unacknowledged under its original op id.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class UnsentEditsTests(BrowserFixture fixture)
{
    private async Task<string> ServerTextAsync(string docId)
    {
        using var json = JsonDocument.Parse(await fixture.Http.GetStringAsync($"/api/docs/{docId}"));
        return json.RootElement.GetProperty("text").GetString()!;
    }

    /// <summary>The records of unsent edits kept for <paramref name="docId"/>: "" for none, else each as "sent" or "unsent", with "+buffer" if later edits wait behind it, joined by ",".</summary>
    private static Task<string> KeptAsync(EditorPage page, string docId) => page.Page.EvaluateAsync<string>(
        """
        docId => new Promise((resolve, reject) => {
          const open = indexedDB.open("collab-unsent");
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const all = open.result.transaction("edits").objectStore("edits").index("docId").getAll(docId);
            all.onsuccess = () => {
              open.result.close();
              resolve(all.result.map((r) => (r.sent ? "sent" : "unsent") + (r.buffer ? "+buffer" : "")).join(","));
            };
            all.onerror = () => reject(all.error);
          };
        })
        """, docId);

    /// <summary>A new document with <paramref name="text"/>, and Ada's page on it through a proxy the test can cut.</summary>
    private async Task<(string DocId, TcpProxy Proxy, EditorPage Ada)> OpenBehindProxyAsync(string name, string text)
    {
        var docId = NewDocId(name);
        await fixture.PutAsync(docId, text);
        var proxy = new TcpProxy(new Uri(fixture.BaseUrl));
        try
        {
            return (docId, proxy, await EditorPage.OpenDocumentAsync(fixture.Browser, proxy.Url, docId, "Ada Lovelace", AdaColor));
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    [Fact]
    public async Task EditsATabCrashedWithAreSentOnceWhenTheDocumentIsOpenedAgain()
    {
        var (docId, proxy, ada) = await OpenBehindProxyAsync("unsent", "Line one.\n");
        await using var _ = proxy;
        await using var __ = ada;
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Grace Hopper", GraceColor);
        await ada.Page.Keyboard.PressAsync("Control+End");
        await ada.TypeAsync("[sent]");
        await ada.WaitSynchronizedAsync();

        // The server receives the next edit and commits it, but its answer never reaches the page.
        proxy.HoldReplies();
        await ada.Page.Keyboard.InsertTextAsync("[committed-unacknowledged]");
        await Expect.EventuallyAsync(async () => (await ServerTextAsync(docId)).Contains("[committed-unacknowledged]", StringComparison.Ordinal), "the server has committed the edit");
        // Then the network goes altogether: what is typed now is never sent.
        proxy.Cut();
        await Expect.EventuallyAsync(async () => (await ada.StatusAsync()).StartsWith("Offline", StringComparison.Ordinal), "the page shows it is offline");
        await ada.TypeAsync("[typed-offline]");
        Assert.Contains("[typed-offline]", await ada.TextAsync());
        await Expect.EventuallyAsync(
            async () => (await ada.Page.Locator("#saved").InnerTextAsync()).EndsWith("kept in this browser", StringComparison.Ordinal),
            "the page says its unsent edits are kept in this browser");
        Assert.Equal("sent+buffer", await KeptAsync(ada, docId));
        await ada.Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(TestArtifacts.Dir(), "unsent-kept.png") });

        // The tab dies without a chance to say anything; someone else edits meanwhile.
        await ada.CrashAsync();
        await grace.SetCursorAsync(0);
        await grace.TypeAsync("[grace-meanwhile]");
        await grace.WaitSynchronizedAsync();

        // The network is back, and Ada opens the document again.
        proxy.Restore();
        await using var again = await ada.NewTabAsync(proxy.Url, docId);
        await Expect.EventuallyAsync(
            async () => (await again.Page.Locator("#banner-text").InnerTextAsync()).StartsWith("Restored ", StringComparison.Ordinal),
            "the page says it restored the unsent edits");
        await again.Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(TestArtifacts.Dir(), "unsent-restored.png") });
        await again.WaitSynchronizedAsync();
        await Expect.EventuallyAsync(async () => await ServerTextAsync(docId) == await again.TextAsync() && await again.TextAsync() == await grace.TextAsync(), "both pages show the server's text");
        var text = await ServerTextAsync(docId);
        foreach (var marker in new[] { "[sent]", "[committed-unacknowledged]", "[typed-offline]", "[grace-meanwhile]", "Line one." })
        {
            Assert.True(Expect.Count(text, marker) == 1, $"{marker} is in {Expect.Show(text)} {Expect.Count(text, marker)} times");
        }
        Assert.Equal("[grace-meanwhile]Line one.\n[sent][committed-unacknowledged][typed-offline]", text);
        // Confirmed, so nothing is kept any more.
        await Expect.EventuallyAsync(async () => await KeptAsync(again, docId) == "", "the kept record is deleted once its edits are confirmed");
    }

    [Fact]
    public async Task ASecondTabDoesNotTakeTheUnsentEditsOfATabThatIsStillOpen()
    {
        var (docId, proxy, ada) = await OpenBehindProxyAsync("unsent-live", "Text.\n");
        await using var _ = proxy;
        await using var __ = ada;
        await ada.Page.Keyboard.PressAsync("Control+End");
        // The first tab's edit is sent and its answer held back, so its next ones wait unsent.
        proxy.HoldReplies();
        await ada.Page.Keyboard.InsertTextAsync("[sent]");
        await ada.TypeAsync("[waiting]");
        await Expect.EventuallyAsync(async () => await KeptAsync(ada, docId) == "sent+buffer", "the first tab keeps its sent and its waiting edits");
        var firstClientId = await ada.Page.EvaluateAsync<string>("() => window.collab.doc.clientId");

        // A second tab of the same browser opens the document while the first is alive.
        await using var second = await ada.NewTabAsync(proxy.Url, docId);
        await second.WaitSynchronizedAsync();
        Assert.NotEqual(firstClientId, await second.Page.EvaluateAsync<string>("() => window.collab.doc.clientId"));
        Assert.False(
            await second.Page.Locator("#banner").IsVisibleAsync() && (await second.Page.Locator("#banner-text").InnerTextAsync()).StartsWith("Restored", StringComparison.Ordinal),
            "the second tab restored nothing");

        // The first tab hears from the server again and sends its edits itself: each arrives once.
        proxy.Restore();
        await ada.WaitSynchronizedAsync();
        await Expect.EventuallyAsync(async () => (await ServerTextAsync(docId)) == await second.TextAsync() && await second.PendingEditsAsync() == 0, "the second tab shows the server's text");
        var text = await ServerTextAsync(docId);
        Assert.Equal("Text.\n[sent][waiting]", text);
        await Expect.EventuallyAsync(async () => await KeptAsync(ada, docId) == "", "nothing is kept once confirmed");
    }
}
