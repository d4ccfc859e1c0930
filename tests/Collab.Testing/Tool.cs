using System.Diagnostics;

namespace Collab.Testing;

/// <summary>Runs a command-line tool (dotnet, npm, node) to its end, as a developer would in a shell.</summary>
public static class Tool
{
    /// <summary>What a command did: its exit code and everything it printed.</summary>
    public sealed record Run(int ExitCode, string Stdout, string Stderr)
    {
        /// <summary>Standard output, then standard error.</summary>
        public string Output => Stdout + Stderr;

        public override string ToString() => $"exit {ExitCode}\n--- stdout:\n{Tail(Stdout)}\n--- stderr:\n{Tail(Stderr)}";
    }

    /// <summary>
    /// Runs <paramref name="file"/> in <paramref name="workingDirectory"/> to its end and returns
    /// what it did, whatever its exit code. <paramref name="environment"/> sets variables (a null
    /// value removes one, as do <paramref name="removePrefixes"/>). A command still running after
    /// <paramref name="timeout"/> (5 minutes by default) is killed by its PID and fails the test:
    /// every command run here must exit by itself.
    /// </summary>
    public static async Task<Run> ExecAsync(
        string file,
        string workingDirectory,
        IEnumerable<string> args,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null,
        IEnumerable<string>? removePrefixes = null)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["NO_UPDATE_NOTIFIER"] = "1";
        foreach (var prefix in removePrefixes ?? [])
        {
            foreach (var inherited in info.Environment.Keys.Where(k => k.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)).ToList())
            {
                info.Environment.Remove(inherited);
            }
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(name);
            }
            else
            {
                info.Environment[name] = value;
            }
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var limit = timeout ?? TimeSpan.FromMinutes(5);
        try
        {
            await process.WaitForExitAsync().WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{file} {string.Join(' ', info.ArgumentList)} (in {workingDirectory}) was still running after {limit} (it should exit by itself):\n{Tail(await Partial(stdout))}\n{Tail(await Partial(stderr))}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        return new Run(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Runs <paramref name="file"/> as <see cref="ExecAsync"/> does, and fails the test, with
    /// everything the tool printed, if it exits non-zero. Returns its standard output.
    /// </summary>
    public static async Task<string> RunAsync(string file, string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var run = await ExecAsync(file, workingDirectory, args, timeout, environment?.ToDictionary(e => e.Key, string? (e) => e.Value));
        Assert.True(run.ExitCode == 0, $"{file} {string.Join(' ', args)} (in {workingDirectory}) {run}");
        return run.Stdout;
    }

    /// <summary>Runs the server's command line (the CollabServer.dll beside the tests) with <paramref name="args"/> to its end, within two minutes.</summary>
    public static Task<Run> RunServerAsync(IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null, string? workingDirectory = null) =>
        ExecAsync("dotnet", workingDirectory ?? AppContext.BaseDirectory, [ServerProcess.ServerDll, .. args], TimeSpan.FromMinutes(2), environment);

    private static async Task<string> Partial(Task<string> read) =>
        await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(5))) == read ? await read : "";

    private static string Tail(string text) => text.Length <= 8000 ? text : "…" + text[^8000..];
}
