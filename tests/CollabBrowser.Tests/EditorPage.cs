using System.Diagnostics;
using System.Text.Json;
using Microsoft.Playwright;

namespace CollabBrowser.Tests;

/// <summary>One person's browser tab on <c>/d/{docId}</c>: its own context (own storage, own name and color).</summary>
public sealed class EditorPage : IAsyncDisposable
{
    /// <summary>For every wait in a page: a busy machine with Chromium and several servers on 2 cores is slow, never stuck.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(90);

    private readonly IBrowserContext _context;
    private readonly bool _ownsContext;
    private readonly List<string> _consoleErrors = [];

    private EditorPage(IBrowserContext context, IPage page, string name, bool ownsContext = true)
    {
        _context = context;
        _ownsContext = ownsContext;
        Page = page;
        Name = name;
        page.Console += (_, message) =>
        {
            if (message.Type is "error")
            {
                // Chromium's "Failed to load resource" names no URL in its text: add the request's.
                var text = message.Text.StartsWith("Failed to load resource", StringComparison.Ordinal) && message.Location is { Length: > 0 } url
                    ? $"{message.Text} ({url})"
                    : message.Text;
                lock (_consoleErrors)
                {
                    _consoleErrors.Add(text);
                }
            }
        };
        page.PageError += (_, error) =>
        {
            lock (_consoleErrors)
            {
                _consoleErrors.Add($"uncaught: {error}");
            }
        };
    }

    public IPage Page { get; }

    public string Name { get; }

    /// <summary>
    /// Whether a console error is the hub connection's own network failure: Chromium's line for a
    /// WebSocket that could not connect, or for the request the client sends after one to learn why
    /// (a failed load of <c>/hubs/collab</c> on <paramref name="server"/>, or any server when null).
    /// </summary>
    public static bool IsHubConnectionFailure(string error, Uri? server = null) =>
        error.StartsWith("WebSocket connection to '" + (server is null ? "" : server.AbsoluteUri.Replace("http:", "ws:", StringComparison.Ordinal)), StringComparison.Ordinal) && error.Contains("/hubs/collab", StringComparison.Ordinal)
        || error.StartsWith("Failed to load resource: net::ERR_", StringComparison.Ordinal) && error.Contains("(" + (server?.AbsoluteUri ?? "http"), StringComparison.Ordinal) && error.Contains("/hubs/collab", StringComparison.Ordinal);

    /// <summary>Errors the page wrote to its console, and uncaught exceptions.</summary>
    public IReadOnlyList<string> ConsoleErrors
    {
        get
        {
            lock (_consoleErrors)
            {
                return [.. _consoleErrors];
            }
        }
    }

