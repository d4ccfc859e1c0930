using Collab.Messages;
using Collab.Ot;
using CollabServer.Documents;
using CollabServer.Storage;

namespace CollabServer.Tests.Documents;

/// <summary>Group commit on its own, over an in-memory store: batches, order, failure, snapshots.</summary>
public sealed class CommitPipelineTests
{
    private readonly InMemoryStorage _storage = new();

    private static Pending Op(int version, string text) =>
        new(new StoredOp(version, TextOperation.Insert(version - 1, text), "c", version, version), new SubmitWork(null, new SubmitRequest { DocId = "doc", BaseVersion = version - 1, OpId = version }));

    private static Rope TextOf(int versions) => Rope.FromString(new string('x', versions));

    [Fact]
    public void WhatWaitsIsCommittedAsOneBatchAndEachSubmitIsAnsweredWithItsVersion()
    {
        var pipeline = new CommitPipeline("doc", new DocumentFileLog(), snapshotInterval: 1000, maxBatch: 10);
        var ops = Enumerable.Range(1, 3).Select(v => Op(v, "x")).ToList();
        ops.ForEach(pipeline.Add);

        var commit = pipeline.Start(TextOf(3), 3, () => _storage.Create("doc"), FenceToken.None, inline: true, _ => { })!;

        Assert.Null(commit.Error);
        Assert.Equal([1, 2, 3], commit.Ops.Select(o => o.Version));
        Assert.True(pipeline.Finish(commit, 3, out var rejected));
        Assert.Empty(rejected);
        Assert.True(pipeline.IsIdle);
        Assert.Equal(3, _storage.OpenExisting("doc")!.ReadOps(0, int.MaxValue).Count);
    }

    [Fact]
    public void WhileACommitIsInFlightTheNextOpsWaitAndGoInTheNextBatch()
    {
        var pipeline = new CommitPipeline("doc", new DocumentFileLog(), snapshotInterval: 1000, maxBatch: 10);
        pipeline.Add(Op(1, "x"));
        var done = new TaskCompletionSource<CommitPipeline.Commit>();
        Assert.Null(pipeline.Start(TextOf(1), 1, () => _storage.Create("doc"), FenceToken.None, inline: false, c => done.SetResult(c)));
        pipeline.Add(Op(2, "x"));
        Assert.Null(pipeline.Start(TextOf(2), 2, () => _storage.Create("doc"), FenceToken.None, inline: true, _ => { })); // one at a time

        var first = pipeline.Drain()!;
        Assert.True(pipeline.Finish(first, 1, out _));
        Assert.False(pipeline.Finish(first, 1, out _)); // taken once
        var second = pipeline.Start(TextOf(2), 2, () => _storage.Create("doc"), FenceToken.None, inline: true, _ => { })!;
        Assert.Equal([2], second.Ops.Select(o => o.Version));
        Assert.True(pipeline.Finish(second, 2, out _));
        Assert.Equal([1, 2], _storage.OpenExisting("doc")!.ReadOps(0, int.MaxValue).Select(o => o.Version));
    }

    [Fact]
    public void AFailedCommitHandsBackItsBatchAndEverythingWaitingBehindIt()
    {
        var pipeline = new CommitPipeline("doc", new DocumentFileLog(), snapshotInterval: 1000, maxBatch: 10);
        _storage.Fail("doc", new IOException("the disk is full"));
        pipeline.Add(Op(1, "x"));
        var commit = pipeline.Start(TextOf(1), 1, () => _storage.Create("doc"), FenceToken.None, inline: true, _ => { })!;
        pipeline.Add(Op(2, "x")); // sequenced over the failing batch

        Assert.IsType<IOException>(commit.Error);
        Assert.True(pipeline.Finish(commit, 0, out var rejected));
        Assert.Equal([1, 2], rejected.Select(p => p.Op.Version));
        Assert.True(pipeline.IsIdle);
        Assert.Empty(_storage.OpenExisting("doc")!.ReadOps(0, int.MaxValue));
    }

    [Fact]
    public void ASnapshotIsWrittenWithTheCommitsAfterEveryIntervalAndCountsOnceComplete()
    {
        var pipeline = new CommitPipeline("doc", new DocumentFileLog(), snapshotInterval: 2, maxBatch: 10);
        for (var v = 1; v <= 2; v++)
        {
            pipeline.Add(Op(v, "x"));
        }
        var commit = pipeline.Start(TextOf(2), 2, () => _storage.Create("doc"), FenceToken.None, inline: true, _ => { })!;

        Assert.True(commit.Chunk is { IsLast: true, Version: 2 });
        Assert.True(pipeline.Finish(commit, 2, out _));
        Assert.Equal(2, pipeline.SnapshotVersion);
        var loaded = _storage.OpenExisting("doc")!.Load();
        Assert.Equal((2, 2, "xx"), (loaded.Version, loaded.SnapshotVersion, loaded.Content.PlainText()));
    }

    [Fact]
    public async Task UnderALogTheStoreTakesTheBatchFirstAndTheCommitEndsOnlyWhenTheLogSaysDurable()
    {
        var log = new HeldCommitLog();
        var pipeline = new CommitPipeline("doc", log, snapshotInterval: 1000, maxBatch: 10);
        pipeline.Add(Op(1, "x"));
        pipeline.Add(Op(2, "x"));
        var done = new TaskCompletionSource<CommitPipeline.Commit>();

        Assert.Null(pipeline.Start(TextOf(2), 2, () => _storage.Create("doc"), new FenceToken(7), inline: false, c => done.SetResult(c)));

        await Collab.Testing.Eventually.TrueAsync(() => Task.FromResult(log.Waiting == 1), "the store's commit hands the batch to the log");
        Assert.False(pipeline.StoreBusy); // the store is the loop's again: reads need not wait for the log
        Assert.Equal(2, _storage.OpenExisting("doc")!.ReadOps(0, int.MaxValue).Count);
        var batch = Assert.Single(log.Appended);
        Assert.Equal(("doc", 7L), (batch.DocId, batch.Epoch));
        Assert.Equal([1, 2], batch.Ops.Select(o => o.Version));
        Assert.Equal(_storage.OpenExisting("doc")!.Incarnation, batch.Incarnation);
        Assert.False(done.Task.IsCompleted);

        log.Release();
        var commit = await done.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Null(commit.Error);
        Assert.True(pipeline.Finish(commit, 2, out var rejected));
        Assert.Empty(rejected);
    }

    [Fact]
    public async Task ALogThatCannotMakeABatchDurableFailsTheCommit()
    {
        var log = new HeldCommitLog();
        var pipeline = new CommitPipeline("doc", log, snapshotInterval: 1000, maxBatch: 10);
        pipeline.Add(Op(1, "x"));
        var done = new TaskCompletionSource<CommitPipeline.Commit>();
        pipeline.Start(TextOf(1), 1, () => _storage.Create("doc"), FenceToken.None, inline: false, c => done.SetResult(c));
        await Collab.Testing.Eventually.TrueAsync(() => Task.FromResult(log.Waiting == 1), "the store's commit hands the batch to the log");

        log.Release(new CommitLogException("the disk is gone"));

        var commit = await done.Task.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.IsType<CommitLogException>(commit.Error);
        Assert.True(pipeline.Finish(commit, 0, out var rejected));
        Assert.Equal([1], rejected.Select(p => p.Op.Version));
    }
}
