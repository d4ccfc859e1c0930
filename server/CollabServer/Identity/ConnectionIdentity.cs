using System.Security.Claims;
using Collab.Messages;

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
        return new ConnectionIdentity(subject, NameOf(user) ?? identity.Name, true, Grants.Parse(scope));
    }

    /// <summary>The token's display name: its <c>name</c> claim, else its <c>preferred_username</c> (blank ones do not count).</summary>
    private static string? NameOf(ClaimsPrincipal user) =>
        new[] { "name", "preferred_username" }.Select(type => user.FindFirst(type)?.Value).FirstOrDefault(value => !string.IsNullOrWhiteSpace(value));

    /// <summary>
    /// What others see of a member who presents <paramref name="user"/>: the token's name, when it
    /// has one, instead of the name the client chose (PROTOCOL §8); the colour stays the client's.
    /// </summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(user))]
    public UserInfo? Presenting(UserInfo? user) =>
        Name is null ? user : new UserInfo { Name = Name, Color = user?.Color };
}
