using Microsoft.AspNetCore.SignalR;

namespace CollabServer;

/// <summary>
/// An error with a protocol code (<see cref="Collab.ErrorCodes"/>). Its message is
/// <c>code: sentence</c>, which SignalR passes to the client as it is.
/// </summary>
public sealed class CollabException(string code, string sentence) : HubException($"{code}: {sentence}")
{
    public string Code { get; } = code;
    public string Sentence { get; } = sentence;
}
