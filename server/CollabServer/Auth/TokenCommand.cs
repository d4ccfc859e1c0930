using System.Security.Claims;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CollabServer.Auth;

/// <summary>
/// <c>CollabServer token --scope "doc:notes-*:edit" [--sub NAME] [--name "Display Name"] [--lifetime 01:00:00]</c>:
/// prints a development token signed with <c>Collab:Auth:SigningKey</c> (from the same
/// configuration the server reads: command line, environment, appsettings.json), alone on
/// standard output; anything else goes to standard error. Usage: <see cref="CommandLine.TokenUsage"/>.
/// </summary>
public static class TokenCommand
{
    public static int Run(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] is "--scope" or "--sub" or "--name" or "--lifetime" && i + 1 < args.Length)
            {
                values[args[i][2..]] = args[++i];
            }
            else
            {
                rest.Add(args[i]);
            }
        }
        var configuration = CommandConfiguration.Build(rest);
        var auth = configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        if (string.IsNullOrEmpty(auth.SigningKey) || !values.TryGetValue("scope", out var scope))
        {
            Console.Error.WriteLine(string.IsNullOrEmpty(auth.SigningKey) ? "token needs a signing key (Collab:Auth:SigningKey)." : "token needs --scope.");
            Console.Error.Write(CommandLine.TokenUsage);
            Console.Error.WriteLine();
            return 2;
        }
        SymmetricSecurityKey key;
        try
        {
            key = AuthSetup.SigningKeyOf(auth);
        }
        catch (InvalidOperationException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 2;
        }
        var lifetime = TimeSpan.FromHours(1);
        if (values.TryGetValue("lifetime", out var l) && (!TimeSpan.TryParse(l, System.Globalization.CultureInfo.InvariantCulture, out lifetime) || lifetime <= TimeSpan.Zero))
        {
            Console.Error.WriteLine($"--lifetime must be a positive duration written HH:MM:SS (got '{l}').");
            return 2;
        }
        // The token alone on standard output, so that TOKEN=$(... token ...) holds exactly it.
        Console.WriteLine(Mint(key, auth, values.GetValueOrDefault("sub", "dev"), values.GetValueOrDefault("name"), scope, lifetime));
        return 0;
    }

    /// <summary>An HS256 token with <c>sub</c>, <c>name</c> and <c>scope</c> claims.</summary>
    public static string Mint(SymmetricSecurityKey key, AuthOptions auth, string subject, string? name, string scope, TimeSpan lifetime)
    {
        var claims = new List<Claim> { new("sub", subject), new("scope", scope) };
        if (name is not null)
        {
            claims.Add(new Claim("name", name));
        }
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity(claims),
            Issuer = auth.Issuer,
            Audience = auth.Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.HmacSha256),
        });
    }
}
