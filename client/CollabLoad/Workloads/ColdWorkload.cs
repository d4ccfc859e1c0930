using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Collab.Client;
using Collab.Ot;

namespace CollabLoad.Workloads;

/// <summary>
/// <c>cold</c>: documents with H ops of history, opened after a server restart: the time from
/// Join to the text being in the client. Two phases: <c>prepare</c> builds the histories through
/// the hub (<see cref="HistoryBuilder"/>); <c>measure</c> opens each document once, one after
/// another, on a connection that is already up, so each figure is one cold load plus one round
/// trip. With <c>--server-dll</c> the harness runs both and restarts the server between them
/// (SIGTERM, or SIGKILL with <c>--kill</c>); otherwise run <c>--phase prepare</c>, restart the
/// server, and run <c>--phase measure</c> with the same <c>--doc-prefix</c>.
/// </summary>
/// <remarks>
/// Preparing runs the server with synchronous=OFF and no rate limit (arguments added by the
/// harness), because it is setup, not the measurement; the measured server runs as configured.
/// </remarks>
public static class ColdWorkload
{
    /// <summary>Server arguments for the preparation phase only.</summary>
    public static readonly string[] PrepareArgs = ["--Collab:OpsPerSecond=1000000000", "--Collab:OpsBurst=1000000000"];
    public const string PrepareSync = "Off";

    public static async Task RunAsync(LoadSession session)
    {
        var options = session.Options;
        var docs = Math.Max(1, options.Docs ?? 20);
        var history = options.History;
        var result = session.Result;
        result.Parameters["docs"] = docs.ToString(CultureInfo.InvariantCulture);
        result.Parameters["history"] = history.ToString(CultureInfo.InvariantCulture);
        result.Parameters["phase"] = options.Phase;
        result.Parameters["restart"] = options.Kill ? "SIGKILL" : "SIGTERM";
        var ids = Enumerable.Range(0, docs).Select(i => $"{options.DocPrefix}-cold-{i}").ToList();
        var expected = new Dictionary<string, (int Version, Rope Text)>();

        if (options.Phase is "all" or "prepare")
        {
            var started = Stopwatch.StartNew();
            var done = 0;
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(30));
            // Two at a time: one per core; the server's per-op work is what limits this.
            await Parallel.ForEachAsync(ids.Select((id, i) => (id, i)), new ParallelOptions { MaxDegreeOfParallelism = 2, CancellationToken = timeout.Token }, async (doc, ct) =>
            {
                var built = await HistoryBuilder.BuildAsync(session.UrlFor(doc.i), doc.id, history, options.Seed + doc.i, ct).ConfigureAwait(false);
                lock (expected)
                {
                    expected[doc.id] = built;
                }
                var n = Interlocked.Increment(ref done);
                if (!options.Quiet)
                {
                    Console.WriteLine($"{started.Elapsed.TotalSeconds,5:0}s  prepared {n}/{docs}: {doc.id} at version {built.Version}, {built.Text.Length} code units");
                }
            }).ConfigureAwait(false);
            result.Add("prepare_s", started.Elapsed.TotalSeconds);
            result.Add("prepare_ops_per_s", (double)docs * history / started.Elapsed.TotalSeconds);
        }

