namespace CollabServer;

/// <summary>
/// Limits of the REST API under <c>Collab:Rest:</c> (docs/OPERATIONS.md's settings, PROTOCOL §6):
/// requests per subject (the token's <c>sub</c>, or the remote address without one), and reads of
/// the past (<c>?version=</c>, <c>?at=</c>, <c>/history</c>, <c>restore</c>), which rebuild old
/// texts and read op rows off the documents' actors. A refusal is 429 <c>rate_limited</c>.
/// </summary>
public sealed class RestLimitsOptions
{
    public const string Section = "Rest";

    /// <summary>REST requests one subject may make a second, on average (token bucket per subject, per node).</summary>
    public double RequestsPerSecond { get; set; } = 200;

    /// <summary>REST requests one subject may make at once after a pause (the bucket's size; it starts full).</summary>
    public int RequestsBurst { get; set; } = 1000;

    /// <summary>
    /// Documents one subject may create a minute on one node (that many at once, then one every
    /// 60/n seconds), by <c>PUT</c> or by an authenticated hub connection's first write, which also
    /// spends its connection's <see cref="CollabOptions.DocumentsCreatedPerMinute"/>; 0: a <c>PUT</c>
    /// only writes documents that exist, and hub creations count against the connection alone.
    /// </summary>
    public int DocumentsCreatedPerMinute { get; set; } = 60;

    /// <summary>Past reads that read storage at once on this node (each holds a thread-pool thread while it reads SQLite).</summary>
    public int PastReads { get; set; } = 4;

    /// <summary>Past reads that may wait for one of <see cref="PastReads"/>; more are refused.</summary>
    public int PastReadQueue { get; set; } = 64;

    /// <summary>Past reads one subject may have in flight at once (until its answer is written).</summary>
    public int PastReadsPerSubject { get; set; } = 2;

    /// <summary>
    /// Past reads of one subject that may wait for one of <see cref="PastReadsPerSubject"/>, newest
    /// first: a newer one pushes the oldest waiting out (refused), so a client that asks again and
    /// again (a history slider) gets its latest answer.
    /// </summary>
    public int PastReadQueuePerSubject { get; set; } = 4;

    /// <summary>
    /// Bytes of rebuilt old texts in flight on this node, from the rebuild until the answer is
    /// written (a text of n code units counts 4n: the rope and the answer's string). A read that
    /// would pass it waits while at most as many bytes again wait; beyond that it is refused. A read
    /// larger than the whole budget waits until it runs alone.
    /// </summary>
    public long PastReadBytes { get; set; } = 256L * 1024 * 1024;
}
