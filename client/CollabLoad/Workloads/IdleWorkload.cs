namespace CollabLoad.Workloads;

/// <summary>
/// <c>idle</c>: N connected, joined, silent clients over D documents. Measures the time to
/// connect and join, and the server's resident memory per connection (from /proc, so the server
/// must run on this machine with a known PID). RSS is read at three points: after a warm-up
/// (the baseline), after one client per document (the documents' own cost), and after all N
/// (the connections' cost); both the overall and the marginal per-connection figures are given.
/// </summary>
public static class IdleWorkload
{
    public static async Task RunAsync(LoadSession session)
    {
        var options = session.Options;
        var connections = Math.Max(1, options.Connections ?? 10_000);
        var docs = Math.Clamp(options.Docs ?? 1_000, 1, connections);
        var result = session.Result;
        result.Parameters["connections"] = connections.ToString();
        result.Parameters["docs"] = docs.ToString();
        if (session.Probe.RssBytes() is null)
        {
            result.Notes.Add("server RSS not measured: give --server-pid or --server-dll (the server must run on this machine)");
        }

        // Warm-up: the server's first connections and joins load code and grow pools that the
        // baseline should already include.
        var warm = await session.OpenGroupsAsync(Enumerable.Range(0, 10).Select(i => ($"{options.DocPrefix}-idlewarm-{i}", 5)).ToList()).ConfigureAwait(false);
        await session.CloseAsync(warm).ConfigureAwait(false);
        var rss0 = await SettledRssAsync(session).ConfigureAwait(false);
        var metrics0 = await session.Probe.MetricsAsync().ConfigureAwait(false);

        var openTimes = new LatencyRecorder();
        var documents = Enumerable.Range(0, docs).Select(d => ($"{options.DocPrefix}-idle-{d}", 1)).ToList();
        var started = System.Diagnostics.Stopwatch.StartNew();
        var groups = await session.OpenGroupsAsync(documents, openTimes).ConfigureAwait(false);
        var rss1 = await SettledRssAsync(session).ConfigureAwait(false);

        // The rest, spread evenly over the same documents.
        var rest = Enumerable.Range(0, docs).Select(d => (documents[d].Item1, (connections - docs) / docs + (d < (connections - docs) % docs ? 1 : 0))).ToList();
        var openStarted = System.Diagnostics.Stopwatch.StartNew();
        await session.OpenGroupsAsync(rest, openTimes, firstClient: docs, into: groups).ConfigureAwait(false);
        var openSeconds = openStarted.Elapsed.TotalSeconds;
        var total = started.Elapsed.TotalSeconds;
        foreach (var group in groups)
        {
            group.Seal(track: false);
        }
        Console.WriteLine($"{connections} clients joined in {total:0.0} s; holding them for {options.Duration.TotalSeconds:0} s");
        await Task.Delay(options.Duration).ConfigureAwait(false);
        var rss2 = await SettledRssAsync(session).ConfigureAwait(false);
        var metrics2 = await session.Probe.MetricsAsync().ConfigureAwait(false);

        var connected = groups.SelectMany(g => g.Members).Count(m => m.ConnectionState == Collab.Client.ConnectionState.Connected);
        result.Add("connected", connected);
        if (connected < connections)
        {
            result.Errors.Add($"{connections - connected} of {connections} clients were not connected at the end");
        }
        result.AddLatency("connect_", openTimes.Total());
        result.Add("connect_per_s", (connections - docs) / openSeconds);
        if (rss0 is long r0 && rss1 is long r1 && rss2 is long r2)
        {
            result.Add("rss_baseline", r0);
            result.Add("rss_end", r2);
            result.Add("rss_per_conn", (r2 - r0) / (double)connections);
            result.Add("rss_marginal_per_conn", connections > docs ? (r2 - r1) / (double)(connections - docs) : double.NaN);
            result.Add("rss_per_doc_with_first_conn", (r1 - r0) / (double)docs);
        }
        // Where the memory is, from the server's runtime metrics when it has them (as of its last GC).
        foreach (var (metric, name) in new[]
        {
            ("dotnet_gc_last_collection_heap_size_bytes", "gc_heap_per_conn"),
            ("dotnet_gc_last_collection_memory_committed_size_bytes", "gc_committed_per_conn"),
        })
        {
            if (ServerProbe.Sum(metrics0, metric) is double before && ServerProbe.Sum(metrics2, metric) is double after)
            {
                result.Add(name, (after - before) / connections);
            }
        }
        var harness = System.Diagnostics.Process.GetCurrentProcess();
        harness.Refresh();
        result.Add("harness_rss_per_conn", harness.WorkingSet64 / (double)connections);

        await session.CheckAsync(groups).ConfigureAwait(false);
        await session.CloseAsync(groups).ConfigureAwait(false);
    }

    /// <summary>RSS once it has stopped moving (a GC or a pool trim can lag the last connection by a moment).</summary>
    private static async Task<long?> SettledRssAsync(LoadSession session)
    {
        long? last = null;
        for (var i = 0; i < 10; i++)
        {
            await Task.Delay(500).ConfigureAwait(false);
            var rss = session.Probe.RssBytes();
            if (rss is null || (last is long l && Math.Abs(rss.Value - l) < 256 * 1024))
            {
                return rss;
            }
            last = rss;
        }
        return last;
    }
}
