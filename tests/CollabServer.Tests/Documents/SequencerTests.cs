using Collab;
using Collab.Ot;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Storage;

namespace CollabServer.Tests.Documents;

/// <summary>The sequencer alone: no SQLite, no SignalR. The op log behind its window is a list.</summary>
public sealed class SequencerTests
{
    private sealed class ListLog(List<StoredOp> ops) : IOpLog
    {
        public int Opened { get; private set; }

        public IOpLog Open()
        {
            Opened++;
            return this;
        }

        public int Reads { get; private set; }

        public List<StoredOp> ReadOps(int after, int upTo, int limit = int.MaxValue)
        {
            Reads++;
            return ops.Where(o => o.Version > after && o.Version <= upTo).Take(limit).ToList();
        }

        public int? FindOp(string clientId, long opId) => ops.FirstOrDefault(o => o.ClientId == clientId && o.OpId == opId)?.Version;

        public long MaxOpId(string clientId) => ops.Where(o => o.ClientId == clientId).Select(o => o.OpId).DefaultIfEmpty(long.MinValue).Max();
    }

    private static Sequencer Make(string text = "", int opWindow = 1000, int maxLength = 1000, ListLog? log = null, int version = 0, IReadOnlyList<StoredOp>? recent = null, int maxTransformOps = 1000, long opWindowBytes = 1 << 20) =>
        new(new LoadedDocument(Rope.FromString(text), version, 0, recent ?? []), opWindow, opWindowBytes, maxLength, maxTransformOps, () => log?.Open());

    private static StoredOp Commit(Sequencer s)
    {
        var last = s.OpsSince(s.Version)[^1];
        s.Committed(s.WorkVersion, s.WorkContent);
        return last;
    }

    [Fact]
    public void ConcurrentInsertsAtOneSpotPutTheLaterOneFirst()
    {
        var s = Make("ab");
        Assert.Equal(SequenceOutcome.Sequenced, s.Sequence("x", 1, TextOperation.Insert(1, "X"), 0, 0).Outcome);
        // Made at version 0 too: it is transformed over X and, arriving later, wins the tie (PROTOCOL §1).
        var second = s.Sequence("y", 1, TextOperation.Insert(1, "Y"), 0, 0);
        Assert.Equal(2, second.Version);
        Assert.Equal("aYXb", s.WorkContent.ToString());
        Assert.Equal("ab", s.Content.PlainText()); // nothing is committed yet
        s.Committed(2, s.WorkContent);
        Assert.Equal((2, "aYXb"), (s.Version, s.Content.PlainText()));
    }

    [Fact]
    public void AResubmissionIsAnsweredFromThePendingOpTheWindowOrTheLog()
    {
        var older = new StoredOp(1, TextOperation.Insert(0, "a"), "c", 7, 0);
        var log = new ListLog([older]);
        var s = Make("a", opWindow: 0, log: log, version: 1);
        Assert.Equal(new Sequenced(SequenceOutcome.AlreadyCommitted, 1, null), s.Sequence("c", 7, TextOperation.Insert(0, "zzz"), 0, 0));

        var first = s.Sequence("c", 8, TextOperation.Insert(1, "b"), 1, 0);
        Assert.Equal(new Sequenced(SequenceOutcome.AlreadyPending, 2, null), s.Sequence("c", 8, TextOperation.Insert(1, "b"), 1, 0));
        s.Committed(2, s.WorkContent);
        Assert.Equal(new Sequenced(SequenceOutcome.AlreadyCommitted, first.Version, null), s.Sequence("c", 8, TextOperation.Insert(1, "b"), 1, 0));
        Assert.Equal("ab", s.WorkContent.ToString());
    }

    [Fact]
    public void AnOpIdAboveTheClientsHighestIsNewWithoutAskingTheLogPerOp()
    {
        var log = new ListLog([new StoredOp(1, TextOperation.Insert(0, "a"), "c", 1, 0)]);
        var s = Make("a", log: log, version: 1, recent: []);
        for (var i = 2; i <= 20; i++)
        {
            s.Sequence("c", i, TextOperation.Insert(0, "x"), s.WorkVersion, 0);
        }
        // One look at the log for the client's highest op id, none per op after it.
        Assert.Equal(1, log.Opened);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(2)]
    public void ABaseVersionOutsideTheHistoryIsUnknownVersionAndChangesNothing(int baseVersion)
    {
        var s = Make("ab", version: 1, recent: [new StoredOp(1, TextOperation.Insert(0, "ab"), "c", 1, 0)]);
        var error = Assert.Throws<CollabError>(() => s.Sequence("c", 2, TextOperation.Insert(0, "x"), baseVersion, 0));
        Assert.Equal(ErrorCodes.UnknownVersion, error.Code);
        Assert.Equal((1, "ab"), (s.WorkVersion, s.WorkContent.ToString()));
    }

