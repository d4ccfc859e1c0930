using System.Security.Claims;

namespace CollabServer.Identity;

/// <summary>
/// Who is on the other end of a connection, resolved once when it connects and carried by the
/// connection from then on, so that access checks and the identity of ops never ask again.
/// Without authentication every connection is <see cref="Anonymous"/>.
/// </summary>
public sealed record ConnectionIdentity(string Subject, string? Name, bool IsAuthenticated)
{
    /// <summary>A connection that presented no credentials (the server runs open).</summary>
    public static readonly ConnectionIdentity Anonymous = new("", null, false);

    /// <summary>The identity a request's user carries: its <c>sub</c> (or name identifier) claim when authenticated.</summary>
    public static ConnectionIdentity From(ClaimsPrincipal? user)
    {
        if (user?.Identity is not { IsAuthenticated: true } identity)
        {
            return Anonymous;
        }
        var subject = user.FindFirst("sub")?.Value ?? user.FindFirst(ClaimTypes.NameIdentifier)?.Value ?? identity.Name ?? "";
        return new ConnectionIdentity(subject, identity.Name ?? user.FindFirst("name")?.Value, true);
    }
}
