using CollabServer;
using Microsoft.Extensions.Options;

// A command (token, key, rebuild), help, or a mistyped command word: it ends here.
if (CommandLine.Run(args) is int exitCode)
{
    return exitCode;
}

var builder = WebApplication.CreateBuilder(CommandConfiguration.ServerOptions(args));

// Logs say what the server did, not what each client got wrong (a flood of bad requests must
// not become a flood of log lines): SignalR's dispatcher logs every refused invocation at Error
// with a stack trace, and ASP.NET Core every request at Information. ErrorCountingFilter logs
// the server's own hub faults instead. Configuration (Logging:LogLevel:...) still decides when it
// names these categories.
foreach (var (category, level) in new[] { ("Microsoft.AspNetCore", LogLevel.Warning), ("Microsoft.AspNetCore.SignalR.Internal.DefaultHubDispatcher", LogLevel.Critical) })
{
    if (builder.Configuration[$"Logging:LogLevel:{category}"] is null)
    {
        builder.Logging.AddFilter(category, level);
    }
}

WebApplication app;
try
{
    builder.Services.AddCollabServer(builder.Configuration, builder.Environment);
    app = builder.Build().UseCollabServer();
}
catch (OptionsValidationException invalid)
{
    return CannotStart([.. invalid.Failures]);
}
catch (InvalidOperationException wrong)
{
    // A setting that cannot be read (not a number, a key too short, two that exclude each other).
    return CannotStart(wrong.Message);
}
try
{
    app.Run();
}
catch (OptionsValidationException invalid)
{
    return CannotStart([.. invalid.Failures]);
}
return 0;

// A wrong setting: say which, and stop.
static int CannotStart(params string[] why)
{
    foreach (var line in why)
    {
        Console.Error.WriteLine($"CollabServer cannot start: {line}");
    }
    return 2;
}

/// <summary>The entry point, public for the test host.</summary>
public partial class Program;