    [Fact]
    public void ABaseVersionOlderThanTheWindowAndTheLogIsUnknownVersion()
    {
        // The window holds versions 3..4 only and the log has nothing older.
        var recent = new[] { new StoredOp(3, TextOperation.Insert(0, "c"), "c", 3, 0), new StoredOp(4, TextOperation.Insert(0, "d"), "c", 4, 0) };
        var s = Make("dcab", version: 4, recent: recent, log: new ListLog([.. recent]));
        var error = Assert.Throws<CollabError>(() => s.Sequence("x", 1, TextOperation.Insert(0, "x"), 1, 0));
        Assert.Equal(ErrorCodes.UnknownVersion, error.Code);
    }

    [Fact]
    public void ABaseMoreThanMaxTransformOpsBehindIsUnknownVersionWithoutReadingTheLog()
    {
        var log = new ListLog([]);
        var s = Make(maxTransformOps: 10, log: log, opWindow: 0);
        for (var i = 1; i <= 11; i++)
        {
            s.Sequence("c", i, TextOperation.Insert(0, "x"), i - 1, 0);
        }
        // 11 ops behind: refused before any op is read or transformed, so the work one op costs is bounded.
        var error = Assert.Throws<CollabError>(() => s.Sequence("late", 1, TextOperation.Insert(0, "y"), 0, 0));
        Assert.Equal(ErrorCodes.UnknownVersion, error.Code);
        Assert.Equal(0, log.Reads);
        Assert.Equal(11, s.WorkVersion);
        Assert.Equal(SequenceOutcome.Sequenced, s.Sequence("late", 1, TextOperation.Insert(0, "y"), 1, 0).Outcome);
    }

    [Fact]
    public void OpsOlderThanTheWindowAreReadFromTheLogAndTransformedOver()
    {
        var ops = new List<StoredOp>
        {
            new(1, TextOperation.Insert(0, "hello"), "c", 1, 0),
            new(2, TextOperation.Insert(5, " world"), "c", 2, 0),
        };
        var s = Make("hello world", opWindow: 0, version: 2, log: new ListLog(ops));
        // Made at version 1 ("hello"): an insert at the end lands before " world".
        s.Sequence("x", 1, TextOperation.Insert(5, "!"), 1, 0);
        Assert.Equal("hello! world", s.WorkContent.ToString());
    }

    [Theory]
    [InlineData("[9]", ErrorCodes.InvalidOp)]           // retains past the end
    [InlineData("[-9]", ErrorCodes.InvalidOp)]          // deletes past the end
    [InlineData("[1, \"x\"]", ErrorCodes.InvalidOp)]    // splits the surrogate pair
    [InlineData("[\"0123456789\"]", ErrorCodes.TooLarge)]
    public void ABadOpIsRefusedWithItsCodeAndChangesNothing(string op, string code)
    {
        var s = Make("\ud83d\ude00", maxLength: 10);
        var error = Assert.Throws<CollabError>(() => s.Sequence("c", 1, System.Text.Json.JsonSerializer.Deserialize<TextOperation>(op)!, 0, 0));
        Assert.Equal(code, error.Code);
        Assert.Equal((0, "\ud83d\ude00"), (s.WorkVersion, s.WorkContent.ToString()));
        // The same op id is still free: nothing was recorded.
        Assert.Equal(SequenceOutcome.Sequenced, s.Sequence("c", 1, TextOperation.Insert(0, "ok"), 0, 0).Outcome);
    }

    [Fact]
    public void ARollbackDropsEveryUncommittedOpAndFreesTheirIds()
    {
        var s = Make("base");
        s.Sequence("c", 1, TextOperation.Insert(0, "1"), 0, 0);
        Commit(s);
        s.Sequence("c", 2, TextOperation.Insert(0, "2"), 1, 0);
        s.Sequence("d", 1, TextOperation.Insert(0, "3"), 1, 0);
        s.Rollback();
        Assert.Equal((1, "1base"), (s.WorkVersion, s.WorkContent.ToString()));
        Assert.Equal(SequenceOutcome.Sequenced, s.Sequence("c", 2, TextOperation.Insert(0, "2"), 1, 0).Outcome);
        Assert.Equal(2, s.WorkVersion);
    }

    [Fact]
    public void TheWindowIsTrimmedInChunksAndPositionsMapOnlyWithinIt()
    {
        var s = Make("", opWindow: 10);
        for (var i = 1; i <= 100; i++)
        {
            s.Sequence("c", i, TextOperation.Insert(0, "x"), i - 1, 0);
            Commit(s);
        }
        Assert.InRange(s.Window.Count, 10, 10 + 64);
        Assert.Equal(s.Version - s.Window.Count, s.WindowStart);
        Assert.Equal(s.Version - s.WindowStart + 3, s.MapPosition(3, s.WindowStart)); // every op since inserted before it
        Assert.Null(s.MapPosition(0, s.WindowStart - 1));
        Assert.Equal(100, s.MapPosition(1000, s.Version)); // clamped to the text
    }
}
