using System.Collections.Concurrent;
using System.Net;
using CollabServer.Auth;
using Microsoft.IdentityModel.Tokens;

namespace Collab.Client.Tests.Integration;

/// <summary>
/// Why a connection or a join fails (PROTOCOL §8): OpenAsync throws a typed CollabException, and
/// an open document whose reconnect is refused for good stops retrying until ReconnectNow. Against
/// the real server with a signing key, over the in-memory transport and (the refusals at the
/// handshake) over real sockets: Kestrel on 127.0.0.1 and the client's own ClientWebSocket, whose
/// failed handshake hides the status code that the in-memory transport shows.
/// </summary>
public sealed class RefusedConnectionTests
{
    private const string Key = "client-test-signing-key-of-at-least-32-bytes";
    private static readonly TimeSpan s_timeout = ServerHost.Timeout;

    private static ServerHost NewProtectedHost(bool realSockets = false) => new(new Dictionary<string, string>
    {
        ["Collab:Auth:SigningKey"] = Key,
        ["Collab:AllowedOrigins:0"] = "https://editor.example",
    }, realSockets);

    private static string Token(string scope, TimeSpan? lifetime = null) =>
        TokenCommand.Mint(new SymmetricSecurityKey(System.Text.Encoding.UTF8.GetBytes(Key)), new AuthOptions(), "ada", null, scope, lifetime ?? TimeSpan.FromHours(1));

