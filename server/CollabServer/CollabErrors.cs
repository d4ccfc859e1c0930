using Microsoft.AspNetCore.SignalR;

namespace CollabServer;

/// <summary>
/// Errors with a protocol code (<see cref="Collab.ErrorCodes"/>). They are plain
/// <see cref="HubException"/>s whose message is <c>code: sentence</c>: SignalR passes a
/// HubException's message to the client, which sees <c>… HubException: code: sentence</c>.
/// </summary>
public static class CollabErrors
{
    public static HubException Create(string code, string sentence) => new($"{code}: {sentence}");

    /// <summary>The code and sentence of an error made by <see cref="Create"/>.</summary>
    public static (string Code, string Sentence) Parse(HubException error)
    {
        var colon = error.Message.IndexOf(": ", StringComparison.Ordinal);
        return colon > 0 ? (error.Message[..colon], error.Message[(colon + 2)..]) : (Collab.ErrorCodes.Unavailable, error.Message);
    }
}
