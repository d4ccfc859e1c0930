using System.Diagnostics;

namespace CollabLoad;

/// <summary>
/// What one run shares: the options, the target (URLs, or a server the harness runs itself), the
/// counters, the probe, and the steps every load workload takes: open clients, run for the
/// warm-up and the measured window with a live line, drain, check convergence, report.
/// </summary>
public sealed class LoadSession : IAsyncDisposable
{
    private LoadSession(LoadOptions options, RunResult result)
    {
        Options = options;
        Result = result;
    }

    public LoadOptions Options { get; }
    public RunResult Result { get; }
    public RunCounters Counters { get; } = new();
    public ServerProcess? Server { get; private set; }
    public List<Uri> Urls { get; } = [];
    public ServerProbe Probe { get; private set; } = null!;

    public static async Task<LoadSession> StartAsync(LoadOptions options, RunResult result, IEnumerable<string>? serverArgs = null, string? sync = null)
    {
        var session = new LoadSession(options, result);
        if (options.ServerDll is not null)
        {
            await session.StartServerAsync(serverArgs ?? options.ServerArgs, sync ?? options.Sync).ConfigureAwait(false);
        }
        else
        {
            session.Urls.AddRange(options.Urls);
            session.Probe = new ServerProbe(session.Urls, options.ServerPid);
        }
        return session;
    }

    /// <summary>Starts (or restarts on the same port) the server the harness runs itself.</summary>
    public async Task StartServerAsync(IEnumerable<string> args, string sync)
    {
        var port = Server?.Url.Port ?? 0;
        if (Server is not null)
        {
            throw new InvalidOperationException("stop the server first");
        }
        Server = await ServerProcess.StartAsync(Options.ServerDll!, Options.DataDir!, sync, args, Options.ServerEnv, port).ConfigureAwait(false);
        Urls.Clear();
        Urls.Add(Server.Url);
        Probe?.Dispose();
        Probe = new ServerProbe(Urls, Server.Pid);
        Console.WriteLine($"server pid {Server.Pid} at {Server.Url} (sync {sync}{(args.Any() ? ", " + string.Join(' ', args) : "")}{string.Concat(Options.ServerEnv.Select(e => $", {e.Key}={e.Value}"))}); log {Server.LogPath}");
    }

