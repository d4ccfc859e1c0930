using BenchmarkDotNet.Attributes;
using Collab.Client;
using Collab.Messages;
using Collab.Ot;
using Microsoft.Extensions.Logging.Abstractions;

namespace CollabBench;

/// <summary>
/// What the load harness does to the client's texts: 20 joined documents in one process, each
/// holding a 10 MB text (the server text and the local text, one rope while nothing is pending),
/// receive remote ops at seeded random positions, one document after the other, so the lookup in each text starts from memory the previous ops did not touch. Each
/// invocation gives every document an insert of 3 chars at one random position and a delete of 3
/// chars at another (so the documents keep their size); the figures are per received op
/// (OperationsPerInvoke = 40). The ops are made in the setup and the messages reused, so what is
/// measured is <c>CollabDocument.OnOp</c> alone.
/// </summary>
[MemoryDiagnoser]
public class ClientReceiveManyBenchmarks
{
    private const int DocumentCount = 20;
    private const int OpCount = 4096;

    private readonly CollabDocument[] _documents = new CollabDocument[DocumentCount];
    private readonly OpMessage[] _messages = new OpMessage[DocumentCount];
    private readonly TextOperation[] _inserts = new TextOperation[OpCount];
    private readonly TextOperation[] _deletes = new TextOperation[OpCount];
    private int _next;
    private int _version;

    [GlobalSetup]
    public void Setup()
    {
        var length = Documents.LengthOf(Documents.Large);
        var text = Documents.Text(length);
        var random = new Random(7);
        for (var i = 0; i < OpCount; i++)
        {
            _inserts[i] = TextOperation.Insert(random.Next(length + 1), "abc");
            _deletes[i] = TextOperation.Delete(random.Next(length + 1), 3);
        }
        for (var d = 0; d < DocumentCount; d++)
        {
            var transport = new ClientReceiveBenchmarks.JoinedTransport(text);
            _documents[d] = new CollabDocument($"bench{d}", "me", null, transport, () => 1, NullLogger.Instance);
            _documents[d].JoinInitialAsync(CancellationToken.None).GetAwaiter().GetResult();
            _messages[d] = new OpMessage { DocId = $"bench{d}", ClientId = "other" };
        }
    }

    [Benchmark(Description = "20 clients × 10 MB receive ops at random positions", OperationsPerInvoke = 2 * DocumentCount)]
    public void ReceiveMany()
    {
        // Every document is at the same version: each receives the same two ops per invocation.
        var insert = _inserts[_next];
        var delete = _deletes[_next];
        _next = (_next + 1) % OpCount;
        var first = ++_version;
        var second = ++_version;
        for (var d = 0; d < DocumentCount; d++)
        {
            var message = _messages[d];
            message.Op = insert;
            message.Version = first;
            message.OpId = first;
            _documents[d].OnOp(message);
            message.Op = delete;
            message.Version = second;
            message.OpId = second;
            _documents[d].OnOp(message);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var document in _documents)
        {
            if (document.Version != _version)
            {
                throw new InvalidOperationException($"A client applied up to version {document.Version}, not {_version}: the benchmark measured something else.");
            }
        }
    }
}
