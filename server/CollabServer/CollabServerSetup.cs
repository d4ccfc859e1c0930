using System.Text.Json.Serialization;
using Collab;
using CollabServer.Api;
using CollabServer.Auth;
using CollabServer.Backup;
using CollabServer.Cluster;
using CollabServer.Diagnostics;
using CollabServer.Documents;
using CollabServer.History;
using CollabServer.Hubs;
using CollabServer.Storage;
using CollabServer.Storage.Postgres;
using MessagePack;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace CollabServer;

/// <summary>The server's wiring: its services (<see cref="AddCollabServer"/>) and its endpoints (<see cref="UseCollabServer"/>).</summary>
public static class CollabServerSetup
{
    /// <summary>
    /// Registers everything the server runs: options (checked when it starts, see
    /// <see cref="CollabOptionsValidator"/>), metrics, storage, the documents, the single node's or
    /// the cluster's ownership, backup, retention, access control, and SignalR.
    /// </summary>
    public static IServiceCollection AddCollabServer(this IServiceCollection services, IConfiguration configuration, IHostEnvironment environment)
    {
        services.AddOptions<CollabOptions>().Bind(configuration.GetSection(CollabOptions.Section)).ValidateOnStart();
        services.AddSingleton<IValidateOptions<CollabOptions>, CollabOptionsValidator>();
        // Which parts run depends on the settings: read them typed once, here.
        var settings = configuration.GetSection(CollabOptions.Section).Get<CollabOptions>() ?? new CollabOptions();

        // First: the start-up work runs before the other hosted services and before requests.
        services.AddHostedService<StartupWork>();
        services.AddSingleton<CollabMetrics>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter(CollabMetrics.MeterName)
            // Connections open, upgraded and refused at the limit (ConnectionLimits).
            .AddMeter("Microsoft.AspNetCore.Server.Kestrel")
            .AddProcessInstrumentation()
            .AddRuntimeInstrumentation()
            // Every scrape reads the instruments afresh (the exporter caches a scrape for 300 ms by default).
            .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
        services.AddSingleton<IConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>, ConnectionLimits>();
        services.AddSingleton<WriteBudget>();
        services.AddSingleton<DocumentCatalog>();
        if (settings.UsesPostgres)
        {
            // PostgreSQL is the durable tier (docs/OPERATIONS.md, "PostgreSQL"): the commit log,
            // and where a document's existence, life and epoch are; the SQLite files are working copies.
            services.AddSingleton(_ => new PostgresDatabase(settings.Postgres!));
            services.AddSingleton<PostgresCommitLog>();
            services.AddSingleton<ICommitLog>(provider => provider.GetRequiredService<PostgresCommitLog>());
            services.AddSingleton<PostgresStorage>();
            services.AddSingleton<IDocumentStorage>(provider => provider.GetRequiredService<PostgresStorage>());
            services.AddSingleton<IDocumentRedirects, PostgresRedirects>();
        }
        else
        {
            services.AddSingleton<IDocumentStorage>(provider => provider.GetRequiredService<DocumentCatalog>());
            services.AddSingleton<IDocumentRedirects, FileRedirects>();
        }
        services.TryAddSingleton<ICommitLog>(provider =>
        {
            var o = provider.GetRequiredService<IOptions<CollabOptions>>().Value;
            if (o.CommitLog == CommitLogMode.Document)
            {
                return new DocumentFileLog();
            }
            // A folder per node: nodes sharing a data directory each write their own log and read every one at start.
            var node = string.IsNullOrEmpty(o.Redis) ? "local" : o.NodeId ?? "local";
            return new NodeCommitLog(Path.Combine(o.DataDir, "log"), node, o.Sync != SyncMode.Off, o.LogSegmentBytes, o.LogCheckpointInterval,
                provider.GetRequiredService<DocumentCatalog>(), provider.GetRequiredService<CollabMetrics>(), provider.GetRequiredService<ILogger<NodeCommitLog>>());
        });
        services.AddSingleton<ICommitListener>(provider => provider.GetRequiredService<CollabMetrics>());
        if (!string.IsNullOrEmpty(settings.Backup.Dir))
        {
            // Continuous backup: told of every commit, ships it off the commit path (docs/OPERATIONS.md, "Backup").
            services.AddSingleton<BackupShipper>();
            services.AddSingleton<ICommitListener>(provider => provider.GetRequiredService<BackupShipper>());
            services.AddHostedService(provider => provider.GetRequiredService<BackupShipper>());
        }
        if (!string.IsNullOrEmpty(settings.Redis))
        {
            // A cluster node (docs/OPERATIONS.md, "Cluster"): leases and routing through Redis,
            // draining on SIGTERM, REST calls about other nodes' documents forwarded to them.
            services.AddSingleton<RedisOwnership>();
            services.AddSingleton<IDocumentOwnership>(provider => provider.GetRequiredService<RedisOwnership>());
            services.AddHostedService(provider => provider.GetRequiredService<RedisOwnership>());
            services.AddHostedService<ClusterDrain>();
            services.AddHttpForwarder();
        }
        else
        {
            services.AddSingleton<IDocumentOwnership, SingleNodeOwnership>();
        }
        var authenticated = services.AddCollabAuth(configuration, environment);
        services.AddSingleton(new AccessMode(authenticated));
        services.AddSingleton<DocumentRegistry>();
        services.AddSingleton(TimeProvider.System);
        services.AddHostedService<RetentionService>();
        services.AddRestLimits(); // REST requests, past reads and creations per subject (Api/RestLimits.cs)
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull);

