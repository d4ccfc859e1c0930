using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;
using CollabServer.Storage;

namespace CollabServer.Backup;

/// <summary>
/// The continuous backup's files. Each document has a folder <c>{Dir}/docs/{id}/</c> of batch
/// files named <c>{first:D10}-{last:D10}.ops</c>, the versions they hold; a file is written under
/// <c>.tmp</c>, fsynced, renamed into place and the folder fsynced, and never changed after, so a
/// folder is an append-only sequence of complete batches. A file is a header, then one record per
/// version, first to last:
/// <code>
/// header: "CBKOPS01" (8 bytes) | first (int32) | last (int32) | CRC-32 of the 16 bytes before (uint32)
/// record: payload length (uint32) | CRC-32 of the payload (uint32) | payload
/// payload: version (int32) | op id (int64) | created at, Unix ms (int64) | client id length (int32) | client id (UTF-8) | op JSON (UTF-8, the rest)
/// </code>
/// All integers little-endian; CRC-32 is IEEE 802.3 (System.IO.Hashing). The strings are the op
/// log's column values byte for byte (UTF-8, as SQLite stores them).
/// </summary>
public static class BackupFormat
{
    public const string Extension = ".ops";
    public const string TempExtension = ".tmp";
    private static ReadOnlySpan<byte> Magic => "CBKOPS01"u8;
    public const int HeaderLength = 20;
    private const int RecordHeaderLength = 8;
    private const int FixedPayloadLength = 4 + 8 + 8 + 4;

    /// <summary>The smallest a record can be (an empty client id and op), so a file of n bytes holds at most (n - header) / this many.</summary>
    public const int MinRecordLength = RecordHeaderLength + FixedPayloadLength;

    /// <summary>
    /// The largest batch file read: far above any the server writes (<c>Collab:Backup:MaxBatchBytes</c>,
    /// 16 MiB, plus one op of at most a whole document's JSON), so a larger one is refused unread.
    /// </summary>
    public const long MaxFileBytes = 1L << 30;

    /// <summary>
    /// Why a batch file of <paramref name="fileBytes"/> bytes cannot hold versions <paramref name="first"/>..<paramref name="last"/>
    /// judging by its size alone, or null when it can: checked before anything is read or allocated.
    /// </summary>
    public static string? ImplausibleSize(long fileBytes, int first, int last)
    {
        var records = (long)last - first + 1;
        if (fileBytes > MaxFileBytes)
        {
            return $"{fileBytes} bytes is larger than any batch file ({MaxFileBytes} bytes at most)";
        }
        var least = HeaderLength + records * MinRecordLength;
        return fileBytes < least
            ? $"its name says it holds versions {first}-{last} ({records} records, at least {least} bytes) but it has {fileBytes} bytes"
            : null;
    }

    /// <summary>Strict UTF-8: a string that cannot be stored byte for byte throws instead of being changed.</summary>
    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The folder of one document's batches.</summary>
    public static string DocDir(string backupDir, string docId) => Path.Combine(backupDir, "docs", docId);

    public static string FileName(int first, int last) => $"{first:D10}-{last:D10}{Extension}";

    /// <summary>The versions a batch file's name says it holds, or null for a name that is not a batch file's.</summary>
    public static (int First, int Last)? ParseName(string fileName)
    {
        if (!fileName.EndsWith(Extension, StringComparison.Ordinal))
        {
            return null;
        }
        var parts = fileName[..^Extension.Length].Split('-');
        return parts.Length == 2 && int.TryParse(parts[0], out var first) && int.TryParse(parts[1], out var last) && first >= 1 && last >= first
            ? (first, last)
            : null;
    }

    /// <summary>A document's batch files, oldest first, with the versions their names say they hold.</summary>
    public static List<(string Path, int First, int Last)> ListBatches(string docDir)
    {
        var result = new List<(string, int, int)>();
        if (Directory.Exists(docDir))
        {
            foreach (var file in Directory.EnumerateFiles(docDir, "*" + Extension))
            {
                if (ParseName(Path.GetFileName(file)) is { } range)
                {
                    result.Add((file, range.First, range.Last));
                }
            }
        }
        result.Sort((a, b) => a.Item2.CompareTo(b.Item2));
        return result;
    }

    /// <summary>The size of a record for <paramref name="row"/>, header included.</summary>
    public static int RecordLength(OpRow row) => RecordHeaderLength + FixedPayloadLength + s_utf8.GetByteCount(row.ClientId) + s_utf8.GetByteCount(row.Op);

