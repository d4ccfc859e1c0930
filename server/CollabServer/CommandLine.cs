using CollabServer.Auth;
using CollabServer.Backup;

namespace CollabServer;

/// <summary>
/// What the first word of the command line asks for: a command (<c>token</c>, <c>key</c>,
/// <c>rebuild</c>), help, or the server. The server's own arguments are configuration
/// (<c>--urls X</c>, <c>--Collab:DataDir=Y</c>, <c>Collab:DataDir=Y</c>, <c>/urls X</c>), so a first
/// word that is none of those forms and no known command is a mistyped command, not a setting.
/// The usage texts are here, once.
/// </summary>
internal static class CommandLine
{
    public const string Usage = """
        CollabServer, a real-time collaborative document server.

        usage: CollabServer [SETTINGS]                           run the server
               CollabServer token --scope SCOPE [OPTIONS]        print a signed access token
               CollabServer key                                  print a new random signing key
               CollabServer rebuild --from BACKUP_DIR --to DIR   rebuild a data directory from a backup
               CollabServer COMMAND --help                       a command's own usage
               CollabServer --help                               this text (also -h, help)

        From the repository: dotnet run --project server/CollabServer --no-launch-profile -- ARGS
        (without --no-launch-profile, dotnet run prints a line of its own first); from a
        published folder: dotnet CollabServer.dll ARGS.

        Common settings, for the server and its commands alike: on the command line --KEY=VALUE
        or --KEY VALUE, in the environment KEY with __ for each colon (Collab__DataDir=PATH), or
        in appsettings.json beside the binaries.
          --urls URLS                      where to listen (default http://localhost:5000)
          --Collab:DataDir=PATH            the documents' folder (default ./data)
          --Collab:Auth:SigningKey=KEY     require tokens signed with KEY (32 bytes or more; see key)
          --AllowedHosts=NAMES             the host names clients use, ';' between several
          --Collab:AllowedOrigins=ORIGINS  other origins whose pages may use the server
          --Collab:Backup:Dir=PATH         ship every committed op to a continuous backup
        Every setting: docs/OPERATIONS.md, "Configuration".
        """;

    public const string TokenUsage = """
        usage: CollabServer token --scope SCOPE [--sub SUBJECT] [--name NAME] [--lifetime HH:MM:SS] [SETTINGS]

        Prints a token signed with Collab:Auth:SigningKey, alone on one line of standard output.
        The key is read like the server's settings: --Collab:Auth:SigningKey=KEY, the environment
        (Collab__Auth__SigningKey) or appsettings.json. Collab:Auth:Issuer and Collab:Auth:Audience
        are added when set.
          --scope SCOPE         space-separated grants: doc:PATTERN:edit, doc:PATTERN:read
                                (PATTERN: an id, or a prefix ending in *), collab:admin
          --sub SUBJECT         who the token is for; its ops are stored as theirs (default dev)
          --name NAME           the name others see in presence
          --lifetime HH:MM:SS   how long it is valid (default 01:00:00)

        Example:
          TOKEN=$(dotnet run --project server/CollabServer --no-launch-profile -- token --scope "doc:notes-*:edit" --sub ada --name Ada --Collab:Auth:SigningKey="$KEY")
        """;

    public const string KeyUsage = """
        usage: CollabServer key

        Prints a new random signing key for Collab:Auth:SigningKey (48 random bytes in base64url,
        64 characters), alone on one line of standard output. Keep it secret: whoever has it can
        mint tokens. The server and the token command must be given the same key.

        Example:
          KEY=$(dotnet run --project server/CollabServer --no-launch-profile -- key)
        """;

    public const string RebuildUsage = """
        usage: CollabServer rebuild --from BACKUP_DIR --to DATA_DIR [SETTINGS]
               CollabServer rebuild --from-postgres CONNECTION_STRING --to DATA_DIR [SETTINGS]

        Writes every document of a continuous backup (Collab:Backup:Dir), or every live document
        PostgreSQL holds, into DATA_DIR, which must be empty or missing. A backup is checked
        whole first (checksums, versions without gaps, every op applies): anything wrong stops it
        with exit 1 and a sentence naming the file and offset, before anything is written.
        Settings are read like the server's (--Collab:Sync=Full|Normal|Off,
        --Collab:SnapshotInterval=N, ...). See docs/OPERATIONS.md, "Backup".
        """;

    /// <summary>Runs the command the arguments name and returns its exit code; null when they are the server's.</summary>
    public static int? Run(string[] args)
    {
        if (args.Length == 0)
        {
            return null;
        }
        var rest = args[1..];
        switch (args[0])
        {
            case "token":
                return AsksForHelp(rest) ? Print(TokenUsage) : TokenCommand.Run(rest);
            case "key":
                return AsksForHelp(rest) ? Print(KeyUsage) : KeyCommand.Run(rest);
            case "rebuild":
                return AsksForHelp(rest) ? Print(RebuildUsage) : RebuildCommand.Run(rest);
            case "help":
                return rest switch
                {
                    ["token"] => Print(TokenUsage),
                    ["key"] => Print(KeyUsage),
                    ["rebuild"] => Print(RebuildUsage),
                    _ => Print(Usage),
                };
        }
        if (IsCommandWord(args[0]))
        {
            Console.Error.WriteLine($"CollabServer: unknown command '{args[0]}'.");
            Console.Error.WriteLine();
            Console.Error.Write(Usage);
            Console.Error.WriteLine();
            return 1;
        }
        // The server's settings, unless help is asked for among them.
        return AsksForHelp(args) ? Print(Usage) : null;
    }

    private static bool AsksForHelp(string[] args) => args.Any(a => a is "--help" or "-h" or "-?");

    /// <summary>
    /// Neither a setting (<c>--key</c>, <c>-k</c>, <c>/key</c>, <c>key=value</c>) nor help:
    /// configuration ignores such a word, so the server would start as if it were not there.
    /// </summary>
    private static bool IsCommandWord(string arg) =>
        arg.Length > 0 && arg[0] is not ('-' or '/') && !arg.Contains('=', StringComparison.Ordinal);

    private static int Print(string text)
    {
        Console.Out.Write(text);
        Console.Out.WriteLine();
        return 0;
    }
}
