using System.Text.Json.Serialization;
using CollabServer;
using CollabServer.Api;
using CollabServer.Diagnostics;
using CollabServer.Documents;
using CollabServer.Hubs;
using MessagePack;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

var builder = WebApplication.CreateBuilder(args);

builder.Services.AddOptions<CollabOptions>().Bind(builder.Configuration.GetSection(CollabOptions.Section));
builder.Services.AddSingleton<CollabMetrics>();
builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
    .AddMeter(CollabMetrics.MeterName)
    .AddProcessInstrumentation()
    .AddRuntimeInstrumentation()
    .AddPrometheusExporter());
builder.Services.AddSingleton<DocumentRegistry>();
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
        .WithSecurity(MessagePackSecurity.UntrustedData));
builder.Services.AddSingleton<HubLifetimeManager<CollabHub>, CollabLifetimeManager>();

var app = builder.Build();
var options = app.Services.GetRequiredService<IOptions<CollabOptions>>().Value;
ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
ThreadPool.SetMinThreads(Math.Max(minWorkers, options.MinThreads), minIo);
// Create the instruments now, so the exporter has them from the first scrape.
app.Services.GetRequiredService<DocumentRegistry>();
Warmup.Run(options.Sync);
Directory.CreateDirectory(options.DataDir);
Log.Started(app.Logger, Path.GetFullPath(options.DataDir), options.Sync);

app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseStaticFiles();

app.MapGet("/", () => Results.File(Path.Combine(app.Environment.WebRootPath ?? "wwwroot", "index.html"), "text/html; charset=utf-8"));
app.MapGet("/d/{docId}", (string docId) => Results.File(Path.Combine(app.Environment.WebRootPath ?? "wwwroot", "doc.html"), "text/html; charset=utf-8"));
app.MapHub<CollabHub>(Collab.Messages.HubNames.Path, o => o.Transports = HttpTransportType.WebSockets | HttpTransportType.LongPolling);
app.MapDocumentsApi();
app.MapPrometheusScrapingEndpoint("/metrics");
app.MapGet("/healthz", () => Results.Text("ok"));
app.MapGet("/readyz", (DocumentRegistry registry) =>
    Directory.Exists(registry.Options.DataDir) ? Results.Text("ready") : Results.Problem(type: Collab.ErrorCodes.Unavailable, title: "The data directory is missing.", statusCode: 503));

app.Run();

/// <summary>The entry point, public for the test host.</summary>
public partial class Program;