    /// <summary>Stops the server the harness runs itself; returns its port for a restart.</summary>
    public async Task<int> StopServerAsync(bool kill)
    {
        var server = Server ?? throw new InvalidOperationException("the harness does not run the server (give --server-dll)");
        await server.StopAsync(kill).ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false);
        Server = null;
        return server.Url.Port;
    }

    public Uri UrlFor(int index) => Urls[index % Urls.Count];

    /// <summary>Server CPU seconds: from /proc when the PID is known, else from its metrics, else null.</summary>
    public async Task<double?> ServerCpuSecondsAsync()
    {
        if (Probe.CpuSeconds() is double cpu)
        {
            return cpu;
        }
        var metrics = await Probe.MetricsAsync().ConfigureAwait(false);
        return metrics.TryGetValue("process_cpu_seconds_total", out var fromMetrics) ? fromMetrics : null;
    }

    /// <summary>Opens each document's number of members, a bounded number at a time; records each open's time.</summary>
    public async Task<List<DocGroup>> OpenGroupsAsync(IReadOnlyList<(string DocId, int Clients)> documents, LatencyRecorder? openTimes = null, int firstClient = 0, List<DocGroup>? into = null)
    {
        var groups = into ?? documents.Select(d => new DocGroup(d.DocId)).ToList();
        var jobs = new List<(DocGroup Group, int Index)>();
        for (var d = 0; d < documents.Count; d++)
        {
            for (var c = 0; c < documents[d].Clients; c++)
            {
                jobs.Add((groups[d], jobs.Count + firstClient));
            }
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await Parallel.ForEachAsync(jobs, new ParallelOptions { MaxDegreeOfParallelism = Options.ConnectConcurrency, CancellationToken = timeout.Token }, async (job, ct) =>
        {
            var started = Stopwatch.GetTimestamp();
            var client = await SimClient.OpenAsync(UrlFor(job.Index), job.Group.DocId, Options, Counters, ct).ConfigureAwait(false);
            openTimes?.Record(LatencyRecorder.ToMicros(Stopwatch.GetTimestamp() - started), inWindow: true);
            lock (job.Group.Members)
            {
                job.Group.Members.Add(client);
            }
        }).ConfigureAwait(false);
        return groups;
    }

    /// <summary>
    /// Runs <paramref name="drive"/> (the writers) for the warm-up and the measured window, with the
    /// live line; then drains, checks convergence and fills in the common figures.
    /// </summary>
    public async Task RunLoadAsync(List<DocGroup> groups, Func<CancellationToken, Task> drive, double? offeredPerSecond)
    {
        var clients = groups.SelectMany(g => g.Members).ToList();
        var harness = Process.GetCurrentProcess();
        // Joining leaves garbage behind (on `large`, every member's copy of a 10 MB text as a
        // string and as JSON/MessagePack buffers): collect and compact it now, before the
        // warm-up, or a gen2 collection of it pauses the harness inside the measured window.
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        await using (new LiveReporter(Counters, () => clients.Count(c => c.ConnectionState == Collab.Client.ConnectionState.Connected), Probe, Options.Quiet))
        {
            using var stop = new CancellationTokenSource();
            var driving = Task.Run(() => drive(stop.Token));
            // Bounded in time whatever happens: the writers are cancelled after the window.
            await Task.WhenAny(driving, Task.Delay(Options.Warmup)).ConfigureAwait(false);
            Counters.StartWindow();
            var cpu0 = await ServerCpuSecondsAsync().ConfigureAwait(false);
            var kernel0 = Probe.Counters();
            var harnessKernel0 = ProcCounters.Read(Environment.ProcessId);
            var metrics0 = await Probe.MetricsAsync().ConfigureAwait(false);
            harness.Refresh();
            var harness0 = harness.TotalProcessorTime;
            var pause0 = GC.GetTotalPauseDuration();
            var gen2Before = GC.CollectionCount(2);
            await Task.WhenAny(driving, Task.Delay(Options.Duration)).ConfigureAwait(false);
            Counters.EndWindow();
            var cpu1 = await ServerCpuSecondsAsync().ConfigureAwait(false);
            var kernel1 = Probe.Counters();
            var harnessKernel1 = ProcCounters.Read(Environment.ProcessId);
            var metrics1 = await Probe.MetricsAsync().ConfigureAwait(false);
            harness.Refresh();
            var harnessCpu = (harness.TotalProcessorTime - harness0).TotalSeconds;
            // The harness's own GC: when it pauses, latencies it measures grow although the server did nothing.
            Result.Add("harness_gc_pause_pct", (GC.GetTotalPauseDuration() - pause0).TotalSeconds / Counters.WindowLength.TotalSeconds * 100);
            Result.Add("harness_gen2_gcs", GC.CollectionCount(2) - gen2Before);
            stop.Cancel();
            await driving.ConfigureAwait(false);

            var window = Counters.WindowLength.TotalSeconds;
            if (cpu0 is double a && cpu1 is double b)
            {
                var delivered = Interlocked.Read(ref Counters.DeliveredInWindow);
                Result.Add("server_cpu_s", b - a);
                Result.Add("server_cpu_pct", (b - a) / window * 100);
                // Every op sent to every other member: the figure the target names.
                Result.Add("cpu_per_op", delivered == 0 ? double.NaN : (b - a) * 1000 / delivered);
                Result.Add("server_cpu_per_op_ms", Result.Metrics["cpu_per_op"]);
                var receivers = groups.Count == 0 ? 0 : groups.Average(g => g.Members.Count - 1);
                Result.Add("cpu_per_message_us", delivered == 0 || receivers == 0 ? double.NaN : (b - a) * 1e6 / (delivered * receivers));
            }
            else
            {
                Result.Notes.Add("server CPU not measured: give --server-pid (same machine) or a server with /metrics");
            }
            Result.Add("harness_cpu_pct", harnessCpu / window * 100);
            var deliveredInWindow = Interlocked.Read(ref Counters.DeliveredInWindow);
            Result.Add("harness_cpu_per_op_ms", deliveredInWindow == 0 ? double.NaN : harnessCpu * 1000 / deliveredInWindow);
            AddKernelCounters("server", kernel0, kernel1, deliveredInWindow);
            AddKernelCounters("harness", harnessKernel0, harnessKernel1, deliveredInWindow);
            WarnIfTheHarnessIsTheLimit();
            AddServerWindowMetrics(metrics0, metrics1, window);

            // Drain: every op submitted so far reaches every member (or the timeout says it did not).
            var drain = Stopwatch.StartNew();
            while (groups.Sum(g => g.Undelivered()) > 0 && drain.Elapsed < Options.DrainTimeout)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }
            var undelivered = groups.Sum(g => g.Undelivered());
            if (undelivered > 0)
            {
                Result.Errors.Add($"{undelivered} ops had not reached every member {Options.DrainTimeout.TotalSeconds:0} s after the run");
            }
        }

        var seconds = Counters.WindowLength.TotalSeconds;
        Result.Add("window_s", seconds);
        Result.Add("ops", Counters.DeliveredInWindow / seconds);
        Result.Add("committed", Counters.CommittedInWindow / seconds);
        if (offeredPerSecond is double offered)
        {
            Result.Add("offered", offered);
            Result.Add("delivered", Counters.DeliveredInWindow / (offered * seconds) * 100);
        }
        else
        {
            Result.Add("delivered", Counters.SubmittedInWindow == 0 ? 0 : Counters.DeliveredInWindow * 100.0 / Counters.SubmittedInWindow);
        }
        Result.AddLatency("", Counters.Delivery.Total());
        var commit = Counters.Commit.Total();
        Result.Add("commit_p50", commit.P50);
        Result.Add("commit_p99", commit.P99);
        Result.Add("late", Counters.Late);
        await CheckAsync(groups).ConfigureAwait(false);
    }

    /// <summary>
    /// Says so when the harness's own CPU or GC, not the server, is what bounds the figures: the
    /// harness busier than the server, or the machine's cores used up with the harness holding
    /// more than a fair share of them, or a GC pause share that inflates the latencies it measures.
    /// </summary>
    private void WarnIfTheHarnessIsTheLimit()
    {
        var harness = Result.Metrics["harness_cpu_pct"];
        var gc = Result.Metrics["harness_gc_pause_pct"];
        var cores = Environment.ProcessorCount * 100.0;
        if (Result.Metrics.TryGetValue("server_cpu_pct", out var server))
        {
            var saturated = harness + server > 0.85 * cores;
            if (harness > server || (saturated && harness > 0.45 * cores))
            {
                Result.Add("harness_limited", 1);
                Result.Notes.Add($"WARNING: the harness used {harness:0}% CPU against the server's {server:0}% on {Environment.ProcessorCount} cores: "
                    + "its own CPU, not the server, limits these figures (fewer clients per process, or run the harness on another machine)");
                return;
            }
        }
        if (gc > 5)
        {
            Result.Add("harness_limited", 1);
            Result.Notes.Add($"WARNING: the harness spent {gc:0.0}% of the window in GC pauses, which inflates the latencies it measures (see docs/PERFORMANCE.md)");
            return;
        }
        Result.Add("harness_limited", 0);
    }

    /// <summary>
    /// Context switches and read/write syscalls of a process over the window, per op delivered
    /// (the same denominator as <c>cpu_per_op</c>), so that the figure compares across machines.
    /// </summary>
    private void AddKernelCounters(string who, ProcCounters? before, ProcCounters? after, long delivered)
    {
        if (before is null || after is null || delivered == 0)
        {
            return;
        }
        Result.Add($"{who}_ctx_switches_per_op", (double)after.SwitchesSince(before) / delivered);
        if (before.RwSyscalls is long r0 && after.RwSyscalls is long r1)
        {
            Result.Add($"{who}_rw_syscalls_per_op", (double)(r1 - r0) / delivered);
        }
    }

    /// <summary>What the server's own metrics say about the measured window: commits, batches, fsync time, GC.</summary>
    private void AddServerWindowMetrics(Dictionary<string, double> before, Dictionary<string, double> after, double seconds)
    {
        double? Delta(string name) => ServerProbe.Sum(after, name) is double b && ServerProbe.Sum(before, name) is double a ? b - a : null;
        if (Delta("collab_commit_duration_seconds_count") is double commits && commits > 0)
        {
            Result.Add("server_commits_per_s", commits / seconds);
            Result.Add("server_commit_mean_ms", (Delta("collab_commit_duration_seconds_sum") ?? double.NaN) / commits * 1000);
            Result.Add("server_commit_busy_pct", (Delta("collab_commit_duration_seconds_sum") ?? double.NaN) / seconds * 100);
            Result.Add("server_batch_mean", (Delta("collab_commit_batch_size_sum") ?? double.NaN) / commits);
        }
        if (Delta("collab_log_sync_duration_seconds_count") is double syncs && syncs > 0)
        {
            // The node log: one fdatasync per group of document batches.
            Result.Add("server_log_syncs_per_s", syncs / seconds);
            Result.Add("server_log_sync_mean_ms", (Delta("collab_log_sync_duration_seconds_sum") ?? double.NaN) / syncs * 1000);
            Result.Add("server_log_batches_per_sync", (Delta("collab_log_batches_total") ?? double.NaN) / syncs);
        }
        if (Delta("dotnet_gc_pause_time_seconds_total") is double pause)
        {
            Result.Add("server_gc_pause_pct", pause / seconds * 100);
        }
        if (Delta("dotnet_gc_heap_total_allocated_bytes_total") is double allocated && Delta("collab_ops_committed_total") is double ops && ops > 0)
        {
            Result.Add("server_alloc_per_op_bytes", allocated / ops);
        }
    }

    /// <summary>The convergence check, the error counts and the server's metrics: the end of every run.</summary>
    public async Task CheckAsync(List<DocGroup> groups)
    {
        var outcome = await ConvergenceCheck.RunAsync(groups, Probe, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        Result.Add("documents", outcome.Documents);
        Result.Add("clients", outcome.Clients);
        Result.Add("divergent", outcome.Divergent);
        Result.Divergences.AddRange(outcome.Problems);
        Result.Add("errors", Counters.Errors);
        Result.Add("reconnects", Counters.Reconnects);
        Result.Add("resyncs", Counters.Resyncs);
        Result.Errors.AddRange(Counters.ErrorSamples);
        if (Counters.Errors > Counters.ErrorSamples.Count)
        {
            Result.Errors.Add($"... {Counters.Errors - Counters.ErrorSamples.Count} more errors");
        }
        Result.ServerMetrics = await Probe.MetricsAsync().ConfigureAwait(false);
        if (Result.ServerMetrics.Count == 0)
        {
            Result.Notes.Add("the server has no /metrics (or no collab* metrics): figures come from the harness and /proc only");
        }
    }

    /// <summary>Closes clients a bounded number at a time.</summary>
    public async Task CloseAsync(IEnumerable<DocGroup> groups)
    {
        var clients = groups.SelectMany(g => g.Members).ToList();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = timeout.Token }, async (client, _) =>
                await client.DisposeAsync().ConfigureAwait(false)).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("closing clients took over 2 minutes; leaving the rest to the process exit");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync().ConfigureAwait(false);
            Server = null;
        }
        Probe?.Dispose();
    }
}
