using Collab;
using Collab.Messages;
using CollabServer.Documents;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Hubs;

/// <summary>
/// The hub of PROTOCOL §3 at <c>/hubs/collab</c>. It checks what can be checked without the
/// document, then hands the request to the document's actor. Every error is a
/// <see cref="HubException"/> with the protocol's code (<see cref="CollabErrors"/>), and leaves the connection usable.
/// </summary>
public sealed class CollabHub(DocumentRegistry documents) : Hub
{
    private ClientConnection Connection => (ClientConnection)Context.Items[ClientConnection.ItemKey]!;

    public async Task<JoinResult> Join(JoinRequest request)
    {
        var docId = CheckDocId(request?.DocId);
        var connection = Connection;
        // Recorded before the join, so a disconnect that races it still leaves the document.
        bool added;
        lock (connection.Documents)
        {
            added = connection.Documents.Add(docId);
        }
        try
        {
            return await documents.CallAsync(docId, actor => actor.Join(connection, request!, readOnly: false));
        }
        catch when (added)
        {
            lock (connection.Documents)
            {
                connection.Documents.Remove(docId);
            }
            throw;
        }
    }

    public Task<SubmitResult> Submit(SubmitRequest request)
    {
        CheckDocId(request?.DocId);
        if (request!.Op is null)
        {
            throw CollabErrors.Create(ErrorCodes.InvalidOp, "the request has no op");
        }
        var connection = Connection;
        if (!connection.TryTakeOp())
        {
            throw CollabErrors.Create(ErrorCodes.RateLimited, $"more than {documents.Options.OpsPerSecond} ops a second; slow down");
        }
        return documents.SubmitAsync(connection, request);
    }

    public async Task Leave(string docId)
    {
        CheckDocId(docId);
        var connection = Connection;
        lock (connection.Documents)
        {
            connection.Documents.Remove(docId);
        }
        await documents.CallIfLiveAsync(docId, actor => actor.Leave(connection.ConnectionId), false);
    }

    public async Task SetPresence(PresenceRequest request)
    {
        var docId = CheckDocId(request?.DocId);
        var connectionId = Connection.ConnectionId;
        var done = await documents.CallIfLiveAsync(docId, actor => actor.SetPresence(connectionId, request!), false);
        if (!done)
        {
            throw CollabErrors.Create(ErrorCodes.NotJoined, $"join document '{docId}' before setting presence in it");
        }
    }

    public override async Task OnDisconnectedAsync(Exception? exception)
    {
        var connection = Connection;
        string[] joined;
        lock (connection.Documents)
        {
            joined = [.. connection.Documents];
        }
        foreach (var docId in joined)
        {
            await documents.CallIfLiveAsync(docId, actor => actor.Leave(connection.ConnectionId), false);
        }
        await base.OnDisconnectedAsync(exception);
    }

    private static string CheckDocId(string? docId) =>
        DocumentId.IsValid(docId)
            ? docId!
            : throw CollabErrors.Create(ErrorCodes.InvalidDocId, "a document id is 1 to 128 characters from A-Z a-z 0-9 . _ - and does not start with a dot");
}
