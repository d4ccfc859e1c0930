using System.Diagnostics;

namespace Collab.Testing;

/// <summary>Runs a command-line tool (dotnet, npm, node) to its end, as a developer would in a shell.</summary>
public static class Tool
{
    /// <summary>
    /// Runs <paramref name="file"/> in <paramref name="workingDirectory"/>; fails the test, with
    /// everything the tool printed, if it exits non-zero or runs longer than
    /// <paramref name="timeout"/> (5 minutes by default), and kills it then. Returns its standard output.
    /// </summary>
    public static async Task<string> RunAsync(string file, string workingDirectory, IEnumerable<string> args, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
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
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{file} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var command = $"{file} {string.Join(' ', info.ArgumentList)} (in {workingDirectory})";
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout ?? TimeSpan.FromMinutes(5));
        }
        catch (TimeoutException)
        {
            Assert.Fail($"{command} did not end in time:\n{Tail(await Partial(stdout))}\n{Tail(await Partial(stderr))}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"{command} exited with {process.ExitCode}:\n{Tail(output)}\n{Tail(await stderr)}");
        return output;
    }

    private static async Task<string> Partial(Task<string> read) =>
        await Task.WhenAny(read, Task.Delay(TimeSpan.FromSeconds(5))) == read ? await read : "";

    private static string Tail(string text) => text.Length <= 8000 ? text : "…" + text[^8000..];
}
