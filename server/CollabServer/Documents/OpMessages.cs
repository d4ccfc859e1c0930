using Collab.Messages;
using CollabServer.Identity;
using CollabServer.Storage;

namespace CollabServer.Documents;

internal static class OpMessages
{
    /// <summary>
    /// A committed op as members are sent it (PROTOCOL §3): the client id is the member's own,
    /// not the author key it is stored under. <paramref name="withTime"/>: with the time it was
    /// committed, as reads of the op log answer.
    /// </summary>
    public static OpMessage ToMessage(this StoredOp op, string docId, bool withTime = false)
    {
        var message = new OpMessage
        {
            DocId = docId,
            Version = op.Version,
            ClientId = OpAuthor.ClientIdOf(op.ClientId),
            OpId = op.OpId,
            CreatedAt = withTime ? DateTimeOffset.FromUnixTimeMilliseconds(op.CreatedAtMs) : null,
        };
        op.Op.WriteTo(message);
        return message;
    }
}
