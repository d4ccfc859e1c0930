namespace CollabServer.Tests.Infrastructure;

/// <summary>A test class with its own server and data directory, both gone after each test.</summary>
public abstract class HostedTest(IDictionary<string, string?>? settings = null) : IAsyncLifetime
{
    protected TestHost Host { get; } = new(settings: settings);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await Host.DisposeAsync();
        Host.DeleteData();
    }
}
