namespace CollabServer;

/// <summary>
/// The configuration the server and its own commands (<c>token</c>, <c>rebuild</c>) read: the same
/// sources in the same order (appsettings.json and appsettings.{Environment}.json beside the
/// binaries, the environment, then the command line), so a key set for the server serves its
/// commands too.
/// </summary>
internal static class CommandConfiguration
{
    /// <summary>
    /// How the server's builder is made. What the server ships (wwwroot: the pages and the editor
    /// bundle) sits beside its binaries, so a published server runs from any working directory;
    /// only the data directory default (./data) is relative to where the command was typed.
    /// <c>--contentRoot</c> still overrides this.
    /// </summary>
    public static WebApplicationOptions ServerOptions(string[] args) => new()
    {
        Args = args,
        ContentRootPath = new ConfigurationBuilder().AddEnvironmentVariables("ASPNETCORE_").AddCommandLine(args).Build()[WebHostDefaults.ContentRootKey]
            ?? AppContext.BaseDirectory,
    };

    public static IConfiguration Build(IEnumerable<string> args) => WebApplication.CreateBuilder(ServerOptions([.. args])).Configuration;
}
