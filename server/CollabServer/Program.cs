using System.Text.Json.Serialization;
using CollabServer;
using CollabServer.Api;
using CollabServer.Auth;
using CollabServer.Backup;
using CollabServer.Cluster;
using CollabServer.Diagnostics;
using CollabServer.Documents;
using CollabServer.Hubs;
using CollabServer.Storage;
using MessagePack;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

if (args is ["token", .. var tokenArgs])
{
    return TokenCommand.Run(tokenArgs);
}
if (args is ["rebuild", .. var rebuildArgs])
{
    return RebuildCommand.Run(rebuildArgs);
}

var builder = WebApplication.CreateBuilder(CommandConfiguration.ServerOptions(args));

// Logs say what the server did, not what each client got wrong (a flood of bad requests must
// not become a flood of log lines): SignalR's
// dispatcher logs every refused invocation at Error with a stack trace, and ASP.NET Core every
// request at Information. ErrorCountingFilter logs the server's own hub faults instead.
// Configuration (Logging:LogLevel:...) still decides when it names these categories.
foreach (var (category, level) in new[] { ("Microsoft.AspNetCore", LogLevel.Warning), ("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.Critical) })
{
    if (builder.Configuration[$"Logging:LogLevel:{category}"] is null)
    {
        builder.Logging.AddFilter(category, level);
    }
}

builder.Services.AddOptions<CollabOptions>().Bind(builder.Configuration.GetSection(CollabOptions.Section));
builder.Services.AddSingleton<CollabMetrics>();
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
    .AddMeter(CollabMetrics.MeterName)
    .AddProcessInstrumentation()
    .AddRuntimeInstrumentation()
    // Every scrape reads the instruments afresh (the exporter caches a scrape for 300 ms by default).
    .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0));
builder.Services.AddSingleton<DocumentCatalog>();
builder.Services.AddSingleton<ICommitListener>(services => services.GetRequiredService<CollabMetrics>());
if (!string.IsNullOrEmpty(builder.Configuration[$"{CollabOptions.Section}:Backup:Dir"]))
{
    // Continuous backup: told of every commit, ships it off the commit path (docs/OPERATIONS.md, "Backup").
    builder.Services.AddSingleton<BackupShipper>();
    builder.Services.AddSingleton<ICommitListener>(services => services.GetRequiredService<BackupShipper>());
    builder.Services.AddHostedService(services => services.GetRequiredService<BackupShipper>());
}
if (!string.IsNullOrEmpty(builder.Configuration[$"{CollabOptions.Section}:{nameof(CollabOptions.Redis)}"]))
{
    // A cluster node (docs/OPERATIONS.md, "Cluster"): leases and routing through Redis, draining on SIGTERM,
    // REST calls about other nodes' documents forwarded to them.
    builder.Services.AddSingleton<RedisOwnership>();
    builder.Services.AddSingleton<IDocumentOwnership>(services => services.GetRequiredService<RedisOwnership>());
    builder.Services.AddHostedService(services => services.GetRequiredService<RedisOwnership>());
    builder.Services.AddHostedService<ClusterDrain>();
    builder.Services.AddHttpForwarder();
}
else
{
    builder.Services.AddSingleton<IDocumentOwnership, SingleNodeOwnership>();
}
var authenticated = builder.AddCollabAuth();
builder.Services.AddSingleton<DocumentRegistry>();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddHostedService<CollabServer.History.RetentionService>();
builder.Services.AddProblemDetails();
builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull);

var maxMessage = builder.Configuration.GetValue<long?>($"{CollabOptions.Section}:{nameof(CollabOptions.MaxMessageBytes)}") ?? new CollabOptions().MaxMessageBytes;
builder.Services
    .AddSignalR(o =>
    {
        o.MaximumReceiveMessageSize = maxMessage;
        o.EnableDetailedErrors = false;
        o.AddFilter<ErrorCountingFilter>();
    })
    .AddJsonProtocol(o => o.PayloadSerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)
    .AddMessagePackProtocol(o => o.SerializerOptions = MessagePackSerializerOptions.Standard
        .WithResolver(Collab.Messages.StrictUtf8Resolver.Instance)
        .WithSecurity(MessagePackSecurity.UntrustedData));
CompleteMessageProtocol.WrapAll(builder.Services);
builder.Services.AddSingleton<HubLifetimeManager<CollabHub>, CollabLifetimeManager>();

var app = builder.Build();
var options = app.Services.GetRequiredService<IOptions<CollabOptions>>().Value;
ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, options.MinThreads), minIo);
// Create the instruments now, so the exporter has them from the first scrape.
app.Services.GetRequiredService<DocumentRegistry>();
if (app.Services.GetService<BackupShipper>() is { } shipper)
{
    app.Services.GetRequiredService<CollabMetrics>().ObserveBackup(() => shipper.LagSeconds, () => shipper.LagBytes);
}
Warmup.Run(options.Sync);
Directory.CreateDirectory(options.DataDir);
Log.Started(app.Logger, Path.GetFullPath(options.DataDir), options.Sync);
if (app.Services.GetService<RedisOwnership>() is { } cluster)
{
    Log.ClusterNode(app.Logger, cluster.NodeId, cluster.NodeUrl, options.Redis!, options.LeaseTtl);
}

app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseCollabAuth(authenticated);
app.UseOwnerForwarding();
app.UseStaticFiles();

app.MapGet("/", () => Page("index.html"));
app.MapGet("/d/{docId}", (string docId) => Page("doc.html"));
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
app.MapGet("/readyz", (DocumentRegistry registry) =>
    !Directory.Exists(registry.Catalog.DataDir) ? Results.Problem(type: Collab.ErrorCodes.Unavailable, title: "The data directory is missing.", statusCode: 503)
    : !registry.Ownership.Ready ? Results.Problem(type: Collab.ErrorCodes.Unavailable, title: "This node cannot reach Redis, or is shutting down.", statusCode: 503)
    : Results.Text("ready"));

app.Run();
return 0;

IResult Page(string name) => app.Environment.WebRootFileProvider.GetFileInfo(name) is { Exists: true, PhysicalPath: { } path }
    ? Results.File(path, "text/html; charset=utf-8")
    : Results.Problem(title: $"{name} is not in this build's wwwroot ({app.Environment.ContentRootPath}).", statusCode: 500);

/// <summary>The entry point, public for the test host.</summary>
public partial class Program;
