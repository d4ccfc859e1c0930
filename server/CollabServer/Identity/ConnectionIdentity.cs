using System.Security.Claims;

namespace CollabServer.Identity;

/// <summary>
/// Who is on the other end of a connection or request, resolved once when it connects and
/// carried by the connection from then on, so that access checks and the identity of ops never
/// ask again. Without authentication every connection is <see cref="Anonymous"/>.
/// </summary>
public sealed record ConnectionIdentity(string Subject, string? Name, bool IsAuthenticated, Grants Grants)
{
    /// <summary>A connection that presented no credentials.</summary>
    public static readonly ConnectionIdentity Anonymous = new("", null, false, Grants.None);

    /// <summary>The identity a request's user carries: its <c>sub</c> claim and <c>scope</c> grants when authenticated.</summary>
    public static ConnectionIdentity From(ClaimsPrincipal? user)
    {
        if (user?.Identity is not { IsAuthenticated: true } identity)
        {
            return Anonymous;
        }
        // Never a name: names are not unique, and the bearer validates that "sub" is present.
        var subject = user.FindFirst("sub")?.Value ?? throw new InvalidOperationException("an authenticated user without a 'sub' claim");
        var scope = string.Join(' ', user.FindAll("scope").Select(c => c.Value).Concat(user.FindAll("scp").Select(c => c.Value)));
        return new ConnectionIdentity(subject, user.FindFirst("name")?.Value ?? identity.Name, true, Grants.Parse(scope));
    }
}
