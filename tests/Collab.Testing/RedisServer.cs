using System.Diagnostics;

namespace Collab.Testing;

/// <summary>
/// A real <c>redis-server</c> on a free loopback port, without persistence (STACK.md). It can be
/// stopped and started again on the same port, empty, as after a crash. Disposing stops it by its PID.
/// </summary>
public sealed class RedisServer : IDisposable
{
    private Process? _process;

    public RedisServer()
    {
        Port = ServerProcess.FreePort();
        Start();
    }

    public int Port { get; }

    /// <summary>The StackExchange.Redis configuration string the nodes get.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public void Start()
    {
        var info = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "--port", Port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
        {
            info.ArgumentList.Add(arg);
        }
        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start.");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try
        {
            var deadline = Stopwatch.StartNew();
            while (Cli("PING").Trim() != "PONG")
            {
                if (_process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new InvalidOperationException("redis-server did not come up.");
                }
                Thread.Sleep(50);
            }
        }
        catch
        {
            Stop(); // never left running by a failed start (redis-cli missing, or too slow)
            throw;
        }
    }

    /// <summary>SIGKILL, as a crash: everything it held is gone.</summary>
    public void Stop()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit(10_000);
        }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>Runs <c>redis-cli</c> against this server; returns what it printed.</summary>
    public string Cli(params string[] args)
    {
        var info = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { "-h", "127.0.0.1", "-p", Port.ToString() }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }
        using var cli = Process.Start(info)!;
        var output = cli.StandardOutput.ReadToEnd();
        cli.WaitForExit();
        return output;
    }

    /// <summary><c>INFO commandstats</c>: calls per command name.</summary>
    public Dictionary<string, long> CommandStats()
    {
        var stats = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in Cli("INFO", "commandstats").Split('\n', StringSplitOptions.TrimEntries))
        {
            // cmdstat_get:calls=3,usec=...
            if (line.StartsWith("cmdstat_", StringComparison.Ordinal) && line.IndexOf(':') is var colon and > 0)
            {
                var calls = line[(colon + 1)..].Split(',')[0];
                stats[line[8..colon]] = long.Parse(calls["calls=".Length..]);
            }
        }
        return stats;
    }

    public void Dispose() => Stop();
}
