using BenchmarkDotNet.Attributes;
using Collab.Ot;

namespace CollabBench;

/// <summary>The immutable rope on a small and a 10 MB text: edits, reads, and the conversions the server does on snapshot and join.</summary>
[MemoryDiagnoser]
public class RopeBenchmarks
{
    private Rope _rope = Rope.Empty;
    private string _text = "";
    private int _middle;

    [Params(Documents.Small, Documents.Large)]
    public string Size { get; set; } = Documents.Small;

    [GlobalSetup]
    public void Setup()
    {
        _text = Documents.Text(Documents.LengthOf(Size));
        _rope = Rope.FromString(_text);
        _middle = _text.Length / 2;
    }

    [Benchmark(Description = "Insert 3 chars in the middle")]
    public Rope Insert() => _rope.Insert(_middle, "abc");

    [Benchmark(Description = "Delete 3 chars in the middle")]
    public Rope Delete() => _rope.Delete(_middle, 3);

    [Benchmark(Description = "Index [middle]")]
    public char Index() => _rope[_middle];

    [Benchmark(Description = "Substring 100 chars")]
    public string Substring() => _rope.Substring(_middle, 100);

    [Benchmark(Description = "Insert then ToString (snapshot, join)")]
    public string InsertToString() => _rope.Insert(_middle, "abc").ToString();

    [Benchmark(Description = "FromString (load a snapshot)")]
    public Rope FromString() => Rope.FromString(_text);

    [Benchmark(Description = "1000 inserts (typing burst)")]
    public Rope ThousandInserts()
    {
        var rope = _rope;
        for (var i = 0; i < 1000; i++)
        {
            rope = rope.Insert(_middle + i, "x");
        }
        return rope;
    }
}
