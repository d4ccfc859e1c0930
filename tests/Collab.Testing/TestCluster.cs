using System.Net.Http.Json;
using System.Text.Json;

namespace Collab.Testing;

/// <summary>
/// A real cluster on 127.0.0.1: one <see cref="RedisServer"/> and N server processes sharing one
/// data directory, each with its own id (<c>n1</c>, <c>n2</c>, …) and URL. Leases last
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

    private TestCluster(int count, string[] extraArgs)
    {
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

    public static string NodeId(int index) => $"n{index + 1}";

    public Uri Url(int index) => new($"http://127.0.0.1:{_ports[index]}");

    public ServerProcess Node(int index) => _nodes[index] ?? throw new InvalidOperationException($"{NodeId(index)} is not running.");

    public int IndexOf(Uri url) => Array.FindIndex(_ports, p => p == url.Port);

    /// <summary>Starts (or starts again) node <paramref name="index"/> on its port and waits until it is ready.</summary>
    public async Task StartNodeAsync(int index)
    {
        _nodes[index]?.Dispose();
        _nodes[index] = await ServerProcess.StartDllAsync(ServerProcess.ServerDll, DataDir, _ports[index], waitReady: true,
        [
            $"--Collab:DataDir={DataDir}",
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