        if (options.Phase == "all")
        {
            Console.WriteLine($"restarting the server ({(options.Kill ? "SIGKILL" : "SIGTERM")})");
            await session.StopServerAsync(options.Kill).ConfigureAwait(false);
            await session.StartServerAsync(options.ServerArgs, options.Sync).ConfigureAwait(false);
            result.Parameters["url"] = string.Join(",", session.Urls);
            result.Parameters["server_pid"] = session.Probe.Pid?.ToString(CultureInfo.InvariantCulture) ?? "unknown";
        }
        if (options.Phase is "all" or "measure")
        {
            await MeasureAsync(session, ids, expected).ConfigureAwait(false);
        }
    }

    private static async Task MeasureAsync(LoadSession session, List<string> ids, Dictionary<string, (int Version, Rope Text)> expected)
    {
        var options = session.Options;
        var result = session.Result;
        var firstText = new LatencyRecorder();
        var rest = new LatencyRecorder();
        await using var client = new CollabClient(new CollabClientOptions { ServerUrl = session.UrlFor(0), Protocol = options.Protocol });
        // Connected and warm before the clock starts: the figure is the document's load, not the connect.
        await using (await client.OpenAsync($"{options.DocPrefix}-coldwarm").ConfigureAwait(false))
        {
        }
        var opened = new List<CollabDocument>();
        try
        {
            foreach (var id in ids)
            {
                var started = Stopwatch.GetTimestamp();
                var document = await client.OpenAsync(id).ConfigureAwait(false);
                var micros = LatencyRecorder.ToMicros(Stopwatch.GetTimestamp() - started);
                firstText.Record(micros, inWindow: true);
                opened.Add(document);
                if (!options.Quiet)
                {
                    Console.WriteLine($"  {id}: version {document.Version}, {document.Length} code units, first text in {micros / 1000.0:0.0} ms");
                }
                if (document.Version == 0)
                {
                    result.Errors.Add($"{id} is empty after the restart: was it prepared (same --doc-prefix and --data-dir)?");
                }
            }
            result.AddLatency("first_text_", firstText.Total());

            // The same documents again over REST, now loaded: the cost of the round trip and the text alone.
            var check = 0;
            foreach (var document in opened)
            {
                var started = Stopwatch.GetTimestamp();
                var server = await session.Probe.GetDocumentAsync(document.DocId).ConfigureAwait(false);
                rest.Record(LatencyRecorder.ToMicros(Stopwatch.GetTimestamp() - started), inWindow: true);
                var ok = server is not null && server.Version == document.Version && server.Text == document.Text;
                if (expected.TryGetValue(document.DocId, out var built))
                {
                    ok &= built.Version == document.Version && built.Text.ToString() == document.Text;
                }
                if (!ok)
                {
                    result.Divergences.Add($"{document.DocId}: client version {document.Version}, server {server?.Version}, prepared {(expected.TryGetValue(document.DocId, out var b) ? b.Version : -1)}; texts differ");
                }
                check++;
            }
            var warmGet = rest.Total();
            result.Add("warm_get_p50", warmGet.P50);
            result.Add("warm_get_max", warmGet.Max);
            result.Add("documents", check);
            result.Add("divergent", result.Divergences.Count);
        }
        finally
        {
            foreach (var document in opened)
            {
                await document.DisposeAsync().ConfigureAwait(false);
            }
        }
        AddServerLoadTimes(session, ids);
        result.Add("errors", result.Errors.Count);
        result.ServerMetrics = await session.Probe.MetricsAsync().ConfigureAwait(false);
    }

    /// <summary>The server's own "Document X loaded ... in N ms" log lines, when the harness runs it.</summary>
    private static void AddServerLoadTimes(LoadSession session, List<string> ids)
    {
        if (session.Server?.LogPath is not { } path || !File.Exists(path))
        {
            return;
        }
        var wanted = ids.ToHashSet(StringComparer.Ordinal);
        var last = new Dictionary<string, double>(StringComparer.Ordinal);
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        using (var reader = new StreamReader(stream))
        {
            var pattern = new Regex(@"Document (\S+) loaded at version \d+ \(\d+ code units\) in ([\d.]+) ms", RegexOptions.CultureInvariant);
            while (reader.ReadLine() is { } line)
            {
                var match = pattern.Match(line);
                if (match.Success && wanted.Contains(match.Groups[1].Value))
                {
                    last[match.Groups[1].Value] = double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
                }
            }
        }
        if (last.Count > 0)
        {
            var sorted = last.Values.Order().ToList();
            session.Result.Add("server_load_p50", sorted[sorted.Count / 2]);
            session.Result.Add("server_load_max", sorted[^1]);
        }
    }
}
