namespace CollabServer.Documents;

/// <summary>
/// However many writers it has, a document grows its log at a bounded rate: its members' ops spend
/// their <see cref="Types.OpSize"/> from one bucket (<see cref="CollabOptions.DocumentWriteBytesPerSecond"/>).
/// </summary>
internal sealed class DocumentWriteBudget(CollabOptions options, Diagnostics.CollabMetrics metrics)
{
    private readonly TokenBucket _bytes = new(options.DocumentWriteBytesPerSecond, options.DocumentWriteBytesBurst);

    /// <summary>Spends <paramref name="bytes"/>; <c>rate_limited</c>, spending nothing, when the document has written its share.</summary>
    public void Take(string docId, long bytes)
    {
        if (!_bytes.TryTake(bytes))
        {
            metrics.LimitRefused("document_write_bytes");
            throw new Errors.CollabError(Collab.ErrorCodes.RateLimited, $"document '{docId}' takes at most {options.DocumentWriteBytesPerSecond} bytes of ops a second; slow down");
        }
    }
}
