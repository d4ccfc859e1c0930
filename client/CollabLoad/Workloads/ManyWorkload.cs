using System.Diagnostics;

namespace CollabLoad.Workloads;

/// <summary>
/// <c>many</c>: D documents × C clients, each client typing R ops a second (1–3 characters at a
/// random place, replacing 0–4 characters: so with deletes) on a fixed schedule with a random
/// phase. The schedule is open-loop: an edit whose predecessor is still unacknowledged when its
/// time comes waits for it (one op in flight) and is counted as <c>late</c>; the share delivered
/// is measured against what the schedule offered, so a server that falls behind shows up there.
/// </summary>
public static class ManyWorkload
{
    public static async Task RunAsync(LoadSession session)
    {
        var options = session.Options;
        var docs = Math.Max(1, options.Docs ?? 200);
        var clients = Math.Max(2, options.Clients ?? 4);
        var rate = options.Rate ?? 5;
        var result = session.Result;
        result.Parameters["docs"] = docs.ToString();
        result.Parameters["clients_per_doc"] = clients.ToString();
        result.Parameters["rate_per_client"] = rate.ToString(System.Globalization.CultureInfo.InvariantCulture);

        var documents = Enumerable.Range(0, docs).Select(d => ($"{options.DocPrefix}-many-{d}", clients)).ToList();
        var joinTimes = new LatencyRecorder();
        var groups = await session.OpenGroupsAsync(documents, joinTimes).ConfigureAwait(false);
        var join = joinTimes.Total();
        result.Add("join_p50", join.P50);
        result.Add("join_p99", join.P99);
        foreach (var group in groups)
        {
            group.Seal(track: true);
        }

        var interval = TimeSpan.FromSeconds(1 / rate);
        await session.RunLoadAsync(groups, async stop =>
        {
            var members = groups.SelectMany(g => g.Members).ToList();
            var tasks = members.Select((member, index) => Task.Run(async () =>
            {
                var random = new Random(options.Seed + index);
                var clock = Stopwatch.StartNew();
                var due = interval * random.NextDouble();
                while (!stop.IsCancellationRequested && Interlocked.Read(ref session.Counters.Submitted) < options.MaxOps)
                {
                    var wait = due - clock.Elapsed;
                    if (wait > TimeSpan.Zero)
                    {
                        try
                        {
                            await Task.Delay(wait, stop).ConfigureAwait(false);
                        }
                        catch (OperationCanceledException)
                        {
                            break;
                        }
                    }
                    else if (-wait > interval)
                    {
                        Interlocked.Increment(ref session.Counters.Late);
                    }
                    if (!await member.WriteAsync(random, deletes: true, stop).ConfigureAwait(false))
                    {
                        break;
                    }
                    due += interval;
                }
            }));
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }, offeredPerSecond: docs * clients * rate).ConfigureAwait(false);

        await session.CloseAsync(groups).ConfigureAwait(false);
    }
}
