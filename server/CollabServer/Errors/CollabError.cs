using Collab;
using Microsoft.AspNetCore.SignalR;

namespace CollabServer.Errors;

/// <summary>
/// A request the server refuses, with the protocol's code (<see cref="ErrorCodes"/>, PROTOCOL §5)
/// and a sentence for people. Thrown anywhere inside the server; only the edges turn it into
/// wire form: a <see cref="HubException"/> whose message is <c>code: sentence</c> for the hub
/// (<see cref="Hubs.ErrorCountingFilter"/>), RFC 9457 problem details with the code in
/// <c>type</c> for REST (<see cref="ToProblem"/>).
/// </summary>
public sealed class CollabError(string code, string sentence) : Exception($"{code}: {sentence}")
{
    public string Code { get; } = code;

    public string Sentence { get; } = sentence;

    /// <summary>The HTTP status REST answers this error with.</summary>
    public int HttpStatus => ErrorCodes.HttpStatusOf(Code);

    /// <summary>The hub's form: SignalR sends a HubException's message to the caller.</summary>
    public HubException ToHubException() => new(Message);

    /// <summary>More members of the REST form (RFC 9457 extensions), such as a 404's <c>movedTo</c>; null for none.</summary>
    public IDictionary<string, object?>? Extensions { get; init; }

    /// <summary>The REST form: problem details whose <c>type</c> is the code and <c>title</c> the sentence, with <see cref="Extensions"/>.</summary>
    public IResult ToProblem() => Results.Problem(type: Code, title: Sentence, statusCode: HttpStatus, extensions: Extensions);

    public static CollabError InvalidOp(string sentence) => new(ErrorCodes.InvalidOp, sentence);

    public static CollabError UnknownVersion(string sentence) => new(ErrorCodes.UnknownVersion, sentence);

    public static CollabError Unavailable(string sentence) => new(ErrorCodes.Unavailable, sentence);

    public static CollabError Quarantined(string docId) =>
        Unavailable($"document '{docId}' is quarantined: its database is damaged; an admin can delete it");

    public static CollabError NotFound(string docId) => new(ErrorCodes.NotFound, $"document '{docId}' does not exist");

    /// <summary>A missing document; <paramref name="movedTo"/>, when it was renamed, is the id it moved to (the problem's <c>movedTo</c>, PROTOCOL §7).</summary>
    public static CollabError NotFound(string docId, string? movedTo) => movedTo is null
        ? NotFound(docId)
        : new(ErrorCodes.NotFound, $"document '{docId}' does not exist: it was renamed to '{movedTo}'") { Extensions = new Dictionary<string, object?> { ["movedTo"] = movedTo } };

    /// <summary>A <c>DELETE ?version=</c> whose version is not the head (<paramref name="head"/>, the problem's <c>version</c>).</summary>
    public static CollabError VersionConflict(string docId, int expected, int head) =>
        new(ErrorCodes.Conflict, $"document '{docId}' is at version {head}, not {expected}: it changed meanwhile") { Extensions = new Dictionary<string, object?> { ["version"] = head } };

    public static CollabError InvalidDocId() => new(ErrorCodes.InvalidDocId, "a document id is 1 to 128 characters from A-Z a-z 0-9 . _ - and does not start with a dot");
}
