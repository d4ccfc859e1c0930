using CollabServer.Documents;

namespace CollabServer.Tests.Documents;

/// <summary>Work parked behind a message that needs every op committed keeps its arrival order.</summary>
public sealed class ParkedWorkTests
{
    private readonly ParkedWork _parked = new();
    private readonly List<Work> _ran = [];

    [Fact]
    public void WorkThatNeedsCommitsWaitsForAnIdlePipelineAndEverythingAfterItWaitsToo()
    {
        var read = new ReadText();
        var ops = new ReadOps(0, 10);
        var later = new ReadText();

        Assert.False(_parked.Park(read, committing: true)); // needs nothing: runs now
        Assert.True(_parked.Park(ops, committing: true));
        Assert.True(_parked.Park(later, committing: false)); // behind ops, however little it needs
        Assert.False(_parked.IsEmpty);

        _parked.RunReady(idle: () => false, closed: () => false, _ran.Add);
        Assert.Empty(_ran);

        _parked.RunReady(idle: () => true, closed: () => false, _ran.Add);
        Assert.Equal([ops, later], _ran);
        Assert.True(_parked.IsEmpty);
        Assert.False(_parked.Park(new ReadOps(0, 1), committing: false));
    }

    [Fact]
    public async Task OnceTheActorClosesParkedWorkGoesBackToTheRegistry()
    {
        var ops = new ReadOps(0, 10);
        var read = new ReadText();
        _parked.Park(ops, committing: true);
        _parked.Park(read, committing: true);

        _parked.RunReady(idle: () => false, closed: () => true, _ran.Add);

        Assert.Empty(_ran);
        Assert.True(_parked.IsEmpty);
        await Assert.ThrowsAsync<ActorClosedException>(() => ops.Task);
        await Assert.ThrowsAsync<ActorClosedException>(() => read.Task);
    }
}
