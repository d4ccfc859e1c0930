namespace Collab.Testing;

/// <summary>The repository the tests run in.</summary>
public static class Repo
{
    /// <summary>The repository's root folder (where CollabServer.sln is), found upwards from the tests' binaries.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "CollabServer.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("Run the tests from inside the repository.");
    }
}