        services
            .AddSignalR(o =>
            {
                o.EnableDetailedErrors = false;
                o.AddFilter<ErrorCountingFilter>();
            })
            .AddJsonProtocol(o => o.PayloadSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)
            .AddMessagePackProtocol(o => o.SerializerOptions = MessagePackSerializerOptions.Standard
                .WithResolver(Collab.Messages.StrictUtf8Resolver.Instance)
                .WithSecurity(MessagePackSecurity.UntrustedData));
        services.AddOptions<HubOptions>().Configure<IOptions<CollabOptions>>((hub, collab) => hub.MaximumReceiveMessageSize = collab.Value.MaxMessageBytes);
        CompleteMessageProtocol.WrapAll(services);
        services.AddSingleton<HubLifetimeManager<CollabHub>, CollabLifetimeManager>();
        return services;
    }

    /// <summary>The middleware and endpoints: access control, forwarding to owners, the pages, the hub, REST, metrics and health.</summary>
    public static WebApplication UseCollabServer(this WebApplication app)
    {
        var authenticated = app.Services.GetRequiredService<AccessMode>().Authenticated;
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseCollabAuth(authenticated);
        app.UseRestLimits();
        app.UseOwnerForwarding();
        app.UseStaticFiles();

        app.MapGet("/", () => Page(app, "index.html"));
        // A renamed document's old address leads to its new one (PROTOCOL §7, DELETE ?movedTo=);
        // 302, not 301: the old name may be used again, and then it no longer redirects.
        app.MapGet("/d/{docId}", (string docId, DocumentRegistry registry) =>
            DocumentId.IsValid(docId) && registry.MovedTo(docId) is { } target
                ? Results.Redirect($"/d/{Uri.EscapeDataString(target)}")
                : Page(app, "doc.html"));
        var hub = app.MapHub<CollabHub>(Collab.Messages.HubNames.Path, o =>
        {
            o.Transports = HttpTransportType.WebSockets | HttpTransportType.LongPolling;
            // A connection ends when its token does; the client reconnects with a fresh one.
            o.CloseOnAuthenticationExpiration = true;
        });
        if (authenticated)
        {
            hub.RequireAuthorization();
        }
        app.MapDocumentsApi();
        app.MapAdminApi();
        app.MapClusterApi();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/readyz", (DocumentCatalog catalog, IDocumentOwnership ownership) =>
            !Directory.Exists(catalog.DataDir) ? Results.Problem(type: Collab.ErrorCodes.Unavailable, title: "The data directory is missing.", statusCode: 503)
            : !ownership.Ready ? Results.Problem(type: Collab.ErrorCodes.Unavailable, title: "This node cannot reach Redis, or is shutting down.", statusCode: 503)
            : Results.Text("ready"));
        return app;
    }

    private static IResult Page(WebApplication app, string name) => app.Environment.WebRootFileProvider.GetFileInfo(name) is { Exists: true, PhysicalPath: { } path }
        ? Results.File(path, "text/html; charset=utf-8")
        : Results.Problem(title: $"{name} is not in this build's wwwroot ({app.Environment.ContentRootPath}).", statusCode: 500);

    /// <summary>Whether requests need a token (a signing key or an issuer is configured).</summary>
    private sealed record AccessMode(bool Authenticated);

    /// <summary>
    /// What must happen once before the server takes requests: the thread pool sized, the data
    /// directory made, the documents brought up to date from the commit log (after a crash), the
    /// load path warmed up, every instrument created (so the first scrape has them), and a line in
    /// the log saying where the data is.
    /// </summary>
    private sealed class StartupWork(IOptions<CollabOptions> options, DocumentRegistry registry, ICommitLog commitLog, IDocumentStorage storage, CollabMetrics metrics, ILogger<StartupWork> logger, IServiceProvider services) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var settings = options.Value;
            ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
            ThreadPool.SetMinThreads(Math.Max(minWorkers, settings.MinThreads), minIo);
            _ = registry; // made now: it creates the documents' instruments
            if (services.GetService<BackupShipper>() is { } shipper)
            {
                metrics.ObserveBackup(() => shipper.LagSeconds, () => shipper.LagBytes);
            }
            Warmup.Run(settings.DocumentSync);
            Directory.CreateDirectory(settings.DataDir);
            commitLog.Recover(storage);
            Log.Started(logger, Path.GetFullPath(settings.DataDir), settings.Sync, settings.UsesPostgres ? "PostgreSQL" : settings.CommitLog.ToString());
            if (services.GetService<RedisOwnership>() is { } cluster)
            {
                Log.ClusterNode(logger, cluster.NodeId, cluster.NodeUrl, settings.Redis!, settings.LeaseTtl);
            }
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
