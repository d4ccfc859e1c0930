using System.Security.Cryptography;
using Microsoft.IdentityModel.Tokens;

namespace CollabServer.Auth;

/// <summary>
/// <c>CollabServer key</c>: prints a new random HS256 signing key for <c>Collab:Auth:SigningKey</c>,
/// 48 bytes from the system's cryptographic generator in base64url (64 characters, none of which a
/// shell or a URL treats specially). The server uses the key's characters as its bytes, so it is
/// 64 bytes long, twice the 32 the server asks for.
/// </summary>
public static class KeyCommand
{
    public const int RandomBytes = 48;

    public static int Run(string[] args)
    {
        if (args.Length > 0)
        {
            Console.Error.WriteLine($"key takes no arguments (got '{string.Join(' ', args)}').");
            Console.Error.Write(CommandLine.KeyUsage);
            Console.Error.WriteLine();
            return 2;
        }
        Console.WriteLine(NewKey());
        return 0;
    }

    public static string NewKey() => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(RandomBytes));
}
