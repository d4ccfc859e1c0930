using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;

// dotnet run -c Release --project tests/CollabBench -- --filter '*'
// dotnet run -c Release --project tests/CollabBench -- history   (reading the past of 1M ops; see HistoryHarness)
// dotnet run -c Release --project tests/CollabBench -- attack NAME   (issue 21's attacks against a fresh server; see AttackProbe)
if (args.Length > 0 && args[0] == "attack")
{
    await CollabBench.AttackProbe.RunAsync(args[1..]);
    return;
}
if (args.Length > 0 && args[0] == "history")
{
    CollabBench.HistoryHarness.Run(args[1..]);
    return;
}

// A short job (3 warm-ups, 5 measured iterations, one process) keeps the whole suite to a few
// minutes on 2 cores; pass --job default for publication-grade intervals.
var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithWarmupCount(3).WithIterationCount(5).WithLaunchCount(1))
    .AddDiagnoser(MemoryDiagnoser.Default)
    .WithOptions(ConfigOptions.JoinSummary);
BenchmarkSwitcher.FromAssembly(typeof(CollabBench.Documents).Assembly).Run(args, config);
