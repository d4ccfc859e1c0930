using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;

using static CollabBrowser.Tests.BrowserFixture;

namespace CollabBrowser.Tests;

/// <summary>
/// The history panel of the editor page (PROTOCOL §7 from the browser): the grouped history,
/// an old version shown read-only with what changed since highlighted, the slider, restoring for
/// everyone, the keyboard, and a refused restore shown in the panel.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class HistoryPanelTests(BrowserFixture fixture, ITestOutputHelper output)
{
    private string BaseUrl => fixture.BaseUrl;

    private async Task<(int Version, string Text)> ServerAsync(string docId)
    {
        using var json = JsonDocument.Parse(await fixture.Http.GetStringAsync($"/api/docs/{docId}"));
        return (json.RootElement.GetProperty("version").GetInt32(), json.RootElement.GetProperty("text").GetString()!);
    }

    private static Task<string> FocusedAsync(EditorPage page) =>
        page.Page.EvaluateAsync<string>("() => { const e = document.activeElement; return e ? (e.id || e.dataset.version && 'entry-' + e.dataset.version || e.className || e.tagName) : ''; }");

    /// <summary>Presses <paramref name="key"/> until the focused element is <paramref name="target"/> (at most 30 times).</summary>
    private static async Task PressUntilFocusedAsync(EditorPage page, string key, string target)
    {
        var seen = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var focused = await FocusedAsync(page);
            if (focused == target)
            {
                return;
            }
            seen.Add(focused);
            await page.Page.Keyboard.PressAsync(key);
        }
        Assert.Fail($"{key} never reached {target}; focus went through {string.Join(", ", seen)}");
    }

    private static Task<int?> ShownVersionAsync(EditorPage page) => page.Page.EvaluateAsync<int?>("() => window.collab.history.version ?? null");

    private static Task<string?> ShownTextAsync(EditorPage page) => page.Page.EvaluateAsync<string?>("() => window.collab.history.view?.state.doc.toString() ?? null");

    [Fact]
    public async Task AnOldVersionIsChosenWithTheKeyboardShownReadOnlyWithTheChangesSinceAndRestoredForEveryone()
    {
        var docId = NewDocId("plan");
        var v1 = "# Launch plan\n\n- Write the announcement\n";
        var v2 = "# Launch plan\n\n- Write the announcement\n- Book the room for Friday\n";
        await fixture.PutAsync(docId, v1);
        await fixture.PutAsync(docId, v2);
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, BaseUrl, docId, "Ada Lovelace", AdaColor);
        await using var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, BaseUrl, docId, "Grace Hopper", GraceColor);

        // Ada changes a line and adds one; Grace adds another: versions 3 and later, by two people.
        var room = v2.IndexOf("room for Friday", StringComparison.Ordinal);
        await ada.Page.EvaluateAsync("([from, to]) => { const v = window.collab.view; v.focus(); v.dispatch({ selection: { anchor: from, head: to } }); }", new[] { room, room + "room for Friday".Length });
        await ada.TypeAsync("big hall for Thursday");
        await ada.Page.Keyboard.PressAsync("Control+End");
        await ada.TypeAsync("- Send the invitations\n");
        await ada.WaitSynchronizedAsync();
        await grace.Page.Keyboard.PressAsync("Control+End");
        await grace.TypeAsync("- Order the cake\n");
        await grace.WaitSynchronizedAsync();
        var (before, now) = (0, "");
        await Expect.EventuallyAsync(async () =>
        {
            (before, now) = await ServerAsync(docId);
            return now.EndsWith("- Order the cake\n", StringComparison.Ordinal) && await ada.TextAsync() == now;
        }, $"Ada's page has Grace's line (server: {Expect.Show(now)})");
        Assert.Contains("big hall for Thursday", now);

        // Open the history with the keyboard: Tab to the button, Enter.
        await ada.Page.EvaluateAsync("() => document.activeElement.blur()");
        await PressUntilFocusedAsync(ada, "Tab", "history-toggle");
        await ada.Page.Keyboard.PressAsync("Enter");
        var panel = ada.Page.Locator("#history-panel");
        await panel.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
        Assert.Equal("true", await ada.Page.Locator("#history-toggle").GetAttributeAsync("aria-expanded"));
        var entries = ada.Page.Locator(".history-entry");
        await Expect.EventuallyAsync(async () => await entries.CountAsync() >= 4, "the panel lists the history");
        var listed = await entries.AllInnerTextsAsync();
        output.WriteLine(string.Join(" | ", listed.Select(t => t.ReplaceLineEndings(" "))));
        Assert.Contains("Grace Hopper", listed[0]);
        Assert.Contains(listed, t => t.Contains("Ada Lovelace (you)", StringComparison.Ordinal));
        Assert.Contains("Replaced through the API", listed[^1]); // the first PUT, labelled for what it was
        Assert.Contains("version 1", listed[^1]);

        // Focus went to the newest entry; the arrow keys reach version 2 (the second PUT), Enter shows it.
        await Expect.EventuallyAsync(async () => (await FocusedAsync(ada)).StartsWith("entry-", StringComparison.Ordinal), "the newest entry has the focus");
        await PressUntilFocusedAsync(ada, "ArrowDown", "entry-2");
        await ada.Page.Keyboard.PressAsync("Enter");
        await Expect.EventuallyAsync(async () => await ShownVersionAsync(ada) == 2, "version 2 is shown");
        Assert.Equal(v2, await ShownTextAsync(ada));
        Assert.True(await ada.Page.Locator("#editor").IsHiddenAsync(), "the live editor is hidden behind the old text");
        Assert.Equal("true", await ada.Page.Locator(".history-entry[data-version='2']").GetAttributeAsync("aria-current"));

        // What changed since is highlighted: the replaced words struck out, the new words and lines added.
        Assert.Equal("room for Friday", string.Concat(await ada.Page.Locator("#past .cm-past-removed").AllInnerTextsAsync()));
        var added = string.Concat(await ada.Page.Locator("#past .cm-past-added").AllInnerTextsAsync());
        Assert.Contains("big hall for Thursday", added);
        Assert.Contains("- Send the invitations", added);
        Assert.Contains("- Order the cake", added);

        // Read-only: typing into it changes nothing, neither there nor on the server.
        await ada.Page.Locator("#past .cm-content").ClickAsync();
        await ada.Page.Keyboard.TypeAsync("typed into the past");
        await ada.Page.Keyboard.PressAsync("Backspace");
        Assert.Equal(v2, await ShownTextAsync(ada));
        Assert.Equal("false", await ada.Page.Locator("#past .cm-content").GetAttributeAsync("contenteditable"));
        Assert.Equal(now, (await ServerAsync(docId)).Text);

        var path = Path.Combine(TestArtifacts.Dir(), "history-panel.png");
        await ada.Page.Locator(".history-entry[data-version='2']").FocusAsync();
        await ada.Page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        Assert.True(new FileInfo(path).Length > 10_000, "the screenshot was written");
        output.WriteLine($"Screenshot of the history panel: {path}");

        // Edits keep arriving meanwhile: the old text stays, the highlight follows the current text.
        await grace.TypeAsync("- Balloons");
        await grace.WaitSynchronizedAsync();
        await Expect.EventuallyAsync(async () => string.Concat(await ada.Page.Locator("#past .cm-past-added").AllInnerTextsAsync()).Contains("- Balloons"), "Grace's new line is marked as added");
        Assert.Equal(v2, await ShownTextAsync(ada));
        (before, now) = await ServerAsync(docId);
        Assert.EndsWith("- Balloons", now);
        await Expect.EventuallyAsync(async () => await ada.TextAsync() == now, "Ada's hidden live editor has Grace's line");

        // Restore it, from the keyboard: Shift+Tab back to the button, Enter, then Tab from Cancel to
        // Restore in the confirmation and Enter. Both pages get it.
        await PressUntilFocusedAsync(ada, "Shift+Tab", "history-restore");
        await ada.Page.Keyboard.PressAsync("Enter");
        await ada.Page.Locator("#restore-dialog").WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
        Assert.Equal("restore-cancel", await FocusedAsync(ada));
        await ada.Page.Keyboard.PressAsync("Tab");
        Assert.Equal("restore-confirm", await FocusedAsync(ada));
        await ada.Page.Keyboard.PressAsync("Enter");
        await Expect.EventuallyAsync(async () => await grace.TextAsync() == v2, "Grace's page shows the restored text");
        await Expect.EventuallyAsync(async () => await ada.TextAsync() == v2, "Ada's live text is the restored text");
        Assert.Equal((before + 1, v2), await ServerAsync(docId));
        await Expect.EventuallyAsync(async () => (await ada.Page.Locator("#history-message").InnerTextAsync()).Contains($"as version {before + 1}"), "the panel says it restored");
        await Expect.EventuallyAsync(async () => (await entries.First.InnerTextAsync()).Contains("Restored"), "the restore is the newest entry, labelled as one");
        Assert.True(await ada.Page.Locator("#history-error").IsHiddenAsync());

        // The slider, by the keyboard: Home is version 0 (empty), End the current version.
        await PressUntilFocusedAsync(ada, "Shift+Tab", "history-slider");
        await ada.Page.Keyboard.PressAsync("Home");
        await Expect.EventuallyAsync(async () => await ShownVersionAsync(ada) == 0 && await ShownTextAsync(ada) == "", "version 0 is shown");
        await ada.Page.Keyboard.PressAsync("End");
        await Expect.EventuallyAsync(async () => await ShownVersionAsync(ada) == before + 1 && await ShownTextAsync(ada) == v2, "the current version is shown");
        Assert.Equal(0, await ada.Page.Locator("#past .cm-past-added, #past .cm-past-removed").CountAsync());

        // Escape closes the panel and returns to the live editor; the focus goes back to the button.
        await ada.Page.Keyboard.PressAsync("Escape");
        await panel.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Hidden });
        Assert.True(await ada.Page.Locator("#editor").IsVisibleAsync());
        Assert.True(await ada.Page.Locator("#past").IsHiddenAsync());
        Assert.Equal("history-toggle", await FocusedAsync(ada));
        Assert.Equal("false", await ada.Page.Locator("#history-toggle").GetAttributeAsync("aria-expanded"));

        // The live editor still edits, for both.
        await ada.Page.Keyboard.PressAsync("Escape");
        await ada.SetCursorAsync(0);
        await ada.TypeAsync("Restored. ");
        await ada.WaitSynchronizedAsync();
        await Expect.EventuallyAsync(async () => await grace.TextAsync() == "Restored. " + v2, "Grace sees Ada's edit after the restore");
        Assert.Empty(ada.ConsoleErrors);
        Assert.Empty(grace.ConsoleErrors);
    }

    [Fact]
    public async Task HistoryNamesAMemberWhoLeftBeforeThePageOpened()
    {
        var docId = NewDocId("left");
        await fixture.PutAsync(docId, "Agenda\n");
        await using (var grace = await EditorPage.OpenDocumentAsync(fixture.Browser, BaseUrl, docId, "Grace Hopper", GraceColor))
        {
            await grace.Page.Keyboard.PressAsync("Control+End");
            await grace.TypeAsync("- Compilers\n");
            await grace.WaitSynchronizedAsync();
        }
        // Ada's page never saw Grace: only the server can name her.
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, BaseUrl, docId, "Ada Lovelace", AdaColor);
        await ada.Page.Locator("#history-toggle").ClickAsync();
        var entries = ada.Page.Locator(".history-entry");
        await Expect.EventuallyAsync(async () => await entries.CountAsync() >= 2, "the panel lists the history");
        var listed = await entries.AllInnerTextsAsync();
        output.WriteLine(string.Join(" | ", listed.Select(t => t.ReplaceLineEndings(" "))));
        Assert.Contains("Grace Hopper", listed[0]);
        Assert.Contains("Replaced through the API", listed[^1]);
    }

    [Fact]
    public async Task ThePanelOpensAtTheCurrentVersionAndARestoreAsksFirstCancelDoesNothingAndRestoreRestores()
    {
        var docId = NewDocId("steps");
        await fixture.PutAsync(docId, "first");
        await fixture.PutAsync(docId, "second");
        await fixture.PutAsync(docId, "third");
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, BaseUrl, docId, "Ada Lovelace", AdaColor);
        var restores = 0;
        ada.Page.Request += (_, request) =>
        {
            if (request.Url.EndsWith("/restore", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref restores);
            }
        };

        // It opens on the live text, which is the current version: the slider is at its right end.
        await ada.Page.Locator("#history-toggle").ClickAsync();
        await ada.Page.Locator(".history-entry").First.WaitForAsync();
        Assert.Equal("Version 3 of 3", await ada.Page.Locator("#history-slider-value").InnerTextAsync());
        Assert.Equal("3", await ada.Page.Locator("#history-slider").InputValueAsync());
        Assert.Null(await ShownVersionAsync(ada));

        // Nothing to restore yet: the button is disabled and looks it (not the accent color, no pointer).
        var restore = ada.Page.Locator("#history-restore");
        Assert.True(await restore.IsDisabledAsync());
        const string Look = "e => { const s = getComputedStyle(e); return s.backgroundColor + ' ' + s.cursor; }";
        var disabledLook = await restore.EvaluateAsync<string>(Look);
        Assert.EndsWith("not-allowed", disabledLook);

        await ada.Page.Locator(".history-entry[data-version='1']").ClickAsync();
        await Expect.EventuallyAsync(async () => await ShownTextAsync(ada) == "first", "version 1 is shown");
        Assert.Equal("Version 1 of 3", await ada.Page.Locator("#history-slider-value").InnerTextAsync());
        Assert.True(await restore.IsEnabledAsync());
        var enabledLook = await restore.EvaluateAsync<string>(Look);
        Assert.EndsWith("pointer", enabledLook);
        Assert.NotEqual(disabledLook.Split(' ')[0], enabledLook.Split(' ')[0]);

        // Restore asks first, saying what it will do; Cancel does nothing.
        await restore.ClickAsync();
        var dialog = ada.Page.Locator("#restore-dialog");
        await dialog.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
        var question = await ada.Page.Locator("#restore-dialog-text").InnerTextAsync();
        Assert.StartsWith("Restore version 1 from ", question);
        Assert.EndsWith("? Everyone's text becomes that version; the current text stays in history.", question);
        var path = Path.Combine(TestArtifacts.Dir(), "history-restore-confirm.png");
        await ada.Page.ScreenshotAsync(new PageScreenshotOptions { Path = path });
        await ada.Page.Locator("#restore-cancel").ClickAsync();
        await dialog.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Hidden });
        Assert.Equal(0, Volatile.Read(ref restores));
        Assert.Equal((3, "third"), await ServerAsync(docId));
        Assert.Equal("third", await ada.TextAsync());
        Assert.Equal(1, await ShownVersionAsync(ada));

        // Esc in the confirmation cancels too.
        await restore.ClickAsync();
        await dialog.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
        await ada.Page.Keyboard.PressAsync("Escape");
        await dialog.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Hidden });
        Assert.Equal(0, Volatile.Read(ref restores));
        Assert.Equal((3, "third"), await ServerAsync(docId));

        // Restore restores, for everyone, as version 4.
        await restore.ClickAsync();
        await ada.Page.Locator("#restore-confirm").ClickAsync();
        await Expect.EventuallyAsync(async () => await ada.TextAsync() == "first", "Ada's live text is version 1's");
        Assert.Equal((4, "first"), await ServerAsync(docId));
        Assert.Equal(1, Volatile.Read(ref restores));
        Assert.Empty(ada.ConsoleErrors);
    }

    [Fact]
    public async Task ARefusedRestoreIsShownInThePanelAndChangesNothing()
    {
        var docId = NewDocId("refused");
        await fixture.PutAsync(docId, "first");
        await fixture.PutAsync(docId, "second");
        await using var ada = await EditorPage.OpenDocumentAsync(fixture.Browser, BaseUrl, docId, "Ada Lovelace", AdaColor);
        // As a server with access control answers a member without collab:admin.
        await ada.Page.RouteAsync("**/restore", route => route.FulfillAsync(new RouteFulfillOptions
        {
            Status = 403,
            ContentType = "application/problem+json",
            Body = """{"type":"forbidden","title":"Forbidden","status":403,"detail":"this needs the collab:admin grant"}""",
        }));

        await ada.Page.Locator("#history-toggle").ClickAsync();
        var entry = ada.Page.Locator(".history-entry[data-version='1']");
        await entry.ClickAsync();
        await Expect.EventuallyAsync(async () => await ShownTextAsync(ada) == "first", "version 1 is shown");
        await ada.Page.Locator("#history-restore").ClickAsync();
        await ada.Page.Locator("#restore-confirm").ClickAsync();
        var error = ada.Page.Locator("#history-error");
        await error.WaitForAsync(new LocatorWaitForOptions { State = WaitForSelectorState.Visible });
        Assert.Equal("You may not restore: this needs the collab:admin grant", await error.InnerTextAsync());
        Assert.Equal((2, "second"), await ServerAsync(docId));
        Assert.Equal("second", await ada.TextAsync());
        // Chromium logs the refused request itself; nothing else may be in the console.
        Assert.DoesNotContain(ada.ConsoleErrors, e => !e.Contains("403", StringComparison.Ordinal));
    }
}
