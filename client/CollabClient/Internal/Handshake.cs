using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http.Connections.Client;

namespace Collab.Client.Internal;

/// <summary>
/// Why the hub's WebSocket could not be opened, as a typed <see cref="CollabException"/> (PROTOCOL §8),
/// as the TypeScript client's <c>classifyHandshake</c> and <c>diagnoseHandshake</c> do.
/// </summary>
/// <remarks>
/// The client skips negotiation, so a refused handshake surfaces as whatever the WebSocket
/// implementation throws (a <c>WebSocketException</c> whose message holds the status, or a test
/// server's own exception), without the server's sentence. So after a failed start the client asks
/// the hub's URL once over plain HTTP (<c>POST /hubs/collab</c>), with the same token, headers and
/// handler as the connection: 401 is <c>unauthorized</c>, 403 <c>forbidden</c> (reason
/// <see cref="CollabErrorReason.Origin"/> when the server's sentence names the origin), 5xx
/// <c>unavailable</c>, no answer at all <see cref="CollabErrorReason.Network"/>; any other answer
/// (400: the server would take the handshake) means the socket failed for a passing reason.
/// </remarks>
internal static partial class Handshake
{
    private static readonly TimeSpan s_probeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>The sentence of a refused origin names it: <c>origin https://… is not allowed (Collab:AllowedOrigins)</c>.</summary>
    [GeneratedRegex(@"\borigin\b.*\bnot allowed\b", RegexOptions.IgnoreCase)]
    private static partial Regex OriginRefusal();

    /// <summary>What an HTTP answer from the hub's URL says; a null status: no answer at all.</summary>
    public static CollabException Classify(HttpStatusCode? status, string? said, Uri url, Exception? cause)
    {
        said = string.IsNullOrWhiteSpace(said) ? null : said;
        if (status is null)
        {
            return new CollabException(ErrorCodes.Unavailable, CollabErrorReason.Network, $"The server at {url} did not answer{(cause is null ? "" : $": {cause.Message}")}.", null, cause);
        }
        if (status == HttpStatusCode.Unauthorized)
        {
            return new CollabException(ErrorCodes.Unauthorized, CollabErrorReason.Unauthorized, $"The server at {url} refused the connection: no valid token (missing, expired or not accepted){(said is null ? "" : $": {said}")}.", status, cause);
        }
        if (status == HttpStatusCode.Forbidden)
        {
            return said is not null && OriginRefusal().IsMatch(said)
                ? new CollabException(ErrorCodes.Forbidden, CollabErrorReason.Origin, $"The server at {url} refused the Origin this client sent: {said}.", status, cause)
                : new CollabException(ErrorCodes.Forbidden, CollabErrorReason.Forbidden, $"The server at {url} refused the connection{(said is null ? "" : $": {said}")}.", status, cause);
        }
        return new CollabException(ErrorCodes.Unavailable, CollabErrorReason.Unavailable, $"The server at {url} could not be connected to (HTTP {(int)status}{(said is null ? "" : $": {said}")}){(cause is null ? "" : $": {cause.Message}")}.", status, cause);
    }

    /// <summary>
    /// Asks the hub's URL why its socket could not be opened (see the remarks), with the
    /// connection's <paramref name="options"/>. <paramref name="failure"/> is what the start threw.
    /// </summary>
    public static async Task<CollabException> DiagnoseAsync(Uri hubUrl, HttpConnectionOptions? options, Exception failure, CancellationToken cancellationToken)
    {
        string? token = null;
        if (options?.AccessTokenProvider is { } tokens)
        {
            try
            {
                token = await tokens().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return new CollabException(ErrorCodes.Unauthorized, CollabErrorReason.Unauthorized, $"No access token: the token provider failed: {ex.Message}", null, ex);
            }
        }
        HttpMessageHandler handler = NewHandler(options);
        if (options?.HttpMessageHandlerFactory is { } factory)
        {
            handler = factory(handler) ?? handler;
        }
        using var http = new HttpClient(handler, disposeHandler: true) { Timeout = s_probeTimeout };
        using var request = new HttpRequestMessage(HttpMethod.Post, hubUrl);
        // A one-off question: the socket closes after the answer instead of idling in a pool.
        request.Headers.ConnectionClose = true;
        foreach (var (name, value) in options?.Headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        if (!string.IsNullOrEmpty(token))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            return Classify(null, null, hubUrl, failure);
        }
        using (response)
        {
            return Classify(response.StatusCode, await ReadSentenceAsync(response, cancellationToken).ConfigureAwait(false), hubUrl, failure);
        }
    }

    /// <summary>The problem document's <c>title</c> (else <c>detail</c>), if the answer is one.</summary>
    private static async Task<string?> ReadSentenceAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentType?.MediaType?.Contains("json", StringComparison.OrdinalIgnoreCase) != true)
        {
            return null;
        }
        try
        {
            using var problem = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var name in (string[])["title", "detail"])
            {
                if (problem.RootElement.ValueKind == JsonValueKind.Object && problem.RootElement.TryGetProperty(name, out var value)
                    && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } sentence)
                {
                    return sentence;
                }
            }
        }
        catch (Exception ex) when (ex is JsonException or IOException or HttpRequestException)
        {
            // Not a problem document: the status says enough.
        }
        return null;
    }

    private static SocketsHttpHandler NewHandler(HttpConnectionOptions? options)
    {
        var handler = new SocketsHttpHandler();
        if (options is null)
        {
            return handler;
        }
        if (options.Proxy is { } proxy)
        {
            handler.Proxy = proxy;
        }
        if (options.Credentials is { } credentials)
        {
            handler.Credentials = credentials;
        }
        if (options.Cookies is { } cookies)
        {
            handler.CookieContainer = cookies;
        }
        if (options.ClientCertificates is { Count: > 0 } certificates)
        {
            handler.SslOptions.ClientCertificates = certificates;
        }
        return handler;
    }
}