    private static Func<Task<string?>> Tokens(string? token) => () => Task.FromResult(token);

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task OpenWithoutATokenIsUnauthorizedAndNotRetryable(bool providerGivesNone, bool realSockets)
    {
        await using var host = NewProtectedHost(realSockets);
        var client = host.CreateClient(CollabProtocol.MessagePack, tokens: providerGivesNone ? Tokens(null) : null);

        var error = await Assert.ThrowsAsync<CollabException>(() => client.OpenAsync("notes")).WaitAsync(s_timeout);

        Assert.Equal(ErrorCodes.Unauthorized, error.Code);
        Assert.Equal(CollabErrorReason.Unauthorized, error.Reason);
        Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
        Assert.False(error.IsRetryable);
        Assert.Empty(client.Documents);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OpenWithAnExpiredTokenIsUnauthorized(bool realSockets)
    {
        await using var host = NewProtectedHost(realSockets);
        var client = host.CreateClient(CollabProtocol.MessagePack, tokens: Tokens(Token("doc:*:edit", TimeSpan.FromMinutes(-5))));

        var error = await Assert.ThrowsAsync<CollabException>(() => client.OpenAsync("notes")).WaitAsync(s_timeout);

        Assert.Equal(ErrorCodes.Unauthorized, error.Code);
        Assert.Equal(CollabErrorReason.Unauthorized, error.Reason);
        Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
        Assert.False(error.IsRetryable);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OpenWithATokenWithoutTheDocumentsGrantIsForbidden(bool realSockets)
    {
        await using var host = NewProtectedHost(realSockets);
        var client = host.CreateClient(CollabProtocol.MessagePack, tokens: Tokens(Token("doc:other:edit")));

        var error = await Assert.ThrowsAsync<CollabException>(() => client.OpenAsync("notes")).WaitAsync(s_timeout);

        Assert.Equal(ErrorCodes.Forbidden, error.Code);
        Assert.Equal(CollabErrorReason.Forbidden, error.Reason);
        Assert.False(error.IsRetryable);
        Assert.Empty(client.Documents);
        // The same client opens what the token grants.
        await using var other = await client.OpenAsync("other").WaitAsync(s_timeout);
        Assert.Equal(ConnectionState.Connected, other.ConnectionState);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task OpenWithAnOriginTheServerDoesNotAllowIsForbiddenWithTheReasonOrigin(bool realSockets)
    {
        await using var host = NewProtectedHost(realSockets);
        var client = host.CreateClient(
            CollabProtocol.MessagePack,
            tokens: Tokens(Token("doc:*:edit")),
            configure: http => http.Headers["Origin"] = "https://elsewhere.example");

        var error = await Assert.ThrowsAsync<CollabException>(() => client.OpenAsync("notes")).WaitAsync(s_timeout);

        Assert.Equal(ErrorCodes.Forbidden, error.Code);
        Assert.Equal(CollabErrorReason.Origin, error.Reason);
        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
        Assert.Contains("https://elsewhere.example", error.Message, StringComparison.Ordinal);
        Assert.False(error.IsRetryable);
    }

    [Fact]
    public async Task OpenAgainstAServerThatIsDownIsUnavailableAndRetryable()
    {
        // Nothing listens on port 1: a real WebSocket, and a real HTTP probe, get no answer.
        await using var client = new CollabClient(new CollabClientOptions { ServerUrl = new Uri("http://127.0.0.1:1"), AccessTokenProvider = Tokens("any") });

        var error = await Assert.ThrowsAsync<CollabException>(() => client.OpenAsync("notes")).WaitAsync(s_timeout);

        Assert.Equal(ErrorCodes.Unavailable, error.Code);
        Assert.Equal(CollabErrorReason.Network, error.Reason);
        Assert.Null(error.StatusCode);
        Assert.True(error.IsRetryable);
    }

    [Fact]
    public async Task AnOpenDocumentWhoseTokenExpiresStopsRetryingReportsUnauthorizedAndReconnectsWhenAskedWithAGoodToken()
    {
        await using var host = NewProtectedHost();
        var good = Token("doc:*:edit");
        var expired = Token("doc:*:edit", TimeSpan.FromMinutes(-5));
        var current = good;
        var tokenCalls = 0;
        var killer = new SocketKiller();
        var client = host.CreateClient(CollabProtocol.Json, killer, tokens: () =>
        {
            Interlocked.Increment(ref tokenCalls);
            return Task.FromResult<string?>(Volatile.Read(ref current));
        });
        var doc = await client.OpenAsync("expiring").WaitAsync(s_timeout);
        doc.Insert(0, "before ");
        await doc.WhenSynchronizedAsync().WaitAsync(s_timeout);
        var errors = new ConcurrentQueue<CollabErrorEventArgs>();
        doc.Error += (_, e) => errors.Enqueue(e);
        var states = new ConcurrentQueue<ConnectionState>();
        doc.ConnectionStateChanged += (_, e) => states.Enqueue(e.Current);

        Volatile.Write(ref current, expired);
        Assert.Equal(1, killer.KillAll());

        await ServerHost.EventuallyAsync(() => !errors.IsEmpty, "the document reported why it cannot reconnect");
        var error = Assert.Single(errors).Error;
        Assert.Equal(ErrorCodes.Unauthorized, error.Code);
        Assert.Equal(CollabErrorReason.Unauthorized, error.Reason);
        Assert.False(error.IsRetryable);
        Assert.Equal(ConnectionState.Disconnected, doc.ConnectionState);
        Assert.Equal(ConnectionState.Disconnected, client.ConnectionState);
        Assert.Equal([ConnectionState.Reconnecting, ConnectionState.Disconnected], states);

        var callsWhenStopped = Volatile.Read(ref tokenCalls);

        // Edits made meanwhile are kept, and land once the app reconnects with a good token.
        doc.Insert(doc.Length, "after");
        Volatile.Write(ref current, good);
        doc.ReconnectNow();
        await ServerHost.EventuallyAsync(() => doc.ConnectionState == ConnectionState.Connected, "the document reconnected");
        await doc.WhenSynchronizedAsync().WaitAsync(s_timeout);
        Assert.True(Volatile.Read(ref tokenCalls) > callsWhenStopped, "ReconnectNow asked the token provider again");
        Assert.Equal(ConnectionState.Connected, client.ConnectionState);
        Assert.Single(errors);

        var reader = host.CreateClient(CollabProtocol.MessagePack, tokens: Tokens(good));
        var read = await reader.OpenAsync("expiring").WaitAsync(s_timeout);
        Assert.Equal("before after", read.Text);
        Assert.Empty(host.Errors.Entries);
    }
}
