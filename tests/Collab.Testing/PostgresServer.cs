using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Collab.Testing;

/// <summary>
/// A real PostgreSQL server (a postmaster of its own, on a free loopback port, in a temporary
/// folder), user <c>collab</c> with trust authentication, an empty database <c>collab</c>. It can be
/// killed as by a crash and started again on the same port and data, and it can make streaming
/// standbys of itself that can be promoted: what failover and durability tests need.
/// <para>
/// The binaries are the highest version under <c>/usr/lib/postgresql/*/bin</c> (Debian's layout;
/// they are not on PATH). PostgreSQL refuses to run as root, and the tests run as root: then the
/// server programs run as the <c>postgres</c> user through <c>setpriv</c>, which execs the program
/// in its own process instead of forking a child (as <c>su</c> or <c>sudo</c> would), so the PID
/// the fixture holds is the postmaster's own, and killing that PID kills the server, not a wrapper.
/// </para>
/// <para>
/// The server runs with <c>fsync=on</c>: the tests are about what survives a crash, and a server
/// that does not flush its log is not the one they mean to test. Only the setup (initdb,
/// pg_basebackup) skips syncing, for speed; a checkpoint syncs what it wrote anyway.
/// </para>
/// <para>
/// Every process is stopped by its PID, even when a start fails: the postmaster, and whatever of
/// its children are left (found as the processes whose working directory is the data directory,
/// where every PostgreSQL process lives), and nothing is left in <c>/dev/shm</c> (its dynamic
/// shared memory is files in the data directory, which goes with the fixture).
/// </para>
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private const string User = "collab";
    private const string Database = "collab";
    private const int LogLines = 60;

    private static readonly Lazy<string> s_bin = new(FindBin);

    private readonly string _folder;
    private readonly Queue<string> _log = new();
    private Process? _process;
    private string? _processDir; // the data directory as the server's processes see it (/proc/PID/cwd)
    private bool _disposed;

    private PostgresServer(string folder, int port)
    {
        _folder = folder;
        Port = port;
    }

    public int Port { get; private set; }

    /// <summary>The postmaster's PID while it runs.</summary>
    public int? Pid => _process is { HasExited: false } process ? process.Id : null;

    /// <summary>The data directory.</summary>
    public string DataDirectory => Path.Combine(_folder, "db");

    /// <summary>An Npgsql connection string for this server alone.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username={User};Database={Database};Pooling=true;Timeout=5;Command Timeout=30";

    /// <summary>The last lines the server printed, for error messages.</summary>
    public string LogTail
    {
        get
        {
            lock (_log)
            {
                return string.Join('\n', _log);
            }
        }
    }

    private static bool IsRoot => Environment.UserName == "root";

    /// <summary>
    /// An Npgsql connection string over <paramref name="servers"/> that connects to whichever of them
    /// is the primary (a dead one or a standby is passed over), as a node configured with every
    /// server of a cluster would. Npgsql remembers what it found a host to be (a standby, down) for
    /// Host Recheck Seconds, 10 s by default: a standby promoted meanwhile is found only after that.
    /// </summary>
    public static string MultiHost(params PostgresServer[] servers) =>
        $"Host={string.Join(',', servers.Select(server => $"127.0.0.1:{server.Port}"))};Username={User};Database={Database};Target Session Attributes=primary;Timeout=5;Command Timeout=30";

    /// <summary>A new primary: initdb, the postmaster started and ready, the database created.</summary>
    public static PostgresServer Start()
    {
        var server = new PostgresServer(NewFolder(), ServerProcess.FreePort());
        try
        {
            // --locale=C: initdb fails on a LANG whose locale is not installed; C is always there.
            server.RunServerTool("initdb", "-D", server.DataDirectory, "-U", User, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync");
            server.LaunchOnFreePort();
            server.RunClientTool("createdb", "-h", "127.0.0.1", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "-U", User, Database);
            return server;
        }
        catch
        {
            server.Dispose(); // never left running by a failed start
            throw;
        }
    }

    /// <summary>
    /// A streaming standby of this server, named <paramref name="applicationName"/> (the name
    /// <c>synchronous_standby_names</c> refers to), on a port of its own, ready for read-only queries.
    /// The fixture returned owns it: disposing it stops it and deletes its data. Its
    /// <c>synchronous_standby_names</c> is empty whatever this server's was when copied: once
    /// promoted, it has no standbys to wait for until a test gives it some.
    /// </summary>
    public PostgresServer StartStandby(string applicationName)
    {
        var standby = new PostgresServer(NewFolder(), ServerProcess.FreePort());
        try
        {
            var port = Port.ToString(CultureInfo.InvariantCulture);
            // -c fast: a spread checkpoint would make the copy wait minutes for nothing.
            standby.RunServerTool("pg_basebackup", "-h", "127.0.0.1", "-p", port, "-U", User, "-D", standby.DataDirectory, "-R", "-X", "stream", "-c", "fast", "--no-sync");
            // -R wrote primary_conninfo (without a name) and standby.signal; a later line wins.
            File.AppendAllText(Path.Combine(standby.DataDirectory, "postgresql.auto.conf"), $"""

                primary_conninfo = 'host=127.0.0.1 port={port} user={User} application_name={applicationName}'
                synchronous_standby_names = ''

                """);
            standby.LaunchOnFreePort();
            return standby;
        }
        catch
        {
            standby.Dispose();
            throw;
        }
    }

    /// <summary>
    /// SIGKILL to the postmaster, as a crash; then whatever of its processes remain are killed too
    /// (they would exit on their own when they notice, but a crash takes them all at once). Returns
    /// when the port refuses connections.
    /// </summary>
    public void Kill()
    {
        KillAll();
        var deadline = Stopwatch.StartNew();
        while (Accepts())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException($"Port {Port} still accepts connections after the postmaster was killed.");
            }
            Thread.Sleep(20);
        }
    }

    /// <summary>
    /// SIGQUIT: PostgreSQL's immediate shutdown (<c>pg_ctl stop -m immediate</c>). No checkpoint;
    /// the next start recovers from the log, as after a crash. Returns when every process is gone.
    /// </summary>
    public void StopImmediate()
    {
        if (_process is { HasExited: false } process)
        {
            _ = kill(process.Id, 3); // SIGQUIT
            if (!process.WaitForExit(30_000))
            {
                throw new TimeoutException($"PostgreSQL on port {Port} did not stop on SIGQUIT:\n{LogTail}");
            }
        }
        KillAll(); // nothing is left; this waits for the children and forgets the process
    }

    /// <summary>Starts the server again on the same port and data directory (after <see cref="Kill"/> or <see cref="StopImmediate"/>) and waits until it is ready.</summary>
    public void Restart()
    {
        if (_process is { HasExited: false })
        {
            throw new InvalidOperationException($"PostgreSQL on port {Port} is running.");
        }
        KillAll(); // a postmaster that died on its own may have left children holding its shared memory
        Launch();
    }

    /// <summary>
    /// Runs one SQL command with psql (unaligned, tuples only: one line a row, columns separated
    /// by '|') and returns what it printed, without the last newline. Throws with psql's errors if
    /// it fails.
    /// </summary>
    public string Psql(string sql) =>
        RunClientTool("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", User, "-d", Database, "-c", sql).TrimEnd('\n');

    /// <summary>
    /// Sets <c>synchronous_standby_names</c> (e.g. <c>ANY 1 (s1, s2)</c>) and reloads the
    /// configuration; returns when a new session sees the new value. (The process that makes
    /// commits wait reads it on the same reload, moments later.)
    /// </summary>
    public void SetSynchronousStandbys(string names)
    {
        var quoted = names.Replace("'", "''", StringComparison.Ordinal);
        Psql($"ALTER SYSTEM SET synchronous_standby_names = '{quoted}'");
        Psql("SELECT pg_reload_conf()");
        Wait(() => Psql("SHOW synchronous_standby_names") == names, $"synchronous_standby_names is '{names}'");
    }

    /// <summary>On a standby: promotes it and returns when it is out of recovery (accepts writes).</summary>
    public void Promote()
    {
        var promoted = Psql("SELECT pg_promote(true, 60)");
        if (promoted != "t")
        {
            throw new InvalidOperationException($"pg_promote on port {Port} returned '{promoted}':\n{LogTail}");
        }
        Wait(() => Psql("SELECT pg_is_in_recovery()") == "f", $"the server on port {Port} is out of recovery");
    }

    /// <summary>
    /// On a standby: how far it has replayed the log (<c>pg_last_wal_replay_lsn()</c>, as a byte
    /// position). A standby can have received more than it replayed (see <see cref="ReceivedLsn"/>);
    /// it replays all it has before it is promoted.
    /// </summary>
    public long ReplayedLsn() => Lsn("pg_last_wal_replay_lsn()");

    /// <summary>On a standby: how far it has received the log and flushed it to disk (<c>pg_last_wal_receive_lsn()</c>), what a synchronous commit waited for.</summary>
    public long ReceivedLsn() => Lsn("pg_last_wal_receive_lsn()");

    /// <summary>Kills every process of the server by PID and deletes its folder.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            KillAll();
            RemoveSharedMemory();
        }
        finally
        {
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
    }

    private long Lsn(string function)
    {
        var lsn = Psql($"SELECT pg_wal_lsn_diff({function}, '0/0')");
        if (lsn.Length == 0)
        {
            throw new InvalidOperationException($"{function} is null on port {Port}: not a standby.");
        }
        return (long)decimal.Parse(lsn, CultureInfo.InvariantCulture);
    }

    /// <summary>The first start: a port chosen free may be taken before the postmaster binds it; then another one is tried.</summary>
    private void LaunchOnFreePort()
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Launch();
                return;
            }
            catch (InvalidOperationException) when (attempt < 3 && LogTail.Contains("Address already in use", StringComparison.Ordinal))
            {
                Port = ServerProcess.FreePort();
            }
        }
    }

    /// <summary>Starts the postmaster itself (not pg_ctl, so that the process held is the server) and waits until it accepts connections.</summary>
    private void Launch()
    {
        lock (_log)
        {
            _log.Clear();
        }
        var info = ServerToolStartInfo(
            "postgres", "-D", DataDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture), "-k", _folder,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=32MB",
            // Dynamic shared memory as files in the data directory, deleted with it: the default
            // (POSIX, in /dev/shm) outlives a killed server; a day of suite runs left 688 segments
            // (361 MB of memory) there.
            "-c", "dynamic_shared_memory_type=mmap");
        _process = Process.Start(info) ?? throw new InvalidOperationException("postgres did not start.");
        _process.OutputDataReceived += (_, e) => AddLog(e.Data);
        _process.ErrorDataReceived += (_, e) => AddLog(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try
        {
            var deadline = Stopwatch.StartNew();
            while (!IsReady())
            {
                if (_process.HasExited)
                {
                    _process.WaitForExit(); // the last lines of its output are read
                    throw new InvalidOperationException($"postgres on port {Port} exited with {_process.ExitCode}:\n{LogTail}");
                }
                if (deadline.Elapsed > TimeSpan.FromSeconds(60))
                {
                    throw new InvalidOperationException($"postgres on port {Port} did not accept connections within 60 s:\n{LogTail}");
                }
                Thread.Sleep(50);
            }
            _processDir = WorkingDirectory(_process.Id);
        }
        catch
        {
            KillAll();
            throw;
        }
    }

    /// <summary>pg_isready exits with 0 only once the server accepts connections (not while it starts or recovers).</summary>
    private bool IsReady()
    {
        var (exitCode, _, _) = Run(ClientToolStartInfo("pg_isready", "-q", "-h", "127.0.0.1", "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", User, "-t", "5"));
        return exitCode == 0;
    }

    private bool Accepts()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// SIGKILL to the postmaster (first, so that it forks nothing more), then to every process left
    /// in the data directory, and waits until they are all gone: the next start would otherwise
    /// find the shared memory still in use.
    /// </summary>
    private void KillAll()
    {
        if (_process is { } process)
        {
            if (!process.HasExited)
            {
                _processDir ??= WorkingDirectory(process.Id);
                process.Kill();
            }
            process.WaitForExit(10_000);
            process.Dispose();
            _process = null;
        }
        var deadline = Stopwatch.StartNew();
        while (Leftovers() is { Count: > 0 } leftovers)
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException($"PostgreSQL processes {string.Join(", ", leftovers)} of port {Port} did not die.");
            }
            foreach (var pid in leftovers)
            {
                _ = kill(pid, 9);
            }
            Thread.Sleep(20);
        }
    }

    /// <summary>The PIDs of processes whose working directory is this server's data directory.</summary>
    private List<int> Leftovers()
    {
        var directories = new[] { _processDir, DataDirectory }.OfType<string>().Distinct().ToArray();
        var pids = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                && pid != Environment.ProcessId
                && WorkingDirectory(pid) is { } cwd
                && directories.Contains(cwd.EndsWith(" (deleted)", StringComparison.Ordinal) ? cwd[..^" (deleted)".Length] : cwd))
            {
                pids.Add(pid);
            }
        }
        return pids;
    }

    private static string? WorkingDirectory(int pid)
    {
        try
        {
            return Directory.ResolveLinkTarget($"/proc/{pid}/cwd", returnFinalTarget: false)?.FullName;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // gone, or not ours to see
        }
    }

    /// <summary>
    /// A killed postmaster leaves its System V shared memory block (its key and id are on line 7 of
    /// postmaster.pid); a restart would reuse it, but a disposed server never restarts. Removed once
    /// no process is attached, so that test runs do not pile them up.
    /// </summary>
    private void RemoveSharedMemory()
    {
        try
        {
            var lines = File.ReadAllLines(Path.Combine(DataDirectory, "postmaster.pid"));
            var fields = lines.Length >= 7 ? lines[6].Split(' ', StringSplitOptions.RemoveEmptyEntries) : [];
            if (fields.Length == 2 && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                _ = shmctl(id, 0, IntPtr.Zero); // IPC_RMID
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // no pid file: the server stopped cleanly, or never started
        }
    }

    private void AddLog(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.Enqueue(line);
                while (_log.Count > LogLines)
                {
                    _log.Dequeue();
                }
            }
        }
    }

    private void RunServerTool(string program, params string[] args)
    {
        var (exitCode, output, errors) = Run(ServerToolStartInfo(program, args));
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{program} exited with {exitCode}:\n{errors}\n{output}");
        }
    }

    private string RunClientTool(string program, params string[] args)
    {
        var (exitCode, output, errors) = Run(ClientToolStartInfo(program, args));
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{program} on port {Port} exited with {exitCode}:\n{errors}");
        }
        return output;
    }

    /// <summary>Runs a program to its end (at most two minutes, then it is killed by its PID).</summary>
    private static (int ExitCode, string Output, string Errors) Run(ProcessStartInfo info)
    {
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{info.FileName} did not start.");
        var errors = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill();
            process.WaitForExit();
            throw new TimeoutException($"{info.FileName} {string.Join(' ', info.ArgumentList)} did not finish within 2 minutes.");
        }
        return (process.ExitCode, output.Result, errors.Result);
    }

    /// <summary>A program that reads or writes a data directory: as the postgres user when we are root (setpriv execs it, no wrapper process).</summary>
    private static ProcessStartInfo ServerToolStartInfo(string program, params string[] args)
    {
        var path = Path.Combine(s_bin.Value, program);
        return IsRoot
            ? StartInfo("setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", "--", path, .. args])
            : StartInfo(path, args);
    }

    /// <summary>A client program: it only connects over TCP, so it runs as whoever we are.</summary>
    private static ProcessStartInfo ClientToolStartInfo(string program, params string[] args)
    {
        var info = StartInfo(Path.Combine(s_bin.Value, program), args);
        info.Environment["PGCONNECT_TIMEOUT"] = "5";
        return info;
    }

    private static ProcessStartInfo StartInfo(string program, string[] args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/", // readable by postgres, unlike the test's folder may be
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        // The server and its tools print in English, whatever locale the machine has: tests match messages.
        info.Environment["LC_MESSAGES"] = "C";
        info.Environment.Remove("PGHOST");
        info.Environment.Remove("PGPORT");
        info.Environment.Remove("PGDATABASE");
        info.Environment.Remove("PGUSER");
        return info;
    }

    /// <summary>
    /// A temporary folder for the data directory and the Unix socket. The postgres user must reach
    /// it: mode 755 (Directory.CreateTempSubdirectory makes it 700), owned by postgres when we are
    /// root, so that initdb can make the data directory in it (mode 700, owned by postgres, as the
    /// server demands) and the server its socket.
    /// </summary>
    private static string NewFolder()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("PostgresServer runs Debian's PostgreSQL binaries: Linux only.");
        }
        var folder = Directory.CreateTempSubdirectory("collab-pg-").FullName;
        try
        {
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            if (IsRoot)
            {
                for (var parent = Path.GetDirectoryName(folder); parent is not null; parent = Path.GetDirectoryName(parent))
                {
                    if ((File.GetUnixFileMode(parent) & UnixFileMode.OtherExecute) == 0)
                    {
                        throw new InvalidOperationException($"The postgres user cannot reach {folder}: {parent} is not searchable by others. Set TMPDIR to a folder it can reach.");
                    }
                }
                var (exitCode, _, errors) = Run(StartInfo("chown", ["-R", "postgres:postgres", folder]));
                if (exitCode != 0)
                {
                    throw new InvalidOperationException($"chown postgres {folder} failed: {errors}");
                }
            }
            return folder;
        }
        catch
        {
            Directory.Delete(folder, recursive: true);
            throw;
        }
    }

    /// <summary>The bin folder of the highest PostgreSQL version installed (/usr/lib/postgresql/VERSION/bin).</summary>
    private static string FindBin()
    {
        const string root = "/usr/lib/postgresql";
        var bin = (Directory.Exists(root) ? Directory.GetDirectories(root) : [])
            .Where(version => File.Exists(Path.Combine(version, "bin", "postgres")))
            .OrderByDescending(version => Version.TryParse(Path.GetFileName(version) + (Path.GetFileName(version).Contains('.') ? "" : ".0"), out var v) ? v : new Version(0, 0))
            .Select(version => Path.Combine(version, "bin"))
            .FirstOrDefault();
        return bin ?? throw new InvalidOperationException($"No PostgreSQL server under {root}/*/bin/postgres: install the postgresql package (tests/prereqs.sh does).");
    }

    private static void Wait(Func<bool> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"Timed out waiting until {what}.");
            }
            Thread.Sleep(50);
        }
    }

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code for two int calls
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    [DllImport("libc", SetLastError = true)]
    private static extern int shmctl(int shmid, int cmd, IntPtr buf);
#pragma warning restore SYSLIB1054
}
