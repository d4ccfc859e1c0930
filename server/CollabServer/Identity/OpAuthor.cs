namespace CollabServer.Identity;

/// <summary>
/// The identity an op is deduplicated and stored under: (token subject, clientId), so that
/// knowing another member's clientId (presence and ops show it) gives nothing (PROTOCOL §8).
/// Stored in the op log's <c>client_id</c> column as <c>subject␟clientId</c>; an anonymous
/// member's is its clientId alone, which is what databases written before authentication hold.
/// Clients only ever see the clientId part.
/// </summary>
public static class OpAuthor
{
    /// <summary>Separates the subject from the clientId; a clientId may not contain it.</summary>
    public const char Separator = '\u001f';

    public static string Key(ConnectionIdentity identity, string clientId) =>
        identity.Subject.Length == 0 ? clientId : string.Concat(identity.Subject, Separator.ToString(), clientId);

    /// <summary>The clientId part of a stored author key.</summary>
    public static string ClientIdOf(string key)
    {
        var separator = key.LastIndexOf(Separator);
        return separator < 0 ? key : key[(separator + 1)..];
    }
}
