using System.Net.Http.Json;
using System.Text.Json;
using Collab.Messages;
using Collab.Ot;

namespace CollabServer.Tests.Robustness;

/// <summary>Reads documents and their op logs over REST, and checks that the text is the replay of the log.</summary>
public static class DocumentLog
{
    private static readonly JsonSerializerOptions s_web = new(JsonSerializerDefaults.Web);

    public static async Task<List<string>> ListIdsAsync(HttpClient http)
    {
        var docs = await http.GetFromJsonAsync<JsonElement>("/api/docs");
        return [.. docs.EnumerateArray().Select(d => d.GetProperty("id").GetString()!)];
    }

    /// <summary>Every op of <paramref name="docId"/>, paging with <paramref name="limit"/>.</summary>
    public static async Task<List<OpMessage>> ReadOpsAsync(HttpClient http, string docId, int limit = 500)
    {
        var all = new List<OpMessage>();
        while (true)
        {
            var from = all.Count == 0 ? 0 : all[^1].Version;
            var page = await http.GetFromJsonAsync<List<OpMessage>>($"/api/docs/{docId}/ops?from={from}&limit={limit}", s_web);
            if (page is null || page.Count == 0)
            {
                return all;
            }
            all.AddRange(page);
        }
    }

    /// <summary>Asserts that the document's versions are 1..version with no gap and its text is the replay of its log from "". Returns the version.</summary>
    public static async Task<int> AssertTextIsReplayOfLogAsync(HttpClient http, string docId)
    {
        var doc = await http.GetFromJsonAsync<JsonElement>($"/api/docs/{docId}");
        var version = doc.GetProperty("version").GetInt32();
        var text = doc.GetProperty("text").GetString()!;
        var ops = await ReadOpsAsync(http, docId);
        Assert.Equal(Enumerable.Range(1, version), ops.Select(o => o.Version));
        var replay = "";
        foreach (var op in ops)
        {
            Assert.True(op.Op.Error is null, $"{docId} v{op.Version}: stored op is malformed: {op.Op.Error}");
            replay = op.Op.Apply(replay);
        }
        Assert.True(TextOperation.IsWellFormed(replay), $"{docId}: the replayed text has a lone surrogate");
        Assert.True(replay == text, $"{docId} at version {version}: text ({text.Length} code units) differs from the replay of its log ({replay.Length})");
        return version;
    }
}
