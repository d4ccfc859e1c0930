using BenchmarkDotNet.Attributes;
using Collab.Ot;

namespace CollabBench;

/// <summary>
/// The OT core on a small and a 10 MB document: what the server does per op (transform over the
/// ops since the base version, validate, apply to the rope) and what a client does (compose its
/// buffer, transform its pending ops).
/// </summary>
[MemoryDiagnoser]
public class OtBenchmarks
{
    private Rope _rope = Rope.Empty;
    private string _text = "";
    private TextOperation _typing = TextOperation.Empty;
    private TextOperation _delete = TextOperation.Empty;
    private TextOperation _concurrent = TextOperation.Empty;
    private TextOperation _next = TextOperation.Empty;
    private TextOperation[] _history = [];

    [Params(Documents.Small, Documents.Large)]
    public string Size { get; set; } = Documents.Small;

    [GlobalSetup]
    public void Setup()
    {
        var length = Documents.LengthOf(Size);
        _text = Documents.Text(length);
        _rope = Rope.FromString(_text);
        _typing = Documents.Typing(length / 2, "abc");
        _delete = TextOperation.Delete(length / 3, 3);
        _concurrent = Documents.Typing(length / 2 + 7, "xy");
        // The next keystroke right after the first one: what a client buffer composes.
        _next = Documents.Typing(length / 2 + 3, "d");
        // Ten ops committed since an incoming op's base version (10 concurrent writers).
        var random = new Random(7);
        var current = length;
        _history = new TextOperation[10];
        for (var i = 0; i < _history.Length; i++)
        {
            _history[i] = Documents.Typing(random.Next(current + 1), "q");
            current++;
        }
    }

    [Benchmark(Description = "Apply(rope) insert")]
    public Rope ApplyRopeInsert() => _typing.Apply(_rope);

    [Benchmark(Description = "Apply(rope) delete")]
    public Rope ApplyRopeDelete() => _delete.Apply(_rope);

    [Benchmark(Description = "Apply(string) insert")]
    public string ApplyStringInsert() => _typing.Apply(_text);

    [Benchmark(Description = "Validate(rope)")]
    public string? Validate() => _typing.Validate(_rope);

    [Benchmark(Description = "Transform(a, b)")]
    public TextOperation Transform() => TextOperation.Transform(_typing, _concurrent, aWinsTies: true);

    [Benchmark(Description = "Transform over 10 ops")]
    public TextOperation TransformOverHistory()
    {
        var op = _typing;
        foreach (var applied in _history)
        {
            op = TextOperation.Transform(op, applied, aWinsTies: true);
        }
        return op;
    }

    [Benchmark(Description = "Compose(a, b)")]
    public TextOperation Compose() => TextOperation.Compose(_typing, _next);

    [Benchmark(Description = "Transform+Validate+Apply (server per op)")]
    public Rope ServerPerOp()
    {
        var op = TextOperation.Transform(_typing, _concurrent, aWinsTies: true);
        _ = op.Validate(_rope);
        return op.Apply(_rope);
    }
}
