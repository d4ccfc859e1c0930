using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Collab.Testing;

/// <summary>
/// The server as a separate OS process on a free loopback port, for crash tests. Disposing kills
/// it by its PID if it is still running.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _output = [];

    private ServerProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        BaseUrl = new Uri($"http://127.0.0.1:{port}");
    }

    public int Port { get; }

    public Uri BaseUrl { get; }

    public int Pid => _process.Id;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return string.Join('\n', _output);
            }
        }
    }

    public static Task<ServerProcess> StartAsync(string dataDir, params string[] extraArgs) =>
        StartDllAsync(Path.Combine(AppContext.BaseDirectory, "CollabServer.dll"), dataDir, [$"--Collab:DataDir={dataDir}", .. extraArgs]);

    /// <summary>
    /// Starts <paramref name="dll"/> in <paramref name="workingDirectory"/> on a free loopback port and
    /// waits until it is ready. A port is free when chosen, but another socket may take it before the
    /// server binds it: then the server is started again on another.
    /// </summary>
    public static async Task<ServerProcess> StartDllAsync(string dll, string workingDirectory, params string[] args)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await StartDllAsync(dll, workingDirectory, FreePort(), waitReady: true, args);
            }
            catch (InvalidOperationException e) when (attempt < 3 && e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
            {
            }
        }
    }

    /// <summary>
    /// Starts the server with at most <paramref name="fileLimit"/> open files (soft and hard, set by
    /// util-linux's <c>prlimit</c>, which then runs the server in its own process).
    /// </summary>
    public static Task<ServerProcess> StartWithFileLimitAsync(string dataDir, int fileLimit, params string[] extraArgs) =>
        StartDllAsync(ServerDll, dataDir, FreePort(), waitReady: true, fileLimit, [$"--Collab:DataDir={dataDir}", .. extraArgs]);

    /// <summary>Starts <paramref name="dll"/> on <paramref name="port"/>; with <paramref name="waitReady"/>, waits until <c>/readyz</c> answers 200.</summary>
    public static Task<ServerProcess> StartDllAsync(string dll, string workingDirectory, int port, bool waitReady, params string[] args) =>
        StartDllAsync(dll, workingDirectory, port, waitReady, null, args);

    private static async Task<ServerProcess> StartDllAsync(string dll, string workingDirectory, int port, bool waitReady, int? fileLimit, string[] args)
    {
        var info = new ProcessStartInfo(fileLimit is null ? "dotnet" : "prlimit")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (fileLimit is { } limit)
        {
            info.ArgumentList.Add($"--nofile={limit}:{limit}");
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add($"http://127.0.0.1:{port}");
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment.Remove("ASPNETCORE_CONTENTROOT");
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var server = new ServerProcess(process, port);
        process.OutputDataReceived += (_, e) => server.Add(e.Data);
        process.ErrorDataReceived += (_, e) => server.Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (waitReady)
        {
            await server.WaitReadyAsync();
        }
        return server;
    }

    /// <summary>The server's own copy of CollabServer.dll beside the tests.</summary>
    public static string ServerDll => Path.Combine(AppContext.BaseDirectory, "CollabServer.dll");

    public bool HasExited => _process.HasExited;

    /// <summary>The exit code, once <see cref="HasExited"/>.</summary>
    public int ExitCode => _process.ExitCode;

    /// <summary>Waits for the process to exit by itself (after <see cref="Terminate"/>); false if it is still running after <paramref name="timeout"/>.</summary>
    public Task<bool> WaitForExitAsync(TimeSpan timeout) =>
        _process.WaitForExitAsync(new CancellationTokenSource(timeout).Token).ContinueWith(t => t.IsCompletedSuccessfully, TaskScheduler.Default);

    /// <summary>SIGTERM: the server shuts down in order (a cluster node drains).</summary>
    public void Terminate() => Signal(15);

    /// <summary>SIGSTOP: the process is frozen, as by a long pause or a partition; <see cref="Continue"/> wakes it.</summary>
    public void Pause() => Signal(19);

    /// <summary>SIGCONT.</summary>
    public void Continue() => Signal(18);

    private void Signal(int signal)
    {
        if (!_process.HasExited && kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for one int call
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
#pragma warning restore SYSLIB1054

    private void Add(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Add(line);
            }
        }
    }

    public async Task WaitReadyAsync()
    {
        // Generous: several servers (and Chromium) starting at once on 2 busy cores take a while.
        using var http = new HttpClient { BaseAddress = BaseUrl, Timeout = TimeSpan.FromSeconds(10) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"The server exited with {_process.ExitCode}:\n{Output}");
            }
            try
            {
                if ((await http.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }
            await Task.Delay(100);
        }
        Dispose();
        throw new TimeoutException($"The server did not become ready:\n{Output}");
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        if (!_process.HasExited)
        {
            Signal(18); // a paused process is woken first, so that it dies now
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
