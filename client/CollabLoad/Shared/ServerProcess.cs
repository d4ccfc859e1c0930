using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace CollabLoad;

/// <summary>
/// A CollabServer the harness runs itself (<c>--server-dll</c>): started on a free loopback port,
/// stopped by its PID (SIGTERM, then SIGKILL after a grace period), also when the harness fails
/// or is interrupted. Its output goes to <c>server.log</c> beside the data directory.
/// </summary>
public sealed class ServerProcess : IAsyncDisposable
{
    private static readonly List<ServerProcess> s_running = [];
    private readonly Process _process;

    static ServerProcess()
    {
        // Never leave a server behind, whatever way the harness ends.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        Console.CancelKeyPress += (_, _) => KillAll();
    }

    private ServerProcess(Process process, Uri url, string logPath)
    {
        _process = process;
        Url = url;
        LogPath = logPath;
    }

    public Uri Url { get; }
    public int Pid => _process.Id;
    public string LogPath { get; }

    /// <summary>
    /// The runtime settings the server is deployed with: <c>collab.env</c> beside its binaries
    /// (NAME=VALUE lines, # comments), the file systemd's <c>EnvironmentFile=</c> reads.
    /// </summary>
    public static Dictionary<string, string> DeploymentEnvironment(string dll)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dll))!, "collab.env");
        if (!File.Exists(path))
        {
            return settings;
        }
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            var equals = line.IndexOf('=');
            if (line.Length > 0 && line[0] != '#' && equals > 0)
            {
                settings[line[..equals].Trim()] = line[(equals + 1)..].Trim();
            }
        }
        return settings;
    }

    /// <summary>Starts the server and waits until <c>/healthz</c> answers.</summary>
    public static async Task<ServerProcess> StartAsync(string dll, string dataDir, string sync, IEnumerable<string> extraArgs, IReadOnlyDictionary<string, string>? environment = null, int port = 0)
    {
        Directory.CreateDirectory(dataDir);
        port = port == 0 ? FreePort() : port;
        var url = new Uri($"http://127.0.0.1:{port}");
        var logPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataDir).TrimEnd('/'))!, Path.GetFileName(Path.GetFullPath(dataDir).TrimEnd('/')) + ".server.log");
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.GetFullPath(dll));
        info.ArgumentList.Add("--urls");
        info.ArgumentList.Add(url.ToString().TrimEnd('/'));
        info.ArgumentList.Add($"--Collab:DataDir={Path.GetFullPath(dataDir)}");
        info.ArgumentList.Add($"--Collab:Sync={sync}");
        foreach (var arg in extraArgs)
        {
            info.ArgumentList.Add(arg);
        }
        // The harness's own runtime tuning (GC settings for its many clients) is not the server's.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("DOTNET_GC", StringComparison.OrdinalIgnoreCase) || k.StartsWith("DOTNET_gcServer", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            info.Environment.Remove(name);
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            if (value.Length == 0)
            {
                info.Environment.Remove(name); // --server-env NAME= : run without it
            }
            else
            {
                info.Environment[name] = value;
            }
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start dotnet");
        var log = new StreamWriter(logPath, append: true) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, url, logPath);
        lock (s_running)
        {
            s_running.Add(server);
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
            {
                break;
            }
            try
            {
                using var response = await http.GetAsync(new Uri(url, "/healthz")).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    return server;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Slow to answer while starting.
            }
            await Task.Delay(100).ConfigureAwait(false);
        }
        await server.DisposeAsync().ConfigureAwait(false);
        throw new InvalidOperationException($"the server did not become healthy; see {logPath}");
    }

    /// <summary>Stops the server: SIGTERM (a graceful shutdown snapshots open documents) or SIGKILL.</summary>
    public async Task StopAsync(bool kill = false, TimeSpan? grace = null)
    {
        if (!_process.HasExited)
        {
            if (kill)
            {
                _process.Kill();
            }
            else
            {
                _ = SendSignal(_process.Id, 15);
            }
            using var timeout = new CancellationTokenSource(grace ?? TimeSpan.FromSeconds(30));
            try
            {
                await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
                await _process.WaitForExitAsync().ConfigureAwait(false);
            }
        }
        lock (s_running)
        {
            s_running.Remove(this);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _process.Dispose();
    }

    private static void KillAll()
    {
        lock (s_running)
        {
            foreach (var server in s_running)
            {
                try
                {
                    if (!server._process.HasExited)
                    {
                        server._process.Kill();
                    }
                }
                catch (InvalidOperationException)
                {
                    // Already gone.
                }
            }
            s_running.Clear();
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);
}
