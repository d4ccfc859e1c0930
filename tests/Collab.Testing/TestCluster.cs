using System.Net.Http.Json;
using System.Text.Json;

namespace Collab.Testing;

/// <summary>
/// A real cluster on 127.0.0.1: one <see cref="RedisServer"/> and N server processes, each with
/// its own id (<c>n1</c>, <c>n2</c>, …) and URL, sharing one data directory, or, with PostgreSQL
/// as the durable tier (<see cref="StartWithPostgresAsync"/>), each with a data directory of its
/// own, as on machines of their own. Leases last
/// <see cref="LeaseTtl"/> (5 s): a takeover after a crash is quick, and a node that a busy machine
/// stalls for a second or two keeps its leases (with 2 s they ran out under load). Disposing kills every
/// process it started, by PID, and removes the data directory.
/// </summary>
public sealed class TestCluster : IAsyncDisposable
{
    public static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(5);

    private readonly ServerProcess?[] _nodes;
    private readonly int[] _ports;
    private readonly string[] _extraArgs;

    private readonly string? _postgres;

    private TestCluster(int count, string[] extraArgs, string? postgres = null)
    {
        _postgres = postgres;
        Redis = new RedisServer();
        DataDir = Directory.CreateTempSubdirectory("collab-cluster-").FullName;
        _nodes = new ServerProcess?[count];
        _ports = [.. Enumerable.Range(0, count).Select(_ => ServerProcess.FreePort())];
        _extraArgs = extraArgs;
    }

    public string DataDir { get; }

    public RedisServer Redis { get; }

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public int Count => _nodes.Length;

    public static async Task<TestCluster> StartAsync(int nodes = 3, params string[] extraArgs)
    {
        var cluster = new TestCluster(nodes, extraArgs);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, nodes).Select(cluster.StartNodeAsync));
            await cluster.WaitAllListedAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A cluster whose durable tier is PostgreSQL (<paramref name="postgres"/>, a connection
    /// string): each node has a data directory of its own (<see cref="NodeDataDir"/>). Only the
    /// first <paramref name="running"/> nodes start; the others can join later with empty disks.
    /// </summary>
    public static async Task<TestCluster> StartWithPostgresAsync(string postgres, int nodes = 3, int? running = null, params string[] extraArgs)
    {
        var cluster = new TestCluster(nodes, extraArgs, postgres);
        try
        {
            await Task.WhenAll(Enumerable.Range(0, running ?? nodes).Select(cluster.StartNodeAsync));
            await cluster.WaitAllListedAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Node <paramref name="index"/>'s data directory: its own with PostgreSQL, else the shared one.</summary>
    public string NodeDataDir(int index) => _postgres is null ? DataDir : Path.Combine(DataDir, NodeId(index));

    /// <summary>Deletes a stopped node's data directory, as when its machine is lost.</summary>
    public void WipeDisk(int index)
    {
        if (_nodes[index] is { HasExited: false })
        {
            throw new InvalidOperationException($"{NodeId(index)} is still running.");
        }
        if (Directory.Exists(NodeDataDir(index)))
        {
            Directory.Delete(NodeDataDir(index), recursive: true);
        }
    }

    public static string NodeId(int index) => $"n{index + 1}";

    public Uri Url(int index) => new($"http://127.0.0.1:{_ports[index]}");

    public ServerProcess Node(int index) => _nodes[index] ?? throw new InvalidOperationException($"{NodeId(index)} is not running.");

    public int IndexOf(Uri url) => Array.FindIndex(_ports, p => p == url.Port);

    /// <summary>Starts (or starts again) node <paramref name="index"/> on its port and waits until it is ready.</summary>
    public async Task StartNodeAsync(int index)
    {
        _nodes[index]?.Dispose();
        var dataDir = NodeDataDir(index);
        Directory.CreateDirectory(dataDir);
        _nodes[index] = await ServerProcess.StartDllAsync(ServerProcess.ServerDll, dataDir, _ports[index], waitReady: true,
        [
            $"--Collab:DataDir={dataDir}",
            .. _postgres is null ? Array.Empty<string>() : [$"--Collab:Postgres={_postgres}"],
            $"--Collab:Redis={Redis.Configuration}",
            $"--Collab:NodeId={NodeId(index)}",
            $"--Collab:NodeUrl={Url(index)}",
            $"--Collab:LeaseTtl={LeaseTtl}",
            "--Collab:Sync=Normal",
            .. _extraArgs,
        ]);
    }

    /// <summary>Every running node is in every other's <c>GET /api/cluster</c>.</summary>
    public async Task WaitAllListedAsync()
    {
        var running = Enumerable.Range(0, Count).Where(i => _nodes[i] is { HasExited: false }).ToList();
        await Eventually.TrueAsync(async () =>
        {
            foreach (var i in running)
            {
                var listed = await NodesAsync(i);
                if (!running.All(j => listed.Contains(NodeId(j))))
                {
                    return false;
                }
            }
            return true;
        }, "every node lists every running node");
    }

    /// <summary>The node ids <c>GET /api/cluster</c> of node <paramref name="index"/> lists.</summary>
    public async Task<List<string>> NodesAsync(int index)
    {
        var nodes = await Http.GetFromJsonAsync<JsonElement>(new Uri(Url(index), "/api/cluster"));
        return [.. nodes.EnumerateArray().Select(n => n.GetProperty("node").GetString()!)];
    }

    /// <summary>The index of the node that owns <paramref name="docId"/>, asked of node <paramref name="via"/>.</summary>
    public async Task<int> OwnerAsync(string docId, int via = 0)
    {
        var route = await Http.GetFromJsonAsync<JsonElement>(new Uri(Url(via), $"/api/route/{docId}"));
        return IndexOf(new Uri(route.GetProperty("node").GetString()!));
    }

    /// <summary>The value of a Prometheus counter or gauge on node <paramref name="index"/> (0 when absent).</summary>
    public async Task<double> MetricAsync(int index, string name)
    {
        var text = await Http.GetStringAsync(new Uri(Url(index), "/metrics"));
        return text.Split('\n')
            .Where(l => l.StartsWith(name, StringComparison.Ordinal) && (l.Length == name.Length || l[name.Length] is ' ' or '{'))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            node?.Dispose();
        }
        Redis.Dispose();
        Http.Dispose();
        await Task.Yield();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
