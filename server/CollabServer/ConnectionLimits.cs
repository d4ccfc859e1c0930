using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace CollabServer;

/// <summary>
/// How many TCP connections Kestrel keeps at once. Every connection holds a file descriptor, and
/// so does every open document database and log segment: a flood of idle connections must meet a
/// limit that refuses the next one cleanly (Kestrel closes it and counts it in
/// <c>kestrel_rejected_connections_total</c>) long before the process runs out of descriptors,
/// which would stop it opening documents and then take it down. A quarter of the budget is for
/// plain HTTP connections (REST, and hub connections before they upgrade), the rest for
/// WebSockets, which Kestrel counts apart once upgraded.
/// </summary>
internal sealed class ConnectionLimits(IOptions<CollabOptions> options) : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        if (Budget(options.Value, OpenFileLimit()) is not { } budget)
        {
            return;
        }
        var plain = Math.Max(1, budget / 4);
        kestrel.Limits.MaxConcurrentConnections = plain;
        kestrel.Limits.MaxConcurrentUpgradedConnections = Math.Max(1, budget - plain);
    }

    /// <summary>
    /// <see cref="CollabOptions.MaxConnections"/>, or the open-file limit less the headroom
    /// (<see cref="CollabOptions.FileHeadroom"/>, or a quarter of the limit when more), and never
    /// less than half the limit. Null when neither is known.
    /// </summary>
    internal static long? Budget(CollabOptions o, long? fileLimit) =>
        o.MaxConnections is { } set ? set
        : fileLimit is { } limit ? Math.Max(limit / 2, limit - Math.Max(o.FileHeadroom, limit / 4))
        : null;

    /// <summary>The process's soft limit on open files (the runtime raises it to the hard limit at start), or null where it cannot be read.</summary>
    internal static long? OpenFileLimit()
    {
        var resource = OperatingSystem.IsLinux() ? 7 : OperatingSystem.IsMacOS() ? 8 : -1; // RLIMIT_NOFILE
        if (resource < 0 || getrlimit(resource, out var limit) != 0 || limit.Current == ulong.MaxValue)
        {
            return null;
        }
        return (long)Math.Min(limit.Current, int.MaxValue);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrlimit(int resource, out RLimit limit);
}
