using System.Net;
using CollabServer.Auth;
using CollabServer.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;

namespace CollabServer.Tests.Api;

/// <summary>
/// <c>Collab:AllowedOrigins</c> as people write it: one value on the command line, a list in
/// one value, or indexed keys; against an open server, where only the origin check applies.
/// </summary>
public sealed class AllowedOriginsTests() : HostedTest(new Dictionary<string, string?>
{
    // As --Collab:AllowedOrigins=https://editor.example sets it: one value, no index.
    ["Collab:AllowedOrigins"] = "https://editor.example",
})
{
    [Theory]
    [InlineData("https://a.example", null, new[] { "https://a.example" })]
    [InlineData("https://a.example,https://b.example", null, new[] { "https://a.example", "https://b.example" })]
    [InlineData("https://a.example; https://b.example", null, new[] { "https://a.example", "https://b.example" })]
    [InlineData(null, "https://a.example", new[] { "https://a.example" })]
    [InlineData("https://a.example", "https://b.example", new[] { "https://b.example", "https://a.example" })]
    [InlineData(null, null, new string[0])]
    public void OneValueAListInOneValueAndIndexedKeysAllCount(string? value, string? indexed, string[] expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Collab:AllowedOrigins"] = value,
            ["Collab:AllowedOrigins:0"] = indexed,
        }.Where(setting => setting.Value is not null)).Build();
        Assert.Equal(expected, AuthSetup.AllowedOriginsOf(configuration));
    }

    [Fact]
    public async Task AnOriginGivenAsOneValueIsAllowedAndAnotherIsNot()
    {
        async Task<HttpStatusCode> FromAsync(string origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/docs/x") { Headers = { { "Origin", origin } } };
            return (await Host.Http.SendAsync(request)).StatusCode;
        }
        Assert.Equal(HttpStatusCode.NotFound, await FromAsync("https://editor.example"));
        Assert.Equal(HttpStatusCode.Forbidden, await FromAsync("https://evil.example"));
    }
}
