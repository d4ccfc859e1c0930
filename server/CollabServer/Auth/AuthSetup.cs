using System.Net;
using System.Text;
using Collab;
using CollabServer.Identity;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.IdentityModel.Tokens;

namespace CollabServer.Auth;

/// <summary>
/// Authentication, origins and hosts, wired from configuration (PROTOCOL §8):
/// <list type="bullet">
/// <item>With <c>Collab:Auth:SigningKey</c> (HS256), or (not both) JwtBearer's own options under
/// <c>Authentication:Schemes:Bearer</c> (RS256, authority, issuer, audience), Microsoft's JwtBearer
/// handler checks a token from the <c>Authorization</c> header or, for the hub, the
/// <c>access_token</c> query parameter; access follows the token's <c>scope</c> grants.</item>
/// <item>Without either the server runs open: everyone may do everything, so it answers only
/// loopback clients (and says so loudly) unless <c>Collab:Auth:AllowAnonymous=true</c>.</item>
/// <item>A request whose <c>Origin</c> is neither the server's own nor in
/// <c>Collab:AllowedOrigins</c> is refused with 403 (cross-site WebSocket hijacking); CORS allows
/// exactly those origins.</item>
/// <item><c>AllowedHosts</c> defaults to the loopback names outside Development, so a foreign
/// <c>Host</c> (DNS rebinding) gets 400; a deployment sets its own.</item>
/// </list>
/// </summary>
public static class AuthSetup
{
    private const string CorsPolicy = "collab";

    /// <summary>Registers authentication and the access policy; returns whether authentication is on.</summary>
    public static bool AddCollabAuth(this IServiceCollection services, IConfiguration configuration, IHostEnvironment environment)
    {
        var auth = configuration.GetSection(AuthOptions.Section).Get<AuthOptions>() ?? new AuthOptions();
        services.AddSingleton(auth);

        if (configuration["AllowedHosts"] is null && !environment.IsDevelopment())
        {
            configuration["AllowedHosts"] = "localhost;127.0.0.1;[::1]";
        }
        var origins = AllowedOriginsOf(configuration);
        // The listed origins, and in a cluster every live node's: its pages connect to the others.
        services.AddCors();
        services.AddOptions<Microsoft.AspNetCore.Cors.Infrastructure.CorsOptions>().Configure<Cluster.IDocumentOwnership>((o, ownership) =>
            o.AddPolicy(CorsPolicy, p => p.SetIsOriginAllowed(origin => Listed(origin, origins) || ownership.IsNodeOrigin(origin)).AllowAnyHeader().AllowAnyMethod().AllowCredentials()));

        var standard = configuration.GetSection("Authentication:Schemes:Bearer").Exists();
        if (!string.IsNullOrEmpty(auth.SigningKey) && standard)
        {
            // The signing key's validation would replace the scheme's issuers and audiences.
            throw new InvalidOperationException("Set Collab:Auth:SigningKey (HS256 tokens) or Authentication:Schemes:Bearer (an issuer's keys), not both.");
        }
        if (!string.IsNullOrEmpty(auth.SigningKey))
        {
            _ = SigningKeyOf(auth); // a key too short stops the server now, not at the first token
        }
        if (string.IsNullOrEmpty(auth.SigningKey) && !standard)
        {
            services.AddSingleton<IDocumentAccessPolicy, OpenAccessPolicy>();
            return false;
        }
        services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddJwtBearer(o =>
        {
            // Claims keep their JWT names ("sub", "scope"), as PROTOCOL §8 uses them.
            o.MapInboundClaims = false;
            if (!string.IsNullOrEmpty(auth.SigningKey))
            {
                o.TokenValidationParameters = ValidationFor(auth);
            }
            o.Events = new JwtBearerEvents
            {
                // Browsers cannot set headers on a WebSocket: the hub takes the SignalR convention.
                OnMessageReceived = context =>
                {
                    if (context.Request.Path.StartsWithSegments(Collab.Messages.HubNames.Path)
                        && context.Request.Query["access_token"] is { Count: > 0 } token)
                    {
                        context.Token = token[0];
                    }
                    return Task.CompletedTask;
                },
                // The subject is the identity ops are deduplicated and authored under (PROTOCOL §8):
                // a token without one would share it with whoever else lacks one, or with a name.
                OnTokenValidated = context =>
                {
                    if (string.IsNullOrEmpty(context.Principal?.FindFirst("sub")?.Value))
                    {
                        context.Fail("the token has no 'sub' claim: every token must name its subject");
                    }
                    return Task.CompletedTask;
                },
            };
        });
        services.AddAuthorization();
        services.AddSingleton<IDocumentAccessPolicy, ScopeAccessPolicy>();
        return true;
    }

