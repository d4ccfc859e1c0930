using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit.Abstractions;

using static CollabBrowser.Tests.BrowserFixture;

namespace CollabBrowser.Tests;

/// <summary>
/// The rich-text editor (client/web/rich.ts): Quill pages on a <c>rich-text</c> document type and
/// format at once and end with the server's delta, formatting is stored, edits made offline are
/// sent once the server is back, and the home page creates a rich-text document.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class RichTextEditorTests(BrowserFixture fixture, ITestOutputHelper output)
{
    private const string Connected = "() => window.collab && window.collab.quill && window.collab.client.status === 'connected'";

    /// <summary>Creates <paramref name="docId"/> as rich text holding <paramref name="text"/>, unformatted.</summary>
    private async Task PutRichTextAsync(string docId, string text)
    {
        using var response = await fixture.Http.PutAsJsonAsync($"/api/docs/{docId}", new { type = "rich-text", delta = new[] { new { insert = text } } });
        response.EnsureSuccessStatusCode();
    }

    /// <summary>The server's document: its type and its delta, in the canonical form of <see cref="Canonical"/>.</summary>
    private async Task<(string Type, string Delta)> ServerDocumentAsync(string docId)
    {
        var json = JsonNode.Parse(await fixture.Http.GetStringAsync($"/api/docs/{docId}"))!;
        return (json["type"]?.GetValue<string>() ?? "text", Canonical(json["delta"]));
    }

    /// <summary>A delta's JSON with every object's keys sorted: <c>{insert, attributes}</c> and <c>{attributes, insert}</c> are one op.</summary>
    private static string Canonical(JsonNode? node) => Sorted(node)?.ToJsonString() ?? "null";

    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, Sorted(p.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sorted)]),
        null => null,
        _ => JsonNode.Parse(node.ToJsonString()),
    };

    /// <summary>What a page's Quill editor holds, canonical.</summary>
    private static async Task<string> QuillContentsAsync(EditorPage page) =>
        Canonical(JsonNode.Parse(await page.Page.EvaluateAsync<string>("() => JSON.stringify(window.collab.quill.getContents().ops)")));

    /// <summary>Opens a page on <paramref name="docId"/> at <paramref name="baseUrl"/> and waits until its Quill editor is connected.</summary>
    private async Task<EditorPage> OpenAsync(string baseUrl, string docId, string name, string color)
    {
        var page = await EditorPage.OpenAsync(fixture.Browser, $"{baseUrl}/d/{docId}", name, color);
        await WaitOpenAsync(page);
        return page;
    }

    private static async Task WaitOpenAsync(EditorPage page)
    {
        try
        {
            await page.Page.WaitForFunctionAsync(Connected);
        }
        catch (TimeoutException timeout)
        {
            var state = await page.Page.EvaluateAsync<string>("() => JSON.stringify({ status: window.collab?.client?.status, text: document.querySelector('#status-text')?.innerText, banner: document.querySelector('[role=alert]')?.innerText })");
            throw new TimeoutException($"{page.Name}'s rich-text page did not connect: {state}; console: {string.Join(" | ", page.ConsoleErrors)}", timeout);
        }
    }

    /// <summary>Selects <paramref name="length"/> characters at <paramref name="index"/> as its user would, focusing the editor.</summary>
    private static Task SelectAsync(EditorPage page, int index, int length = 0) =>
        page.Page.EvaluateAsync("([i, n]) => { const q = window.collab.quill; q.focus(); q.setSelection(i, n, 'user'); }", new[] { index, length });

    /// <summary>
    /// Puts the caret <paramref name="offset"/> after the start of <paramref name="anchor"/> in the
    /// text as the page holds it now, found and set in one step: a position read in one call and
    /// used in the next can be moved meanwhile by the other member's edits.
    /// </summary>
    private static Task SelectAtAsync(EditorPage page, string anchor, int offset = 0) =>
        page.Page.EvaluateAsync("""
            ([anchor, offset]) => {
              const q = window.collab.quill;
              const at = q.getText().indexOf(anchor);
              if (at < 0) throw new Error(`"${anchor}" is not in the text`);
              q.focus();
              q.setSelection(at + offset, 0, 'user');
            }
            """, new object[] { anchor, offset });

    /// <summary>Puts the caret at the end of the text (before Quill's last newline), in one step.</summary>
    private static Task SelectEndAsync(EditorPage page) =>
        page.Page.EvaluateAsync("() => { const q = window.collab.quill; q.focus(); q.setSelection(q.getLength() - 1, 0, 'user'); }");


    /// <summary>Clicks a toolbar button, as its user does: <c>bold</c>, <c>list[value=bullet]</c>, …</summary>
    private static Task ClickToolbarAsync(EditorPage page, string button) => page.Page.Locator($".ql-toolbar button.ql-{button}").ClickAsync();

    /// <summary>Makes the selected lines a header of <paramref name="level"/> with the toolbar's picker.</summary>
    private static async Task PickHeaderAsync(EditorPage page, int level)
    {
        await page.Page.Locator(".ql-toolbar .ql-header .ql-picker-label").ClickAsync();
        await page.Page.Locator($".ql-toolbar .ql-header .ql-picker-item[data-value='{level}']").ClickAsync();
    }

    /// <summary>Waits until the server and every page hold the same delta with nothing pending; returns it.</summary>
    private async Task<string> ConvergedAsync(string docId, params EditorPage[] pages)
    {
        var last = "";
        await Expect.EventuallyAsync(async () =>
        {
            last = (await ServerDocumentAsync(docId)).Delta;
            foreach (var page in pages)
            {
                if (await page.PendingEditsAsync() != 0 || await QuillContentsAsync(page) != last)
                {
                    return false;
                }
            }
            return true;
        }, $"every page's Quill holds the server's delta {last}");
        return last;
    }

    /// <summary>Whether some op of <paramref name="delta"/> carries <paramref name="attribute"/> with <paramref name="value"/>.</summary>
    private static bool HasAttribute(string delta, string attribute, JsonNode value) =>
        JsonNode.Parse(delta)!.AsArray().Any(op => op?["attributes"]?[attribute] is { } v && JsonNode.DeepEquals(v, value));

    /// <summary>The text of the ops of <paramref name="delta"/> that carry <paramref name="attribute"/>.</summary>
    private static string TextWith(string delta, string attribute) =>
        string.Concat(JsonNode.Parse(delta)!.AsArray().Where(op => op?["attributes"]?[attribute] is not null).Select(op => op!["insert"]!.GetValue<string>()));

    private static string PlainText(string delta) =>
        string.Concat(JsonNode.Parse(delta)!.AsArray().Select(op => op?["insert"]?.GetValue<string>() ?? ""));

    private static void AssertNoConsoleErrors(params EditorPage[] pages)
    {
        foreach (var page in pages)
        {
            Assert.True(page.ConsoleErrors.Count == 0, $"{page.Name}'s console: {string.Join(" | ", page.ConsoleErrors)}");
        }
    }

    [Fact]
    public async Task TwoPagesTypingAndFormattingOverlappingTextAtOnceEndWithTheServersDelta()
    {
        var docId = NewDocId("rich-both");
        await PutRichTextAsync(docId, "Shared title\nThe first paragraph of text.\nThe second paragraph of text.\n");
        await using var ada = await OpenAsync(fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);
        await using var grace = await OpenAsync(fixture.BaseUrl, docId, "Grace Hopper", GraceColor);

        // Both work on the first paragraph at once: each types into it and formats a range that
        // overlaps the other's, then each formats a line the other is typing in. Where the text
        // goes is found from the text itself, which the other member is changing meanwhile.
        async Task AdaWorks()
        {
            await SelectAtAsync(ada, "The ", offset: 4);
            await ada.TypeAsync("[ada]");
            await SelectAsync(ada, 13, 12);
            await ada.Page.Keyboard.PressAsync("Control+B");
            await SelectAsync(ada, 0);
            await PickHeaderAsync(ada, 1);
            await SelectEndAsync(ada);
            await ada.TypeAsync("[ada-end]");
            await ClickToolbarAsync(ada, "list[value='bullet']");
        }

        async Task GraceWorks()
        {
            await SelectAtAsync(grace, "fir", offset: 3);
            await grace.TypeAsync("[grace]");
            await SelectAsync(grace, 15, 15);
            await grace.Page.Keyboard.PressAsync("Control+I");
            await SelectAsync(grace, 16);
            await ClickToolbarAsync(grace, "list[value='ordered']");
            await SelectAsync(grace, 2);
            await grace.TypeAsync("[g]");
        }

        await Task.WhenAll(AdaWorks(), GraceWorks());
        var delta = await ConvergedAsync(docId, ada, grace);

        var text = PlainText(delta);
        foreach (var marker in new[] { "[ada]", "[grace]", "[ada-end]", "[g]", "title", "The second paragraph of text." })
        {
            Assert.True(Expect.Count(text, marker) == 1, $"{marker} is in {JsonSerializer.Serialize(text)} {Expect.Count(text, marker)} times");
        }
        Assert.True(HasAttribute(delta, "bold", true), $"something is bold in {delta}");
        Assert.True(HasAttribute(delta, "italic", true), $"something is italic in {delta}");
        Assert.True(HasAttribute(delta, "header", 1), $"a line is a header in {delta}");
        Assert.True(HasAttribute(delta, "list", "bullet"), $"a line is in a bullet list in {delta}");
        Assert.True(HasAttribute(delta, "list", "ordered"), $"a line is in an ordered list in {delta}");
        Assert.EndsWith("\n", text, StringComparison.Ordinal);

        // Ada sees Grace's selection, with her name, in Grace's color.
        await SelectAsync(grace, 0, 6);
        var flag = ada.Page.Locator(".ql-cursor-flag", new PageLocatorOptions { HasTextString = "Grace Hopper" });
        await flag.WaitForAsync();
        Assert.Equal("rgb(0, 144, 255)", await flag.EvaluateAsync<string>("e => getComputedStyle(e).backgroundColor"));
        await SelectAsync(ada, 40);
        await grace.Page.Locator(".ql-cursor-flag", new PageLocatorOptions { HasTextString = "Ada Lovelace" }).WaitForAsync();
        var path = Path.Combine(TestArtifacts.Dir(), "rich-text-two-members.png");
        await ada.Page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        output.WriteLine($"Screenshot of two members formatting: {path}");
        AssertNoConsoleErrors(ada, grace);
    }

    [Fact]
    public async Task FormattingIsStoredAndShownAfterAReload()
    {
        var docId = NewDocId("rich-reload");
        await PutRichTextAsync(docId, "Hello world\nA heading\nplain\n");
        await using var ada = await OpenAsync(fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);

        await SelectAsync(ada, 0, 5);
        await ada.Page.Keyboard.PressAsync("Control+B");
        await SelectAsync(ada, 6, 5);
        await ada.Page.Keyboard.PressAsync("Control+I");
        await SelectAsync(ada, 14);
        await PickHeaderAsync(ada, 2);
        await SelectAsync(ada, 22, 5);
        await ClickToolbarAsync(ada, "code");
        await ada.WaitSynchronizedAsync();
        var before = await ConvergedAsync(docId, ada);

        await ada.Page.ReloadAsync();
        await WaitOpenAsync(ada);
        Assert.Equal(before, await QuillContentsAsync(ada));
        Assert.Equal("Hello", TextWith(before, "bold"));
        Assert.Equal("world", TextWith(before, "italic"));
        Assert.Equal("plain", TextWith(before, "code"));
        Assert.True(HasAttribute(before, "header", 2), $"a line is a header in {before}");
        // And the editor shows it as such.
        Assert.Equal("Hello", await ada.Page.Locator(".ql-editor strong").InnerTextAsync());
        Assert.Equal("world", await ada.Page.Locator(".ql-editor em").InnerTextAsync());
        Assert.Equal("A heading", await ada.Page.Locator(".ql-editor h2").InnerTextAsync());
        Assert.Equal("plain", await ada.Page.Locator(".ql-editor code").InnerTextAsync());
        AssertNoConsoleErrors(ada);
    }

    [Fact]
    public async Task EditsAndFormattingMadeOfflineAreSentOnceTheServerIsBack()
    {
        var docId = NewDocId("rich-offline");
        await PutRichTextAsync(docId, "Line one.\n");
        await using var proxy = new TcpProxy(new Uri(fixture.BaseUrl));
        await using var ada = await OpenAsync(proxy.Url, docId, "Ada Lovelace", AdaColor);
        await using var grace = await OpenAsync(fixture.BaseUrl, docId, "Grace Hopper", GraceColor);

        await SelectAsync(ada, 9);
        await ada.TypeAsync("[sent]");
        await ada.WaitSynchronizedAsync();

        proxy.Cut();
        await Expect.EventuallyAsync(async () => (await ada.StatusAsync()).StartsWith("Offline", StringComparison.Ordinal), "the page shows it is offline");
        await ada.TypeAsync("[typed-offline]");
        await SelectAsync(ada, 0, 4);
        await ada.Page.Keyboard.PressAsync("Control+B");
        await Expect.EventuallyAsync(async () => (await ada.StatusAsync()).Contains("unsent edit", StringComparison.Ordinal), "the page counts its unsent edits");
        Assert.Matches(@"^\d+ edits? not yet sent", await ada.Page.Locator("#saved").InnerTextAsync());

        // Meanwhile someone else edits the same document.
        await SelectAsync(grace, 0);
        await grace.TypeAsync("[grace-meanwhile]");
        await grace.WaitSynchronizedAsync();

        proxy.Restore();
        await Expect.EventuallyAsync(async () => await ada.StatusAsync() == "Connected", "the page reconnects by itself");
        await ada.WaitSynchronizedAsync();
        var delta = await ConvergedAsync(docId, ada, grace);
        Assert.Equal("[grace-meanwhile]Line one.[sent][typed-offline]\n", PlainText(delta));
        Assert.Equal("Line", TextWith(delta, "bold"));
        Assert.All(ada.ConsoleErrors, e => Assert.True(EditorPage.IsHubConnectionFailure(e), e));
        AssertNoConsoleErrors(grace);
    }

    [Fact]
    public async Task EditsATabCrashedWithOfflineAreKeptAndSentWhenTheDocumentIsOpenedAgain()
    {
        var docId = NewDocId("rich-kept");
        await PutRichTextAsync(docId, "Kept\n");
        await using var proxy = new TcpProxy(new Uri(fixture.BaseUrl));
        await using var ada = await OpenAsync(proxy.Url, docId, "Ada Lovelace", AdaColor);

        proxy.Cut();
        await Expect.EventuallyAsync(async () => (await ada.StatusAsync()).StartsWith("Offline", StringComparison.Ordinal), "the page shows it is offline");
        await SelectAsync(ada, 4);
        await ada.TypeAsync(" [typed-offline]");
        await SelectAsync(ada, 0, 4);
        await ada.Page.Keyboard.PressAsync("Control+I");
        await Expect.EventuallyAsync(
            async () => (await ada.Page.Locator("#saved").InnerTextAsync()).EndsWith("kept in this browser", StringComparison.Ordinal),
            "the page says its unsent edits are kept in this browser");
        await ada.CrashAsync();

        proxy.Restore();
        await using var again = await ada.NewTabAsync(proxy.Url, docId, Connected);
        await Expect.EventuallyAsync(
            async () => (await again.Page.Locator("#banner-text").InnerTextAsync()).StartsWith("Restored ", StringComparison.Ordinal),
            "the page says it restored the unsent edits");
        await again.WaitSynchronizedAsync();
        var delta = await ConvergedAsync(docId, again);
        Assert.Equal("Kept [typed-offline]\n", PlainText(delta));
        Assert.Equal("Kept", TextWith(delta, "italic"));
    }

    [Fact]
    public async Task TheHistoryShowsAnOldVersionAsTextAndRestoresItWithItsFormatting()
    {
        var docId = NewDocId("rich-history");
        await PutRichTextAsync(docId, "Plan\nStep one\n");
        await using var ada = await OpenAsync(fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);
        var first = await QuillContentsAsync(ada);
        await SelectAsync(ada, 0, 4);
        await ada.Page.Keyboard.PressAsync("Control+B");
        await SelectAsync(ada, 5);
        await ClickToolbarAsync(ada, "list[value='bullet']");
        await ada.WaitSynchronizedAsync();
        var formatted = await ConvergedAsync(docId, ada);
        Assert.NotEqual(first, formatted);

        await ada.Page.Locator("#history-toggle").ClickAsync();
        await ada.Page.Locator(".history-entry[data-version='1']").ClickAsync();
        await Expect.EventuallyAsync(
            async () => await ada.Page.EvaluateAsync<string?>("() => window.collab.history.view?.state.doc.toString() ?? null") == "Plan\nStep one\n",
            "version 1 is shown as its text");
        await ada.Page.Locator("#history-restore").ClickAsync();
        await ada.Page.Locator("#restore-confirm").ClickAsync();
        await Expect.EventuallyAsync(async () => (await ServerDocumentAsync(docId)).Delta == first, "the server holds version 1's delta again");
        await ada.Page.Keyboard.PressAsync("Escape");
        Assert.Equal(first, await ConvergedAsync(docId, ada));
        Assert.Equal(0, await ada.Page.Locator(".ql-editor strong").CountAsync());
        AssertNoConsoleErrors(ada);
    }

    [Fact]
    public async Task UndoTakesBackOnlyYourOwnEdits()
    {
        var docId = NewDocId("rich-undo");
        await PutRichTextAsync(docId, "Start\n");
        await using var ada = await OpenAsync(fixture.BaseUrl, docId, "Ada Lovelace", AdaColor);
        await using var grace = await OpenAsync(fixture.BaseUrl, docId, "Grace Hopper", GraceColor);

        await SelectAsync(ada, 5);
        await ada.TypeAsync("[ada]");
        await SelectAsync(ada, 0, 5);
        await ada.Page.Keyboard.PressAsync("Control+B");
        await ada.WaitSynchronizedAsync();
        // Grace types after Ada's text (once her page has it), where nothing is bold, so her typing is not.
        await Expect.EventuallyAsync(async () => PlainText(await QuillContentsAsync(grace)) == "Start[ada]\n", "Grace's page has Ada's edit");
        await SelectEndAsync(grace);
        await grace.TypeAsync("[grace]");
        await grace.WaitSynchronizedAsync();
        await Expect.EventuallyAsync(async () => PlainText(await QuillContentsAsync(ada)) == "Start[ada][grace]\n", "Ada's page has Grace's edit");

        // Ada undoes until her undo stack is empty (Quill groups what came within a second, so one
        // or two steps): her typing and her bold are taken back; Grace's edit stays.
        var steps = 0;
        while (await ada.Page.EvaluateAsync<int>("() => window.collab.quill.history.stack.undo.length") > 0)
        {
            Assert.True(++steps <= 2, "Ada's two edits take at most two undo steps");
            await ada.Page.Keyboard.PressAsync("Control+z");
        }
        Assert.True(steps >= 1, "Ada has something to undo");
        var delta = "";
        await Expect.EventuallyAsync(async () => PlainText(delta = await ConvergedAsync(docId, ada, grace)) == "Start[grace]\n", $"Ada's typing is undone (the server has {delta})");
        Assert.False(HasAttribute(delta, "bold", true), delta);
        AssertNoConsoleErrors(ada, grace);
    }

    [Fact]
    public async Task TheHomePageCreatesARichTextDocument()
    {
        await using var ada = await EditorPage.OpenAsync(fixture.Browser, fixture.BaseUrl + "/", "Ada Lovelace", AdaColor);
        var created = NewDocId("rich-home");
        await ada.Page.GetByLabel("New document").FillAsync(created);
        await ada.Page.GetByLabel("Kind of document").SelectOptionAsync("rich-text");
        await ada.Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(TestArtifacts.Dir(), "home-type-choice.png") });
        await ada.Page.GetByRole(AriaRole.Button, new PageGetByRoleOptions { Name = "Create", Exact = true }).ClickAsync();

        await Expect.EventuallyAsync(() => Task.FromResult(ada.Page.Url == $"{fixture.BaseUrl}/d/{created}"), $"the page goes to /d/{created} (it is at {ada.Page.Url})");
        await WaitOpenAsync(ada);
        await ada.TypeAsync("A new rich document");
        await SelectAsync(ada, 0);
        await PickHeaderAsync(ada, 1);
        await ada.WaitSynchronizedAsync();

        var (type, delta) = await ServerDocumentAsync(created);
        Assert.Equal("rich-text", type);
        Assert.Equal(Canonical(JsonNode.Parse("""[{"insert":"A new rich document"},{"insert":"\n","attributes":{"header":1}}]""")), delta);
        Assert.Equal(delta, await QuillContentsAsync(ada));

        // Opened again by its plain address, it is rich text still.
        await ada.Page.GotoAsync($"{fixture.BaseUrl}/d/{created}");
        await WaitOpenAsync(ada);
        Assert.Equal(delta, await QuillContentsAsync(ada));
        AssertNoConsoleErrors(ada);
    }
}
