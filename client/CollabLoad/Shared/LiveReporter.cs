using System.Diagnostics;

namespace CollabLoad;

/// <summary>
/// Prints one line a second while load runs: ops delivered to every member in that second, ops
/// committed, delivery latency (p50/p99/max over that second), connected clients, errors, and
/// the server's CPU use when its PID is known.
/// </summary>
public sealed class LiveReporter : IAsyncDisposable
{
    private readonly RunCounters _counters;
    private readonly Func<int> _connected;
    private readonly ServerProbe _probe;
    private readonly bool _quiet;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public LiveReporter(RunCounters counters, Func<int> connected, ServerProbe probe, bool quiet)
    {
        _counters = counters;
        _connected = connected;
        _probe = probe;
        _quiet = quiet;
        _loop = Task.Run(LoopAsync);
    }

    private async Task LoopAsync()
    {
        var clock = Stopwatch.StartNew();
        long delivered = 0, committed = 0;
        var cpu = _probe.CpuSeconds();
        var last = clock.Elapsed;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                var now = clock.Elapsed;
                var seconds = (now - last).TotalSeconds;
                last = now;
                var d = Interlocked.Read(ref _counters.Delivered);
                var c = Interlocked.Read(ref _counters.Committed);
                var latency = _counters.Delivery.TakeInterval();
                var cpuNow = _probe.CpuSeconds();
                var cpuText = cpu is double before && cpuNow is double after ? $" srv-cpu {(after - before) / seconds * 100,4:0}%" : "";
                cpu = cpuNow;
                if (!_quiet)
                {
                    Console.WriteLine(
                        $"{now.TotalSeconds,5:0}s  delivered {(d - delivered) / seconds,7:0}/s  committed {(c - committed) / seconds,7:0}/s  " +
                        $"p50 {Ms(latency.P50)} p99 {Ms(latency.P99)} max {Ms(latency.Max)}  conn {_connected(),5}  err {Interlocked.Read(ref _counters.Errors)}{cpuText}");
                }
                delivered = d;
                committed = c;
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    private static string Ms(double value) => double.IsNaN(value) ? "     -" : $"{value,6:0.0}";

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
