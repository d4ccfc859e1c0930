using System.Collections.Concurrent;
using Collab.Messages;
using CollabServer.Cluster;
using CollabServer.Diagnostics;
using CollabServer.Storage;
using Microsoft.Extensions.Options;

namespace CollabServer.Documents;

/// <summary>
/// The live document actors of this node. An actor is created on first use and removes itself
/// when it stops (idle, or its load failed); a caller that finds it stopping waits for it to
/// close its database and asks again, so two actors never own one database.
/// </summary>
public sealed class DocumentRegistry : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, DocumentActor> _actors = new(StringComparer.Ordinal);
    private readonly ActorServices _services;
    private readonly TimeSpan _idleTimeout;
    private readonly Timer _sweeper;

    public DocumentRegistry(IOptions<CollabOptions> options, ILogger<DocumentActor> logger, CollabMetrics metrics, IDocumentStorage storage, ICommitLog commitLog, IEnumerable<ICommitListener> commitListeners, IDocumentOwnership ownership, IDocumentRedirects? redirects = null)
    {
        var settings = options.Value;
        _services = new ActorServices(settings, storage, commitLog, ownership, metrics, commitListeners, logger, redirects ?? new InMemoryRedirects());
        _idleTimeout = settings.IdleTimeout;
        metrics.ObserveDocuments(() => ActiveCount, () => MemberCount, () => _actors.Values.Sum(a => a.OpWindowBytes));
        var shortest = Math.Min(settings.IdleTimeout.Ticks, settings.DatabaseIdleTimeout.Ticks);
        var period = TimeSpan.FromTicks(Math.Clamp(shortest / 2, TimeSpan.FromMilliseconds(50).Ticks, TimeSpan.FromSeconds(10).Ticks));
        _sweeper = new Timer(_ => Sweep(), null, period, period);
    }

    /// <summary>Number of live actors.</summary>
    public int ActiveCount => _actors.Count;

    /// <summary>Total members over all live documents.</summary>
    public int MemberCount => _actors.Values.Sum(a => a.MemberCount);

    /// <summary>Whether the document's storage was set aside as damaged (no actor loads it).</summary>
    internal bool IsQuarantined(string docId) => _services.Storage.IsQuarantined(docId);

    /// <summary>
    /// Deletes a quarantined document's storage, which no actor loads, and tells the listeners;
    /// false if the document is not quarantined. With <paramref name="movedTo"/>, records first that it moved there.
    /// </summary>
    internal bool DeleteIfQuarantined(string docId, string? movedTo = null)
    {
        if (!_services.Storage.IsQuarantined(docId))
        {
            return false;
        }
        if (movedTo is not null)
        {
            _services.Redirects.Set(docId, movedTo);
        }
        _services.Storage.Delete(docId);
        _services.Deleted(docId);
        return true;
    }

    /// <summary>Whether the document has a live actor on this node.</summary>
    internal bool IsLive(string docId) => _actors.ContainsKey(docId);

    /// <summary>Asks the document's actor, if live, to close now if it has no members and no work.</summary>
    internal void StopIfIdle(string docId)
    {
        if (_actors.TryGetValue(docId, out var actor))
        {
            actor.TryPost(new IdleCheck(TimeSpan.Zero));
        }
    }

    /// <summary>
    /// Whether this node's copy of a document may be read only once its actor has loaded it here:
    /// with PostgreSQL, a copy is brought up to date by the load (and only the owner's is), so
    /// history is read on the owner after the load.
    /// </summary>
    internal bool CopiesNeedLoad => _services.Options.UsesPostgres;

    /// <summary>Whether a document exists, live or on disk.</summary>
    public bool Exists(string docId) => _actors.ContainsKey(docId) || _services.Storage.Exists(docId);

    /// <summary>
    /// Where a document that was never written since its rename was renamed to (its redirect
    /// records followed, see <see cref="Redirects.Resolve"/>); null when it is stored or has no
    /// (usable) record. A live actor does not count: members that join a renamed id are told
    /// where it went, and the first write removes the record.
    /// </summary>
    public string? MovedTo(string docId) => _services.Storage.Exists(docId) ? null : Redirects.Resolve(_services.Redirects, docId, _services.Storage.Exists);

    /// <summary>
    /// Asks the document's actor (created if needed) and awaits its answer. <paramref name="request"/>
    /// makes the message: when the actor closes before it gets to it, a new one goes to the next actor.
    /// </summary>
    internal Task<T> AskAsync<T>(string docId, Func<Request<T>> request) => PostAsync(docId, request);

    /// <summary>Like <see cref="AskAsync{T}"/>, but only if the actor is live; returns <paramref name="otherwise"/> if not.</summary>
    internal Task<T> AskIfLiveAsync<T>(string docId, Request<T> request, T otherwise)
    {
        if (!_actors.TryGetValue(docId, out var actor))
        {
            return Task.FromResult(otherwise);
        }
        return actor.TryPost(request) ? OrElse(request.Task, otherwise) : Task.FromResult(otherwise);
    }

    private static async Task<T> OrElse<T>(Task<T> task, T otherwise)
    {
        try
        {
            return await task.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ActorClosedException or NotOwnerException)
        {
            return otherwise; // it closed, or never loaded (another node owns it): it has no members
        }
    }

    internal Task<SubmitResult> SubmitAsync(IMemberConnection connection, SubmitRequest request) =>
        PostAsync(request.DocId, () => new SubmitWork(connection, request));

    private async Task<T> PostAsync<T>(string docId, Func<Request<T>> create)
    {
        while (true)
        {
            var actor = _actors.GetOrAdd(docId, static (id, self) => new DocumentActor(id, self._services, self.Remove), this);
            actor.EnsureStarted();
            var request = create();
            if (actor.TryPost(request))
            {
                try
                {
                    return await request.Task.ConfigureAwait(false);
                }
                catch (ActorClosedException)
                {
                    // It closed with this message still queued: retry below.
                }
            }
            // It is shutting down: wait until its database is closed, then a new actor takes over.
            await actor.Completion.ConfigureAwait(false);
            _actors.TryRemove(new KeyValuePair<string, DocumentActor>(docId, actor));
        }
    }

    /// <summary>
    /// Moves a document to node <paramref name="nodeId"/> (see <see cref="MoveDocument"/>):
    /// claimed here first if nobody owns it; <see cref="NotOwnerException"/> if another node does.
    /// </summary>
    internal Task<bool> MoveAsync(string docId, string nodeId) => AskAsync(docId, () => new MoveDocument(nodeId));

    /// <summary>
    /// Draining (shutdown of a cluster node): moves every live document to one of
    /// <paramref name="nodeIds"/> in turn, or just stops it (giving its lease back) when there is
    /// none; returns when they have all closed, or when <paramref name="cancellationToken"/> fires.
    /// </summary>
    internal async Task DrainAsync(IReadOnlyList<string> nodeIds, CancellationToken cancellationToken)
    {
        var actors = _actors.Values.ToList();
        var moves = new List<Task>();
        // A move commits, writes a snapshot and makes a Redis round trip on a pool thread: a few
        // at a time, so that thousands of documents do not all wait on two cores at once.
        var inFlight = new SemaphoreSlim(8); // not disposed: a move cut off by the time limit may still release it
        for (var i = 0; i < actors.Count; i++)
        {
            var actor = actors[i];
            if (nodeIds.Count == 0)
            {
                actor.Stop();
                continue;
            }
            var target = nodeIds[i % nodeIds.Count];
            moves.Add(MoveOneAsync(actor.DocId, target));
        }

        async Task MoveOneAsync(string docId, string target)
        {
            await inFlight.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await AskIfLiveAsync(docId, new MoveDocument(target), false).ConfigureAwait(false);
            }
            finally
            {
                inFlight.Release();
            }
        }
        try
        {
            await Task.WhenAll(moves).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // A move that failed (Redis away) leaves its lease to run out; the actor stops below.
            foreach (var actor in actors)
            {
                actor.Stop();
            }
        }
        await Task.WhenAll(actors.Select(a => a.Completion)).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Remove(DocumentActor actor) => _actors.TryRemove(new KeyValuePair<string, DocumentActor>(actor.DocId, actor));

    private void Sweep()
    {
        foreach (var actor in _actors.Values)
        {
            actor.TryPost(new IdleCheck(_idleTimeout));
        }
    }

    /// <summary>Stops every actor after its queued work, snapshotting and closing its database.</summary>
    public async ValueTask DisposeAsync()
    {
        await _sweeper.DisposeAsync().ConfigureAwait(false);
        var actors = _actors.Values.ToList();
        foreach (var actor in actors)
        {
            actor.Stop();
        }
        await Task.WhenAll(actors.Select(a => a.Completion)).ConfigureAwait(false);
    }
}