    /// <summary>Writes a header and the records of <paramref name="rows"/> (consecutive versions) to <paramref name="output"/>.</summary>
    public static void Write(Stream output, IReadOnlyList<OpRow> rows)
    {
        Span<byte> header = stackalloc byte[HeaderLength];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], rows[0].Version);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], rows[^1].Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], Crc32.HashToUInt32(header[..16]));
        output.Write(header);
        var buffer = new byte[4096];
        foreach (var row in rows)
        {
            var clientLength = s_utf8.GetByteCount(row.ClientId);
            var payloadLength = FixedPayloadLength + clientLength + s_utf8.GetByteCount(row.Op);
            if (buffer.Length < RecordHeaderLength + payloadLength)
            {
                buffer = new byte[Math.Max(buffer.Length * 2, RecordHeaderLength + payloadLength)];
            }
            var payload = buffer.AsSpan(RecordHeaderLength, payloadLength);
            BinaryPrimitives.WriteInt32LittleEndian(payload, row.Version);
            BinaryPrimitives.WriteInt64LittleEndian(payload[4..], row.OpId);
            BinaryPrimitives.WriteInt64LittleEndian(payload[12..], row.CreatedAtMs);
            BinaryPrimitives.WriteInt32LittleEndian(payload[20..], clientLength);
            s_utf8.GetBytes(row.ClientId, payload[FixedPayloadLength..]);
            s_utf8.GetBytes(row.Op, payload[(FixedPayloadLength + clientLength)..]);
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)payloadLength);
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(4), Crc32.HashToUInt32(payload));
            output.Write(buffer, 0, RecordHeaderLength + payloadLength);
        }
    }

    /// <summary>
    /// Reads a batch file, checking its header, every record's checksum, and that it holds exactly
    /// the versions <paramref name="first"/>..<paramref name="last"/> its name says, in order.
    /// Throws <see cref="InvalidDataException"/> naming the file and the byte offset of what is wrong.
    /// </summary>
    public static List<OpRow> Read(string path, int first, int last)
    {
        InvalidDataException Bad(long offset, string what) => new($"{path}: offset {offset}: {what}");
        if (last < first || first < 1)
        {
            throw Bad(0, $"versions {first}-{last} are not a range of versions");
        }
        // Judged by the size before anything is read or allocated: a name can claim any range.
        if (ImplausibleSize(new FileInfo(path).Length, first, last) is { } implausible)
        {
            throw Bad(0, implausible);
        }
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < HeaderLength || !bytes.AsSpan(0, 8).SequenceEqual(Magic))
        {
            throw Bad(0, "not a backup batch file (bad magic)");
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(16)) != Crc32.HashToUInt32(bytes.AsSpan(0, 16)))
        {
            throw Bad(16, "header checksum mismatch");
        }
        if (BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != first || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(12)) != last)
        {
            throw Bad(8, $"the header's versions differ from the file name's {first}-{last}");
        }
        var rows = new List<OpRow>(last - first + 1);
        var offset = HeaderLength;
        while (offset < bytes.Length)
        {
            if (bytes.Length - offset < RecordHeaderLength)
            {
                throw Bad(offset, "truncated record header");
            }
            var length = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset));
            if (length < FixedPayloadLength || length > bytes.Length - offset - RecordHeaderLength)
            {
                throw Bad(offset, $"record length {length} is impossible here");
            }
            var payload = bytes.AsSpan(offset + RecordHeaderLength, (int)length);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 4)) != Crc32.HashToUInt32(payload))
            {
                throw Bad(offset, "record checksum mismatch");
            }
            var version = BinaryPrimitives.ReadInt32LittleEndian(payload);
            var clientLength = BinaryPrimitives.ReadInt32LittleEndian(payload[20..]);
            if (clientLength < 0 || clientLength > payload.Length - FixedPayloadLength)
            {
                throw Bad(offset, $"client id length {clientLength} is impossible here");
            }
            var expected = first + rows.Count;
            if (version != expected)
            {
                throw Bad(offset, $"version {version} where {expected} was expected");
            }
            try
            {
                rows.Add(new OpRow(
                    version,
                    s_utf8.GetString(payload.Slice(FixedPayloadLength, clientLength)),
                    BinaryPrimitives.ReadInt64LittleEndian(payload[4..]),
                    BinaryPrimitives.ReadInt64LittleEndian(payload[12..]),
                    s_utf8.GetString(payload[(FixedPayloadLength + clientLength)..])));
            }
            catch (DecoderFallbackException)
            {
                throw Bad(offset, "a string is not UTF-8");
            }
            offset += RecordHeaderLength + (int)length;
        }
        if (rows.Count != last - first + 1)
        {
            throw Bad(offset, $"{rows.Count} records where the name says {last - first + 1} (truncated)");
        }
        return rows;
    }

    /// <summary>Writes a batch durably: under a temporary name, fsynced, renamed into place, the folder fsynced.</summary>
    public static string WriteDurably(string docDir, IReadOnlyList<OpRow> rows)
    {
        var created = !Directory.Exists(docDir);
        Directory.CreateDirectory(docDir);
        if (created)
        {
            SyncDirectory(Path.GetDirectoryName(docDir)!);
        }
        var final = Path.Combine(docDir, FileName(rows[0].Version, rows[^1].Version));
        var temporary = final + TempExtension;
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            Write(file, rows);
            file.Flush(flushToDisk: true);
        }
        File.Move(temporary, final, overwrite: false);
        SyncDirectory(docDir);
        return final;
    }

    /// <summary>fsyncs a folder, so a file created or renamed in it survives a power cut (POSIX; a no-op elsewhere).</summary>
    public static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        var fd = Native.open(dir, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            return;
        }
        try
        {
            Native.fsync(fd);
        }
        finally
        {
            Native.close(fd);
        }
    }

    private static partial class Native
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
