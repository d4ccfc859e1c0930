using System.Text;

namespace CollabLoad.Workloads;

/// <summary>
/// <c>hot</c>: one document, C clients of which W write continuously, each with at most one op in
/// flight (the next edit waits for the previous one's acknowledgement). <c>large</c>: the same on
/// a document of S MB, put in place over REST before anyone joins. <c>editor</c>: hot's shape at a
/// fixed, moderate total rate R: each writer paces its ops at R/W per second on a
/// schedule computed from its start (op k is due at start + k·W/R), and starts each op at its due
/// time or when the previous op is acknowledged, whichever is later; an op whose acknowledgement
/// came after its due time counts as late.
/// </summary>
public static class HotWorkload
{
    public static async Task RunAsync(LoadSession session, bool large, bool editor = false)
    {
        var options = session.Options;
        var clients = Math.Max(2, options.Clients ?? 20);
        var writers = Math.Clamp(options.Writers ?? 10, 1, clients);
        var docId = $"{options.DocPrefix}-{(large ? "large" : editor ? "editor" : "hot")}";
        var result = session.Result;
        result.Parameters["clients"] = clients.ToString();
        result.Parameters["writers"] = writers.ToString();
        result.Parameters["doc"] = docId;
        if (large)
        {
            var text = MakeText((int)(options.SizeMb * 1024 * 1024), options.Seed);
            result.Parameters["size_chars"] = text.Length.ToString();
            var started = System.Diagnostics.Stopwatch.StartNew();
            await session.Probe.PutDocumentAsync(docId, text).ConfigureAwait(false);
            result.Add("put_ms", started.Elapsed.TotalMilliseconds);
        }

        var joinTimes = new LatencyRecorder();
        var groups = await session.OpenGroupsAsync([(docId, clients)], joinTimes).ConfigureAwait(false);
        var join = joinTimes.Total();
        result.Add("join_p50", join.P50);
        result.Add("join_max", join.Max);
        var group = groups[0];
        group.Seal(track: true);

        if (editor)
        {
            var rate = options.Rate ?? 1000;
            if (rate <= 0)
            {
                throw new UsageException("editor: --rate must be above 0");
            }
            result.Parameters["rate"] = rate.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await session.RunLoadAsync(groups, stop => PacedAsync(session, group.Members.Take(writers).ToList(), rate, stop), offeredPerSecond: rate).ConfigureAwait(false);
            await session.CloseAsync(groups).ConfigureAwait(false);
            return;
        }

        await session.RunLoadAsync(groups, async stop =>
        {
            var tasks = group.Members.Take(writers).Select((member, index) => Task.Run(async () =>
            {
                var random = new Random(options.Seed + index);
                while (!stop.IsCancellationRequested && Interlocked.Read(ref session.Counters.Submitted) < options.MaxOps)
                {
                    if (!await member.WriteAsync(random, deletes: false, stop).ConfigureAwait(false))
                    {
                        break;
                    }
                }
            }));
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }, offeredPerSecond: null).ConfigureAwait(false);

        await session.CloseAsync(groups).ConfigureAwait(false);
    }

    /// <summary>
    /// The editor's writers: each at <paramref name="rate"/>/W ops per second, one op in flight.
    /// Due times come from one start time and the op's index, so timer overshoot does not add up;
    /// writer i is offset by i/W of an interval so the W writers spread over it evenly.
    /// Counts, inside the measured window, the ops started and those started late.
    /// </summary>
    private static async Task PacedAsync(LoadSession session, List<SimClient> writers, double rate, CancellationToken stop)
    {
        var options = session.Options;
        var counters = session.Counters;
        var interval = writers.Count / rate; // seconds between one writer's ops
        var startedInWindow = 0L;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var tasks = writers.Select((member, index) => Task.Run(async () =>
        {
            var random = new Random(options.Seed + index);
            var offset = interval * index / writers.Count;
            for (long k = 0; !stop.IsCancellationRequested && Interlocked.Read(ref counters.Submitted) < options.MaxOps; k++)
            {
                var due = TimeSpan.FromSeconds(offset + k * interval);
                var wait = due - clock.Elapsed;
                var late = wait <= TimeSpan.Zero;
                if (!late)
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
                if (counters.InWindow(System.Diagnostics.Stopwatch.GetTimestamp()))
                {
                    Interlocked.Increment(ref startedInWindow);
                    if (late)
                    {
                        Interlocked.Increment(ref counters.Late);
                    }
                }
                if (!await member.WriteAsync(random, deletes: false, stop).ConfigureAwait(false))
                {
                    break;
                }
            }
        }));
        await Task.WhenAll(tasks).ConfigureAwait(false);
        var started = Interlocked.Read(ref startedInWindow);
        session.Result.Add("late_pct", started == 0 ? double.NaN : Interlocked.Read(ref counters.Late) * 100.0 / started);
    }

    /// <summary>Deterministic text of <paramref name="length"/> code units: words and line breaks, ASCII only.</summary>
    internal static string MakeText(int length, int seed)
    {
        string[] words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do", "eiusmod", "tempor"];
        var random = new Random(seed);
        var builder = new StringBuilder(length + 16);
        var line = 0;
        while (builder.Length < length)
        {
            var word = words[random.Next(words.Length)];
            builder.Append(word);
            line += word.Length + 1;
            builder.Append(line > 72 ? '\n' : ' ');
            line = line > 72 ? 0 : line;
        }
        builder.Length = length;
        return builder.ToString();
    }
}
