using BenchmarkDotNet.Attributes;
using Collab.Client;
using Collab.Client.Internal;
using Collab.Messages;
using Collab.Ot;
using Microsoft.Extensions.Logging.Abstractions;

namespace CollabBench;

/// <summary>
/// A joined .NET client receives another member's op: <c>CollabDocument.OnOp</c>, the call the
/// SignalR receive loop makes, from ordering through applying to both texts to queueing the
/// <c>Changed</c> event. Each invocation receives an insert of 3 chars in the middle and then the
/// delete of those 3 chars, so the document keeps its size however long BenchmarkDotNet runs; the
/// figures are per received op (OperationsPerInvoke = 2). The two messages are reused with the
/// next versions, so what is measured excludes the message and the op, as the issue asks.
/// </summary>
[MemoryDiagnoser]
public class ClientReceiveBenchmarks
{
    private CollabDocument _document = null!;
    private OpMessage _insert = null!;
    private OpMessage _delete = null!;
    private int _version;

    [Params(Documents.Small, Documents.Large)]
    public string Size { get; set; } = Documents.Small;

    [GlobalSetup]
    public void Setup()
    {
        var length = Documents.LengthOf(Size);
        var transport = new JoinedTransport(Documents.Text(length));
        _document = new CollabDocument("bench", "me", null, transport, () => 1, NullLogger.Instance);
        _document.JoinInitialAsync(CancellationToken.None).GetAwaiter().GetResult();
        _insert = new OpMessage { DocId = "bench", ClientId = "other", Op = TextOperation.Insert(length / 2, "abc") };
        _delete = new OpMessage { DocId = "bench", ClientId = "other", Op = TextOperation.Delete(length / 2, 3) };
    }

    [Benchmark(Description = "Client receives a remote op (insert, then its delete)", OperationsPerInvoke = 2)]
    public void Receive()
    {
        _insert.Version = ++_version;
        _insert.OpId = _version;
        _document.OnOp(_insert);
        _delete.Version = ++_version;
        _delete.OpId = _version;
        _document.OnOp(_delete);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_document.Version != _version)
        {
            throw new InvalidOperationException($"The client applied up to version {_document.Version}, not {_version}: the benchmark measured something else.");
        }
    }

    /// <summary>A connected transport whose join returns the whole text at version 0; nothing else is called.</summary>
    internal sealed class JoinedTransport(string text) : IDocumentTransport
    {
        public ConnectionState State => ConnectionState.Connected;

        public Task<JoinResult> JoinAsync(JoinRequest request, CancellationToken cancellationToken) =>
            Task.FromResult(new JoinResult { DocId = request.DocId, Version = 0, Text = text });

        public Task<SubmitResult> SubmitAsync(SubmitRequest request, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task SetPresenceAsync(PresenceRequest request, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task LeaveAsync(string docId, CancellationToken cancellationToken) => Task.CompletedTask;

        public Task<IDocumentTransport> RedirectAsync(CollabDocument document, string baseUrl, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<IDocumentTransport> ReturnHomeAsync(CollabDocument document, CancellationToken cancellationToken) => throw new NotSupportedException();

        public void Detach(CollabDocument document)
        {
        }

        // The connection's drops and returns are the scenario's to make: nothing to retry here.
        public void ReconnectNow()
        {
        }
    }
}
