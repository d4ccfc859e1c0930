namespace CollabServer.Auth;

/// <summary>Settings under <c>Collab:Auth:</c> (PROTOCOL §8).</summary>
public sealed class AuthOptions
{
    public const string Section = "Collab:Auth";

    /// <summary>
    /// The HS256 key tokens are signed with (at least 32 bytes of UTF-8). Without it, and without
    /// JwtBearer options under <c>Authentication:Schemes:Bearer</c> (RS256, authority, issuer,
    /// audience), the server runs open.
    /// </summary>
    public string? SigningKey { get; set; }

    /// <summary>The <c>iss</c> tokens must carry, when set.</summary>
    public string? Issuer { get; set; }

    /// <summary>The <c>aud</c> tokens must carry, when set.</summary>
    public string? Audience { get; set; }

    /// <summary>Open mode for clients that are not on this machine too. Off: an open server answers only loopback clients.</summary>
    public bool AllowAnonymous { get; set; }
}
