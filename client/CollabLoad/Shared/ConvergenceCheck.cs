using System.Diagnostics;

namespace CollabLoad;

/// <summary>
/// The end-of-run check: once every client has its edits acknowledged, every client of every
/// document must hold exactly the text (rich text: the delta) that <c>GET /api/docs/{id}</c>
/// returns, at its version.
/// </summary>
public static class ConvergenceCheck
{
    public sealed record Outcome(int Documents, int Clients, int Divergent, List<string> Problems);

    public static async Task<Outcome> RunAsync(IReadOnlyList<DocGroup> groups, ServerProbe probe, TimeSpan timeout)
    {
        var problems = new List<string>();
        var deadline = Stopwatch.StartNew();
        // 1. Every local edit acknowledged (so the server's version below is final).
        var clients = groups.SelectMany(g => g.Members).ToList();
        var sync = Task.WhenAll(clients.Select(c => c.WhenSynchronizedAsync()));
        try
        {
            await sync.WaitAsync(timeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            problems.Add($"{clients.Count(c => c.HasUnconfirmedChanges)} clients still had unacknowledged edits after {timeout.TotalSeconds:0} s");
        }

        // 2. Every client at the server's version with the server's text.
        var divergent = 0;
        foreach (var group in groups)
        {
            var server = await probe.GetDocumentAsync(group.DocId).ConfigureAwait(false);
            var expectedText = server?.Text ?? "";
            var expectedDelta = server?.Delta ?? Collab.Ot.Delta.Empty;
            var expectedVersion = server?.Version ?? 0;
            var bad = false;
            foreach (var member in group.Members)
            {
                while (member.Version < expectedVersion && deadline.Elapsed < timeout)
                {
                    await Task.Delay(20).ConfigureAwait(false);
                }
                var version = member.Version;
                if (version != expectedVersion)
                {
                    problems.Add($"{group.DocId}: client {member.ClientId} is at version {version}, the server at {expectedVersion}");
                    bad = true;
                    continue;
                }
                if (member.Rich is { } rich ? !rich.Delta.Equals(expectedDelta) : !string.Equals(member.Document!.Text, expectedText, StringComparison.Ordinal))
                {
                    problems.Add($"{group.DocId}: client {member.ClientId} holds a different text at version {version} ({member.Length} vs {expectedText.Length} code units)");
                    bad = true;
                }
            }
            if (bad)
            {
                divergent++;
            }
        }
        return new Outcome(groups.Count, clients.Count, divergent, problems);
    }
}
