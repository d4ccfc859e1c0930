using CollabLoad;
using CollabLoad.Workloads;

LoadOptions options;
try
{
    options = LoadOptions.Parse(args);
}
catch (UsageException ex)
{
    if (ex.Message.Length > 0)
    {
        Console.Error.WriteLine($"CollabLoad: {ex.Message}");
    }
    Console.Error.WriteLine(LoadOptions.Usage);
    return ex.Message.Length > 0 ? 3 : 0;
}

var result = new RunResult { Workload = options.Workload.ToString().ToLowerInvariant() };
result.Parameters["sync"] = options.Sync;
if (options.ServerDll is not null)
{
    result.Parameters["server_dll"] = Path.GetFullPath(options.ServerDll);
    // The server runs as deployed: with the runtime settings of its collab.env, unless
    // --server-env says otherwise (NAME= runs it without one).
    foreach (var (name, value) in ServerProcess.DeploymentEnvironment(options.ServerDll))
    {
        options.ServerEnv.TryAdd(name, value);
    }
    foreach (var (name, value) in options.ServerEnv)
    {
        result.Parameters["server_env"] = (result.Parameters.GetValueOrDefault("server_env") + $" {name}={value}").Trim();
    }
    if (options.ServerArgs.Count > 0)
    {
        result.Parameters["server_args"] = string.Join(' ', options.ServerArgs);
    }
}
result.Parameters["protocol"] = options.Protocol.ToString();
result.Parameters["loadavg_start"] = LoadAverage();
result.Parameters["cpu_pressure_start"] = CpuPressure();
result.Parameters["duration_s"] = options.Duration.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);

// Cold preparation runs the server in a setup configuration; the measurement restarts it as configured.
var prepareServer = options.Workload == Workload.Cold && options.Phase != "measure";
LoadSession? session = null;
try
{
    session = await LoadSession.StartAsync(
        options,
        result,
        prepareServer ? [.. options.ServerArgs, .. ColdWorkload.PrepareArgs] : options.ServerArgs,
        prepareServer ? ColdWorkload.PrepareSync : options.Sync);
    result.Parameters["url"] = string.Join(",", session.Urls);
    result.Parameters["server_pid"] = session.Probe.Pid?.ToString() ?? "unknown";
    var work = options.Workload switch
    {
        Workload.Hot => HotWorkload.RunAsync(session, large: false),
        Workload.Large => HotWorkload.RunAsync(session, large: true),
        Workload.Editor => HotWorkload.RunAsync(session, large: false, editor: true),
        Workload.Many => ManyWorkload.RunAsync(session),
        Workload.Idle => IdleWorkload.RunAsync(session),
        Workload.Cold => ColdWorkload.RunAsync(session),
        _ => throw new UsageException("unknown workload"),
    };
    await work;
}
catch (Exception ex) when (ex is not UsageException)
{
    // The run itself failed (server gone, a client could not join, ...): a result all the same.
    result.Errors.Add($"the run failed: {ex.GetType().Name}: {ex.Message}");
    Console.Error.WriteLine(ex);
}
finally
{
    if (session is not null)
    {
        await session.DisposeAsync();
    }
}

result.Parameters["loadavg_end"] = LoadAverage();
result.Parameters["cpu_pressure_end"] = CpuPressure();
result.Judge(options.Expectations);
result.Print();
if (options.JsonPath is not null)
{
    result.WriteJson(options.JsonPath);
    Console.WriteLine($"   result written to {options.JsonPath}");
}
return result.ExitCode;

// Other work on the machine skews every figure: each result records the 1-minute load average.
static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

// Linux PSI: the share of the last 60 s in which some runnable task waited for a CPU (0 on an idle machine).
static string CpuPressure()
{
    const string path = "/proc/pressure/cpu";
    return File.Exists(path) ? File.ReadLines(path).First().Split(' ').FirstOrDefault(f => f.StartsWith("avg60=", StringComparison.Ordinal))?[6..] + "%" : "n/a";
}
