using System.Text.Json.Nodes;

namespace Collab.Client.Tests.Sync;

/// <summary>The shared vector files in tests/vectors, copied beside the test assembly.</summary>
internal static class Vectors
{
    public static JsonNode Read(string file) => JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, file)))!;

    /// <summary>One theory case per scenario of a file, by its name.</summary>
    public static TheoryData<string> ScenarioNames(JsonObject vectors)
    {
        var names = new TheoryData<string>();
        foreach (var scenario in vectors["scenarios"]!.AsArray())
        {
            names.Add(scenario!["name"]!.GetValue<string>());
        }
        return names;
    }
}
