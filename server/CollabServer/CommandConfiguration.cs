namespace CollabServer;

/// <summary>
/// The configuration a command of the server's own (<c>token</c>, <c>rebuild</c>) reads: the
/// same sources as the server, in the same order (appsettings.json beside the binaries, the
/// environment, then the command line), so a key set for the server serves its commands too.
/// </summary>
internal static class CommandConfiguration
{
    public static IConfiguration Build(IEnumerable<string> args) =>
        new ConfigurationBuilder()
            .SetBasePath(AppContext.BaseDirectory)
            .AddJsonFile("appsettings.json", optional: true)
            .AddEnvironmentVariables()
            .AddCommandLine([.. args])
            .Build();
}