    /// <summary>How an HS256 token is checked: signature, lifetime, and issuer/audience when configured.</summary>
    internal static TokenValidationParameters ValidationFor(AuthOptions auth) => new()
    {
        IssuerSigningKey = SigningKeyOf(auth),
        ValidateIssuerSigningKey = true,
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        ValidateIssuer = auth.Issuer is not null,
        ValidIssuer = auth.Issuer,
        ValidateAudience = auth.Audience is not null,
        ValidAudience = auth.Audience,
        ValidateLifetime = true,
        RequireExpirationTime = true,
        ClockSkew = TimeSpan.FromSeconds(30),
        NameClaimType = "name",
    };

    internal static SymmetricSecurityKey SigningKeyOf(AuthOptions auth)
    {
        var bytes = Encoding.UTF8.GetBytes(auth.SigningKey ?? "");
        if (bytes.Length < 32)
        {
            throw new InvalidOperationException("Collab:Auth:SigningKey must be at least 32 bytes (256 bits) for HS256.");
        }
        return new SymmetricSecurityKey(bytes);
    }

    /// <summary>The middleware: open-mode guard, origin check, CORS, authentication.</summary>
    public static void UseCollabAuth(this WebApplication app, bool authenticated)
    {
        var auth = app.Services.GetRequiredService<AuthOptions>();
        var origins = AllowedOriginsOf(app.Configuration);
        var ownership = app.Services.GetRequiredService<Cluster.IDocumentOwnership>();
        if (!authenticated)
        {
            if (auth.AllowAnonymous)
            {
                Log.OpenToEveryone(app.Logger);
            }
            else
            {
                Log.OpenOnLoopback(app.Logger);
            }
        }
        app.Use(async (context, next) =>
        {
            if (!authenticated && !auth.AllowAnonymous && context.Connection.RemoteIpAddress is { } remote && !IPAddress.IsLoopback(remote))
            {
                await Refuse(context, StatusCodes.Status403Forbidden, ErrorCodes.Forbidden, "this server runs without authentication and answers only clients on its own machine");
                return;
            }
            if (context.Request.Headers.Origin is { Count: > 0 } origin && !OriginAllowed(context.Request, origin[0], origins) && !await ownership.IsNodeOriginAsync(origin[0]!))
            {
                await Refuse(context, StatusCodes.Status403Forbidden, ErrorCodes.Forbidden, $"origin {origin[0]} is not allowed (Collab:AllowedOrigins)");
                return;
            }
            await next(context);
        });
        app.UseCors(CorsPolicy);
        if (authenticated)
        {
            app.UseAuthentication();
            app.UseAuthorization();
        }
    }

    /// <summary>The server's own pages are same-origin; anything else must be listed.</summary>
    private static bool OriginAllowed(HttpRequest request, string? origin, string[] allowed)
    {
        if (string.IsNullOrEmpty(origin))
        {
            return true;
        }
        if (string.Equals(origin, $"{request.Scheme}://{request.Host.Value}", StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }
        return Listed(origin, allowed);
    }

    /// <summary>
    /// <c>Collab:AllowedOrigins</c> given as one value (<c>--Collab:AllowedOrigins=https://a.example</c>,
    /// several separated by commas, semicolons or spaces) or as a list (<c>Collab:AllowedOrigins:0</c>,
    /// <c>:1</c>, … or a JSON array in appsettings.json), or both.
    /// </summary>
    internal static string[] AllowedOriginsOf(IConfiguration configuration)
    {
        var section = configuration.GetSection("Collab:AllowedOrigins");
        return [.. section.GetChildren().Select(child => child.Value).Append(section.Value)
            .SelectMany(value => (value ?? "").Split([',', ';', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.OrdinalIgnoreCase)];
    }

    private static bool Listed(string origin, string[] allowed) =>
        allowed.Any(a => a == "*" || string.Equals(a.TrimEnd('/'), origin, StringComparison.OrdinalIgnoreCase));

    private static Task Refuse(HttpContext context, int status, string code, string sentence) =>
        Results.Problem(type: code, title: sentence, statusCode: status).ExecuteAsync(context);
}
