using Microsoft.AspNetCore.Http.Features;

namespace CollabServer.Api;

/// <summary>
/// A request body read through a count: past <c>limit</c> bytes it throws the caller's error, so a
/// limit holds whether the body came with a <c>Content-Length</c> or chunked. It also marks the
/// request as read (<see cref="ReadKey"/>): such a request can no longer be forwarded to a document's
/// owner unless its body was buffered.
/// </summary>
internal sealed class CappedBody : Stream
{
    /// <summary>The <see cref="HttpContext.Items"/> key set once a byte of the body was read here.</summary>
    public const string ReadKey = "collab.body-read";

    private readonly Stream _inner;
    private readonly long _limit;
    private readonly Func<Exception> _tooLarge;
    private readonly HttpContext _http;
    private long _read;

    private CappedBody(HttpRequest request, long limit, Func<Exception> tooLarge)
    {
        _inner = request.Body;
        _limit = limit;
        _tooLarge = tooLarge;
        _http = request.HttpContext;
    }

    /// <summary>
    /// The request's body capped at <paramref name="limit"/> bytes. The server's own cap on the body
    /// is set just above it (Kestrel's default would stop a larger allowed body at 30 MB), so this
    /// count is what refuses.
    /// </summary>
    public static CappedBody Open(HttpRequest request, long limit, Func<Exception> tooLarge)
    {
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = limit + 1;
        }
        return new CappedBody(request, limit, tooLarge);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        _http.Items[ReadKey] = true;
        try
        {
            return Count(await _inner.ReadAsync(buffer, cancellationToken));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw _tooLarge(); // the server saw the excess first (it reads a chunk ahead)
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        _http.Items[ReadKey] = true;
        try
        {
            return Count(_inner.Read(buffer, offset, count));
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw _tooLarge();
        }
    }

    private int Count(int read)
    {
        _read += read;
        return _read > _limit ? throw _tooLarge() : read;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    // The request's own body is not this stream's to dispose.
    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
