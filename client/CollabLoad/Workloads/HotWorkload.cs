using System.Text;

namespace CollabLoad.Workloads;

/// <summary>
/// <c>hot</c>: one document, C clients of which W write continuously, each with at most one op in
/// flight (the next edit waits for the previous one's acknowledgement). <c>large</c>: the same on
/// a document of S MB, put in place over REST before anyone joins.
/// </summary>
public static class HotWorkload
{
    public static async Task RunAsync(LoadSession session, bool large)
    {
        var options = session.Options;
        var clients = Math.Max(2, options.Clients ?? 20);
        var writers = Math.Clamp(options.Writers ?? 10, 1, clients);
        var docId = $"{options.DocPrefix}-{(large ? "large" : "hot")}";
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
