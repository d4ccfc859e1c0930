using System.Buffers;
using System.Text;
using MessagePack;

namespace Collab.Testing;

/// <summary>
/// A denial-of-service probe as wire bytes: a <c>SubmitRequest</c> whose op is
/// <c>n</c> one-character inserts. Shared by the DecodeCostTests and CollabBench's
/// AttackDecodeBenchmarks (linked there), so the test and the benchmark decode the same message.
/// </summary>
public static class AttackMessages
{
    /// <summary>A MessagePack <c>SubmitRequest</c> map whose op is <paramref name="n"/> inserts of "a".</summary>
    public static byte[] MessagePackSubmit(int n)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteMapHeader(4);
        writer.Write("docId");
        writer.Write("attack");
        writer.Write("baseVersion");
        writer.Write(0);
        writer.Write("op");
        writer.WriteArrayHeader(n);
        for (var i = 0; i < n; i++)
        {
            writer.Write("a");
        }
        writer.Write("opId");
        writer.Write(1L);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The same request in JSON: <c>{"docId":"attack","baseVersion":0,"op":["a","a",…],"opId":1}</c>.</summary>
    public static byte[] JsonSubmit(int n) =>
        Encoding.UTF8.GetBytes("{\"docId\":\"attack\",\"baseVersion\":0,\"op\":[" + string.Join(',', Enumerable.Repeat("\"a\"", n)) + "],\"opId\":1}");
}
