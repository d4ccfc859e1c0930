using Microsoft.Playwright;
using Xunit.Abstractions;

using static CollabBrowser.Tests.BrowserFixture;

namespace CollabBrowser.Tests;

/// <summary>
/// The document page's colors and Markdown preview: two people who remembered the same color get
/// different ones in one document; a Markdown document's preview follows everyone's edits and
/// never makes HTML written in the text part of the page.
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
}
