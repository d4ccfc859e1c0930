using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;

using static CollabBrowser.Tests.BrowserFixture;

namespace CollabBrowser.Tests;

/// <summary>
/// The document page's colors and Markdown preview: two people who remembered the same color get
/// different ones in one document; a Markdown document's preview follows everyone's edits and
/// never makes HTML written in the text part of the page. Renames and deletes: a member typing while
/// someone renames the document loses none of her text and is taken to the new id with a message,
/// old links lead there, and the home page renames and deletes per row.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class DocumentPageTests(BrowserFixture fixture, ITestOutputHelper output)
{
    private const string ColorOfMember = "(p, id) => { const m = window.collab.doc.members.find(m => m.clientId === id); return m ? m.user.color : null; }";

    [Fact]
    public async Task TwoPagesJoiningOneDocumentWithTheSameColorGetDifferentColors()
    {
        var docId = NewDocId("colors");
        // Both remembered red from an earlier visit.
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Grace Hopper", AdaColor);

        var adaId = await ada.Page.EvaluateAsync<string>("() => window.collab.client.clientId");
        var graceId = await grace.Page.EvaluateAsync<string>("() => window.collab.client.clientId");
        string? adaColor = null, graceColor = null, adaSeenByGrace = null, graceSeenByAda = null;
        await Expect.EventuallyAsync(async () =>
        {
            adaColor = await ada.Page.EvaluateAsync<string>("() => window.collab.client.user().color");
            graceColor = await grace.Page.EvaluateAsync<string>("() => window.collab.client.user().color");
            adaSeenByGrace = await grace.Page.EvaluateAsync<string?>($"id => ({ColorOfMember})(null, id)", adaId);
            graceSeenByAda = await ada.Page.EvaluateAsync<string?>($"id => ({ColorOfMember})(null, id)", graceId);
            return adaColor != graceColor && adaSeenByGrace == adaColor && graceSeenByAda == graceColor;
        }, "the two pages have different colors and each sees the other's");

        // Each page's own badge shows its color, and the colors come from the palette.
        string[] palette = ["#e5484d", "#f76b15", "#c2850c", "#30a46c", "#12a594", "#0090ff", "#6e56cf", "#d6409f"];
        Assert.Contains(adaColor, palette);
        Assert.Contains(graceColor, palette);
        Assert.NotEqual(
            await ada.Page.Locator("#me-button .avatar").EvaluateAsync<string>("e => getComputedStyle(e).backgroundColor"),
            await grace.Page.Locator("#me-button .avatar").EvaluateAsync<string>("e => getComputedStyle(e).backgroundColor"));
        // Not a Markdown document: no preview is offered.
        Assert.True(await ada.Page.Locator("#preview-toggle").IsHiddenAsync(), "no preview for a plain-text document");
        Assert.Empty(ada.ConsoleErrors);
        Assert.Empty(grace.ConsoleErrors);
    }

    [Fact]
    public async Task AColorChosenInTheDialogIsKeptEvenWhenSomeoneElseHasIt()
    {
        const string Pink = "#d6409f";
        var docId = NewDocId("chosen");
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Grace Hopper", GraceColor);

        // Both pick pink in the dialog: a choice, kept whoever else has it.
        foreach (var page in new[] { ada, grace })
        {
            await page.Page.Locator("#me-button").ClickAsync();
            await page.Page.Locator("#me-colors input[aria-label='Pink']").CheckAsync();
            await page.Page.Locator("#me-form button[type='submit']").ClickAsync();
        }
        // Grace opens the document again: joining beside Ada's pink, she stays pink, and so does Ada.
        await grace.Page.ReloadAsync();
        await grace.Page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
        var adaId = await ada.Page.EvaluateAsync<string>("() => window.collab.client.clientId");
        var graceId = await grace.Page.EvaluateAsync<string>("() => window.collab.client.clientId");
        await Expect.EventuallyAsync(async () =>
            await grace.Page.EvaluateAsync<string?>($"id => ({ColorOfMember})(null, id)", adaId) == Pink
            && await ada.Page.EvaluateAsync<string?>($"id => ({ColorOfMember})(null, id)", graceId) == Pink,
            "each page sees the other in pink");
        Assert.Equal(Pink, await grace.Page.EvaluateAsync<string>("() => window.collab.client.user().color"));
        Assert.Equal(Pink, await ada.Page.EvaluateAsync<string>("() => window.collab.client.user().color"));
        Assert.Empty(ada.ConsoleErrors);
        Assert.Empty(grace.ConsoleErrors);
    }

    [Fact]
    public async Task AMarkdownDocumentsPreviewFollowsEveryonesEditsAndNeverRunsHtmlFromTheText()
    {
        var docId = NewDocId("release-notes", ".md");
        await fixture.PutAsync(docId, string.Join("\n",
            "# Release notes",
            "",
            "This release is **bold** and *calm*.",
            "",
            "<script>window.injected = 'script'</script>",
            "",
            "<img src=\"/nothing-here.png\" onerror=\"window.injected = 'img'\">",
            "",
            "[a trap](javascript:window.injected='link') and [the docs](https://example.org/docs)",
            "",
            "- faster joins",
            "- a preview for Markdown",
            ""));
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, docId, "Grace Hopper", GraceColor);

        var toggle = ada.Page.Locator("#preview-toggle");
        Assert.True(await toggle.IsVisibleAsync(), "a Markdown document offers the preview");
        Assert.Equal("false", await toggle.GetAttributeAsync("aria-pressed"));
        Assert.True(await ada.Page.Locator("#preview").IsHiddenAsync());
        await toggle.ClickAsync();
        Assert.Equal("true", await toggle.GetAttributeAsync("aria-pressed"));

        var body = ada.Page.Locator("#preview-body");
        await body.Locator("strong").WaitForAsync();
        Assert.Equal("bold", await body.Locator("strong").InnerTextAsync());
        Assert.Equal("calm", await body.Locator("em").InnerTextAsync());
        Assert.Equal("Release notes", await body.Locator("h1").InnerTextAsync());
        Assert.Equal(2, await body.Locator("li").CountAsync());
        // HTML in the text is shown as text: no element of it, nothing run, no image requested.
        Assert.Equal(0, await body.Locator("script, img, iframe").CountAsync());
        var shown = await body.InnerTextAsync();
        Assert.Contains("<script>window.injected = 'script'</script>", shown);
        Assert.Contains("<img src=\"/nothing-here.png\" onerror=\"window.injected = 'img'\">", shown);
        Assert.Equal(1, await body.Locator("a").CountAsync());
        Assert.Equal("https://example.org/docs", await body.Locator("a").GetAttributeAsync("href"));
        Assert.Null(await ada.Page.EvaluateAsync<string?>("() => window.injected ?? null"));

        // Grace types; Ada's preview follows.
        await grace.SetCursorAsync((await grace.TextAsync()).Length);
        await grace.TypeAsync("\n## From Grace\n\nShe adds *this* line.\n");
        await grace.WaitSynchronizedAsync();
        await Expect.EventuallyAsync(async () => await body.Locator("h2").CountAsync() == 1 && await body.Locator("h2").InnerTextAsync() == "From Grace"
            && await body.Locator("em", new LocatorLocatorOptions { HasTextString = "this" }).CountAsync() == 1,
            "Ada's preview shows Grace's heading and emphasis");
        await ada.WaitSynchronizedAsync();
        Assert.Null(await ada.Page.EvaluateAsync<string?>("() => window.injected ?? null"));

        var path = Path.Combine(TestArtifacts.Dir(), "markdown-preview.png");
        await ada.Page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        Assert.True(new FileInfo(path).Length > 10_000, "the screenshot was written");
        output.WriteLine($"Screenshot of the Markdown preview: {path}");

        // Hiding it is remembered: the preview stays hidden after a reload.
        await toggle.ClickAsync();
        Assert.True(await ada.Page.Locator("#preview").IsHiddenAsync());
        await ada.Page.ReloadAsync();
        await ada.Page.WaitForFunctionAsync("() => window.collab && window.collab.client.status === 'connected'");
        Assert.Equal("false", await ada.Page.Locator("#preview-toggle").GetAttributeAsync("aria-pressed"));
        Assert.True(await ada.Page.Locator("#preview").IsHiddenAsync());
        Assert.Empty(ada.ConsoleErrors);
        Assert.Empty(grace.ConsoleErrors);
    }

    private const string Connected = "() => window.collab && window.collab.view && window.collab.client.status === 'connected'";

    /// <summary>The 404 Chromium logs when the rename asks whether the new name is free: the only console error a renaming page may have.</summary>
    private static void AssertOnlyTheFreeNameCheck(EditorPage page, string baseUrl, string newId) =>
        Assert.All(page.ConsoleErrors, e => Assert.True(
            e.StartsWith("Failed to load resource: the server responded with a status of 404", StringComparison.Ordinal) && e.Contains($"({baseUrl}/api/docs/{newId}:", StringComparison.Ordinal),
            $"an unexpected console error: {e}"));

    private async Task<JsonElement> ProblemAsync(string docId)
    {
        using var response = await fixture.Http.GetAsync($"/api/docs/{docId}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }

    [Fact]
    public async Task ARenameWhileAMemberTypesKeepsAllHerTextTakesHerToTheNewIdWithAMessageAndOldLinksFollow()
    {
        var oldId = NewDocId("plan");
        var newId = NewDocId("plan-final");
        await fixture.PutAsync(oldId, "Plan:\n");
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, oldId, "Ada Lovelace", AdaColor);
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, oldId, "Grace Hopper", GraceColor);

        // Grace types; once her first keys are on the server, Ada renames the document meanwhile.
        const string Typed = "grace keeps typing while ada renames this document";
        await grace.SetCursorAsync(6);
        var typing = grace.TypeAsync(Typed, 25);
        await Expect.EventuallyAsync(async () =>
            (await fixture.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{oldId}")).GetProperty("version").GetInt32() > 2, "Grace's typing reached the server");
        await ada.Page.Locator("#rename-doc").ClickAsync();
        await ada.Page.Locator("#rename-name").FillAsync(newId);
        await ada.Page.Locator("#rename-confirm").ClickAsync();
        await typing;

        // Both end on the new id, with all of Grace's text; Grace is told why.
        await ada.Page.WaitForURLAsync($"{fixture.BaseUrl}/d/{newId}");
        await grace.Page.WaitForURLAsync($"{fixture.BaseUrl}/d/{newId}");
        foreach (var page in new[] { ada, grace })
        {
            await page.Page.WaitForFunctionAsync(Connected);
            await Expect.EventuallyAsync(async () => await page.TextAsync() == "Plan:\n" + Typed, $"{page.Name}'s page shows all of Grace's text in {newId}");
        }
        Assert.Equal(newId, await grace.Page.Locator("#doc-title").InnerTextAsync());
        Assert.StartsWith($"“{oldId}” was renamed to “{newId}” by someone; this is it now.", await grace.Page.Locator("#banner-text").InnerTextAsync());
        Assert.True(await grace.Page.Locator("#banner").IsVisibleAsync(), "Grace sees why she is on another document");
        Assert.True(await ada.Page.Locator("#banner").IsHiddenAsync(), "Ada renamed it herself: nothing to tell her");
        await grace.Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(TestArtifacts.Dir(), "renamed-member.png") });
        await grace.WaitSynchronizedAsync();
        Assert.Equal("Plan:\n" + Typed, (await fixture.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{newId}")).GetProperty("text").GetString());

        // The old id is gone (no member joined it again), its 404 names the new one, and its link opens the new one.
        Assert.Equal(newId, (await ProblemAsync(oldId)).GetProperty("movedTo").GetString());
        await using var link = await EditorPage.OpenAsync(fixture.Browser, $"{fixture.BaseUrl}/d/{oldId}", "Grace Hopper", GraceColor);
        await link.Page.WaitForFunctionAsync(Connected);
        Assert.Equal($"{fixture.BaseUrl}/d/{newId}", link.Page.Url);
        Assert.Equal("Plan:\n" + Typed, await link.TextAsync());
        Assert.Equal(newId, await link.Page.Locator("#doc-title").InnerTextAsync());

        AssertOnlyTheFreeNameCheck(ada, fixture.BaseUrl, newId);
        Assert.Empty(grace.ConsoleErrors);
        Assert.Empty(link.ConsoleErrors);
    }

    [Fact]
    public async Task AMemberWhoWasOfflineDuringARenameFollowsItWhenBackAndHerOfflineEditsLandInTheNewDocument()
    {
        var oldId = NewDocId("away");
        var newId = NewDocId("away-renamed");
        await fixture.PutAsync(oldId, "Plan:\n");
        await using var proxy = new TcpProxy(new Uri(fixture.BaseUrl));
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, proxy.Url, oldId, "Grace Hopper", GraceColor);
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, oldId, "Ada Lovelace", AdaColor);

        // Grace's network goes; she types on.
        await grace.Page.Keyboard.PressAsync("Control+End");
        proxy.Cut();
        await Expect.EventuallyAsync(async () => (await grace.StatusAsync()).StartsWith("Offline", StringComparison.Ordinal), "Grace's page shows it is offline");
        await grace.TypeAsync("typed offline");

        // Meanwhile Ada renames the document: Grace gets no Reset.
        await ada.Page.Locator("#rename-doc").ClickAsync();
        await ada.Page.Locator("#rename-name").FillAsync(newId);
        await ada.Page.Locator("#rename-confirm").ClickAsync();
        await ada.Page.WaitForURLAsync($"{fixture.BaseUrl}/d/{newId}");

        // Back online, Grace's page resumes the old id, learns where it went, and takes her edits there.
        proxy.Restore();
        await grace.Page.WaitForURLAsync($"{proxy.Url}/d/{newId}");
        await grace.Page.WaitForFunctionAsync(Connected);
        await Expect.EventuallyAsync(async () => await grace.TextAsync() == "Plan:\ntyped offline" && await grace.PendingEditsAsync() == 0, "Grace's page shows her offline edits in the new document");
        Assert.StartsWith($"“{oldId}” was renamed to “{newId}” by someone; this is it now. Your edits that were not saved yet were added here.", await grace.Page.Locator("#banner-text").InnerTextAsync());
        Assert.Equal("Plan:\ntyped offline", (await fixture.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{newId}")).GetProperty("text").GetString());
        await Expect.EventuallyAsync(async () => await ada.TextAsync() == "Plan:\ntyped offline", "Ada sees them too");
        // The old id was not made again by her return: it still points to the new one.
        Assert.Equal(newId, (await ProblemAsync(oldId)).GetProperty("movedTo").GetString());
    }

    [Fact]
    public async Task TheHomePageRenamesAndDeletesPerRowAndAMemberOfADeletedDocumentIsToldWhy()
    {
        var oldId = NewDocId("list-old");
        var newId = NewDocId("list-new");
        await fixture.PutAsync(oldId, "listed text");
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, fixture.BaseUrl, oldId, "Grace Hopper", GraceColor);
        await using var home = await EditorPage.OpenAsync(fixture.Browser, $"{fixture.BaseUrl}/", "Ada Lovelace", AdaColor);
        var page = home.Page;
        await Expect.EventuallyAsync(async () => await page.Locator("#doc-list").GetAttributeAsync("aria-busy") == "false", "the list is shown");

        // Rename from the list: the row is renamed, Grace (who has it open) is taken to the new id.
        await page.Locator($"button[aria-label='Rename {oldId}']").ClickAsync();
        Assert.Equal(oldId, await page.Locator("#rename-name").InputValueAsync());
        await page.Locator("#rename-name").FillAsync(newId);
        await page.Locator("#rename-confirm").ClickAsync();
        await Expect.EventuallyAsync(async () => await page.Locator("#list-message").InnerTextAsync() == $"“{oldId}” was renamed to “{newId}”; links to “{oldId}” lead there.", "the list says it was renamed");
        Assert.True(await page.Locator("#rename-dialog").IsHiddenAsync(), "the dialog closed");
        await Expect.EventuallyAsync(async () =>
        {
            var listed = await page.Locator("#doc-list").InnerTextAsync();
            return listed.Contains(newId, StringComparison.Ordinal) && !listed.Contains(oldId, StringComparison.Ordinal);
        }, "the list shows the new name instead of the old one");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(TestArtifacts.Dir(), "list-renamed.png") });
        Assert.Equal("listed text", (await fixture.Http.GetFromJsonAsync<JsonElement>($"/api/docs/{newId}")).GetProperty("text").GetString());
        Assert.Equal(newId, (await ProblemAsync(oldId)).GetProperty("movedTo").GetString());
        await grace.Page.WaitForURLAsync($"{fixture.BaseUrl}/d/{newId}");
        await grace.Page.WaitForFunctionAsync(Connected);

        // Delete from the list asks first; Cancel keeps it.
        await page.Locator($"button[aria-label='Delete {newId}']").ClickAsync();
        Assert.Contains($"“{newId}” and its history are removed for everyone", await page.Locator("#delete-dialog-text").InnerTextAsync());
        await page.Locator("#delete-cancel").ClickAsync();
        Assert.True(await page.Locator("#delete-dialog").IsHiddenAsync());
        Assert.Equal(HttpStatusCode.OK, (await fixture.Http.GetAsync($"/api/docs/{newId}")).StatusCode);

        // Confirmed: gone from the list and the server; Grace, who has it open, is told in words.
        await page.Locator($"button[aria-label='Delete {newId}']").ClickAsync();
        await page.Locator("#delete-confirm").ClickAsync();
        await Expect.EventuallyAsync(async () => await page.Locator("#list-message").InnerTextAsync() == $"“{newId}” was deleted.", "the list says it was deleted");
        Assert.DoesNotContain(newId, await page.Locator("#doc-list").InnerTextAsync());
        await Expect.EventuallyAsync(async () =>
            await grace.Page.Locator("#banner-text").InnerTextAsync() == $"“{newId}” was deleted by someone: its text is no longer on the server, so this page now shows it empty. Typing here creates it again.",
            "Grace's page says the document was deleted");
        await Expect.EventuallyAsync(async () => await grace.TextAsync() == "", "Grace's page shows what the server has: nothing");
        Assert.Empty(grace.ConsoleErrors);
        AssertOnlyTheFreeNameCheck(home, fixture.BaseUrl, newId);
    }
}
