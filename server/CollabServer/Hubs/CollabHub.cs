using Collab;
using Collab.Messages;
using Collab.Ot;
using CollabServer.Cluster;
using CollabServer.Documents;
using CollabServer.Errors;
using CollabServer.Diagnostics;
using CollabServer.Identity;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.Options;
using CollabServer.Documents.Types;

namespace CollabServer.Hubs;

/// <summary>
/// The hub of PROTOCOL §3 at <c>/hubs/collab</c>. It checks what can be checked without the
/// document, then hands the request to the document's actor. Every refusal is a
/// <see cref="CollabError"/> with the protocol's code (sent as a HubException by
/// <see cref="ErrorCountingFilter"/>), and leaves the connection usable.
/// </summary>
public sealed class CollabHub(DocumentRegistry documents, IOptions<CollabOptions> settings, CollabMetrics metrics, IDocumentAccessPolicy access, WriteBudget writes, ILogger<CollabHub> logger) : Hub
{
    private ClientConnection Connection => (ClientConnection)Context.Items[ClientConnection.ItemKey]!;

    public async Task<JoinResult> Join(JoinRequest request)
    {
        var docId = CheckDocId(request?.DocId);
        CheckUser(request!.User);
        var connection = Connection;
        TakeJoin(connection);
        var allowed = access.For(connection.Identity, docId);
        if (allowed is DocumentAccess.None)
        {
            throw new CollabError(ErrorCodes.Forbidden, $"you may not open document '{docId}'");
        }
        // Recorded before the join, so a disconnect that races it still leaves the document.
        bool added;
        lock (connection.Documents)
        {
            if (!connection.Documents.Contains(docId) && connection.Documents.Count >= settings.Value.MaxDocumentsPerConnection)
            {
                throw new CollabError(ErrorCodes.RateLimited, $"this connection has joined {settings.Value.MaxDocumentsPerConnection} documents; leave one first");
            }
            added = connection.Documents.Add(docId);
        }
        try
        {
            return await documents.AskAsync(docId, () => new JoinDocument(connection, request!, readOnly: allowed is DocumentAccess.Read));
        }
        catch (Exception ex) when (added || ex is NotOwnerException)
        {
            lock (connection.Documents)
            {
                connection.Documents.Remove(docId);
            }
            if (ex is NotOwnerException owner)
            {
                // Another live node owns it: the client joins there (PROTOCOL §3).
                metrics.Redirected();
                return new JoinResult { DocId = docId, Redirect = owner.Url };
            }
            throw;
        }
    }

    public Task<SubmitResult> Submit(SubmitRequest request)
    {
        CheckDocId(request?.DocId);
        if (request!.Payload is null)
        {
            throw CollabError.InvalidOp("the request has no op");
        }
        var connection = Connection;
        if (!connection.TryTakeOp())
        {
            throw new CollabError(ErrorCodes.RateLimited, $"more than {settings.Value.OpsPerSecond} ops a second; slow down");
        }
        if (!writes.TryTake(connection, OpSize.Of(request.Payload)))
        {
            metrics.LimitRefused("write_bytes");
            throw new CollabError(ErrorCodes.RateLimited, $"more than {settings.Value.WriteBytesPerSecond} bytes of ops a second from one writer; slow down");
        }
        return documents.SubmitAsync(connection, request);
    }

    public async Task Leave(string docId)
    {
        CheckDocId(docId);
        var connection = Connection;
        TakeJoin(connection);
        lock (connection.Documents)
        {
            connection.Documents.Remove(docId);
        }
        await documents.AskIfLiveAsync(docId, new LeaveDocument(connection.ConnectionId), false);
    }

    public async Task SetPresence(PresenceRequest request)
    {
        var docId = CheckDocId(request?.DocId);
        CheckUser(request!.User);
        var connection = Connection;
        if (!connection.TryTakePresence())
        {
            throw new CollabError(ErrorCodes.RateLimited, $"more than {settings.Value.PresencePerSecond} presence updates a second; slow down");
        }
        if (request!.Selection is { Count: var ranges } && ranges > settings.Value.MaxSelectionRanges)
        {
            throw new CollabError(ErrorCodes.TooLarge, $"a selection has at most {settings.Value.MaxSelectionRanges} ranges");
        }
        if (request.Selection?.Contains(null!) == true)
        {
            throw CollabError.InvalidOp("a selection range must be { anchor, head }, not null");
        }
        var connectionId = connection.ConnectionId;
        var done = await documents.AskIfLiveAsync(docId, new UpdatePresence(connectionId, request!), false);
        if (!done)
        {
            throw new CollabError(ErrorCodes.NotJoined, $"join document '{docId}' before setting presence in it");
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
            try
            {
                await documents.AskIfLiveAsync(docId, new LeaveDocument(connection.ConnectionId), false);
            }
            catch (Exception ex)
            {
                // One document that cannot answer (its load failed) must not keep the connection
                // a member of the others.
                Log.LeaveFailed(logger, docId, connection.ConnectionId, ex);
            }
        }
        await base.OnDisconnectedAsync(exception);
    }

    /// <summary>
    /// A user's name and color are shown to every member, in every join result and presence
    /// message: ill-formed text (a lone surrogate, or invalid UTF-8 over MessagePack) is refused,
    /// and so is a long one.
    /// </summary>
    private void CheckUser(UserInfo? user)
    {
        if (user is null)
        {
            return;
        }
        if (user.Name?.Length > settings.Value.MaxUserNameLength || user.Color?.Length > settings.Value.MaxUserColorLength)
        {
            metrics.LimitRefused("user_size");
            throw new CollabError(ErrorCodes.TooLarge, $"a user's name has at most {settings.Value.MaxUserNameLength} characters and its color {settings.Value.MaxUserColorLength}");
        }
        if (!TextOperation.IsWellFormed(user.Name) || !TextOperation.IsWellFormed(user.Color))
        {
            throw CollabError.InvalidOp("a user's name and color must be well-formed text");
        }
    }

    /// <summary>Joins and leaves share a per-connection rate: each one is a presence message to every member.</summary>
    private void TakeJoin(ClientConnection connection)
    {
        if (!connection.TryTakeJoin())
        {
            metrics.LimitRefused("joins");
            throw new CollabError(ErrorCodes.RateLimited, $"more than {settings.Value.JoinsPerSecond} joins and leaves a second; slow down");
        }
    }

    private static string CheckDocId(string? docId) =>
        DocumentId.IsValid(docId)
            ? docId!
            : throw CollabError.InvalidDocId();
}