    /// <summary>Opens a new tab as the user <paramref name="name"/> (remembered in its storage, as the page does) at <paramref name="url"/>.</summary>
    public static async Task<EditorPage> OpenAsync(IBrowser browser, string url, string name, string color)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1280, Height = 760 },
            DeviceScaleFactor = 1,
        });
        var user = JsonSerializer.Serialize(new { name, color });
        // Only on the first visit: a name changed in the page must survive a reload, as it does for a person.
        await context.AddInitScriptAsync($"if (!localStorage.getItem('collab.user')) localStorage.setItem('collab.user', {JsonSerializer.Serialize(user)});");
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout((float)Timeout.TotalMilliseconds);
        var editor = new EditorPage(context, page, name);
        await page.GotoAsync(url);
        return editor;
    }

    /// <summary>Opens the editor on <paramref name="docId"/> and waits until it shows the document.</summary>
    public static async Task<EditorPage> OpenDocumentAsync(IBrowser browser, string baseUrl, string docId, string name, string color)
    {
        var editor = await OpenAsync(browser, $"{baseUrl}/d/{docId}", name, color);
        try
        {
            await editor.Page.WaitForFunctionAsync("() => window.collab && window.collab.view && window.collab.client.status === 'connected'");
        }
        catch (TimeoutException timeout)
        {
            // Say what the page was doing instead.
            var state = await editor.Page.EvaluateAsync<string>("() => JSON.stringify({ status: window.collab?.client?.status, text: document.querySelector('#status-text')?.innerText, banner: document.querySelector('[role=alert]')?.innerText })");
            throw new TimeoutException($"{name}'s page on {baseUrl}/d/{docId} did not connect: {state}; console: {string.Join(" | ", editor.ConsoleErrors)}", timeout);
        }
        return editor;
    }

    /// <summary>
    /// Opens <paramref name="docId"/> in another tab of this person's browser (the same storage:
    /// IndexedDB, localStorage) and waits until it shows the document (<paramref name="shown"/>, a
    /// page function; the text editor by default). Disposing it closes the tab only.
    /// </summary>
    public async Task<EditorPage> NewTabAsync(string baseUrl, string docId, string shown = "() => window.collab && window.collab.view")
    {
        var page = await _context.NewPageAsync();
        page.SetDefaultTimeout((float)Timeout.TotalMilliseconds);
        var tab = new EditorPage(_context, page, Name, ownsContext: false);
        await page.GotoAsync($"{baseUrl}/d/{docId}");
        await page.WaitForFunctionAsync(shown);
        return tab;
    }

    /// <summary>Crashes the tab's renderer, as a killed tab or a crash does: no unload handler runs.</summary>
    public async Task CrashAsync()
    {
        var crashed = new TaskCompletionSource();
        Page.Crash += (_, _) => crashed.TrySetResult();
        var cdp = await _context.NewCDPSessionAsync(Page);
        // The answer never comes: the renderer is gone.
        _ = cdp.SendAsync("Page.crash").ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
        await crashed.Task.WaitAsync(Timeout);
    }

    /// <summary>The editor's text.</summary>
    public Task<string> TextAsync() => Page.EvaluateAsync<string>("() => window.collab.view.state.doc.toString()");

    /// <summary>Local edits not yet confirmed by the server.</summary>
    public Task<int> PendingEditsAsync() => Page.EvaluateAsync<int>("() => window.collab.doc.pendingEdits");

    /// <summary>The connection state shown in the header.</summary>
    public Task<string> StatusAsync() => Page.Locator("#status-text").InnerTextAsync();

    /// <summary>Puts the cursor at <paramref name="position"/> and focuses the editor.</summary>
    public Task SetCursorAsync(int position) =>
        Page.EvaluateAsync("p => { const v = window.collab.view; v.focus(); v.dispatch({ selection: { anchor: p } }); }", position);

    /// <summary>Types like a person: one key at a time.</summary>
    public Task TypeAsync(string text, int delayMs = 10) => Page.Keyboard.TypeAsync(text, new KeyboardTypeOptions { Delay = delayMs });

    /// <summary>Waits until every local edit is confirmed and the page shows it.</summary>
    public async Task WaitSynchronizedAsync()
    {
        await Page.WaitForFunctionAsync("() => window.collab.doc.synchronized && window.collab.client.status === 'connected'");
        await Expect.EventuallyAsync(async () => await Page.Locator("#saved").InnerTextAsync() == "All changes saved", $"{Name}'s page says all changes are saved");
    }

    public async ValueTask DisposeAsync()
    {
        if (_ownsContext)
        {
            await _context.CloseAsync();
        }
        else
        {
            await Page.CloseAsync();
        }
    }
}

/// <summary>Waiting for a condition with a deadline, failing with what was last seen.</summary>
public static class Expect
{
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? EditorPage.Timeout;
        while (true)
        {
            if (await condition())
            {
                return;
            }
            if (deadline.Elapsed > limit)
            {
                Assert.Fail($"Timed out after {limit.TotalSeconds:0} s waiting until {what}.");
            }
            await Task.Delay(25);
        }
    }

    /// <summary>Whether the characters of <paramref name="part"/> appear in <paramref name="text"/> in order (others may sit between them).</summary>
    public static bool IsSubsequence(string part, string text)
    {
        var i = 0;
        foreach (var ch in text)
        {
            if (i < part.Length && part[i] == ch)
            {
                i++;
            }
        }
        return i == part.Length;
    }

    /// <summary>How many times <paramref name="part"/> occurs in <paramref name="text"/>.</summary>
    public static int Count(string text, string part)
    {
        var count = 0;
        for (var i = text.IndexOf(part, StringComparison.Ordinal); i >= 0; i = text.IndexOf(part, i + part.Length, StringComparison.Ordinal))
        {
            count++;
        }
        return count;
    }

    /// <summary>The first 200 characters, for failure messages.</summary>
    public static string Show(string text) => text.Length <= 200 ? JsonSerializer.Serialize(text) : JsonSerializer.Serialize(text[..200]) + $"… ({text.Length} chars)";
}
