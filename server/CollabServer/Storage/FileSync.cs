using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CollabServer.Storage;

/// <summary>
/// Syncing files and directories to disk. .NET offers only <c>fsync</c> of a file it writes;
/// the node log needs <c>fdatasync</c> (its records, without the file's times), an
/// <c>fsync</c> of files another connection writes (a document's database and WAL), and of a
/// directory (a new file's name). On other systems than Linux the nearest .NET call is used.
/// </summary>
internal static partial class FileSync
{
    /// <summary>Syncs a file's data (and its size), not its times.</summary>
    public static void Data(SafeFileHandle handle)
    {
        if (OperatingSystem.IsLinux())
        {
            Check(fdatasync(handle.DangerousGetHandle().ToInt32()), "fdatasync");
        }
        else
        {
            RandomAccess.FlushToDisk(handle);
        }
    }

    /// <summary>Syncs a file by path, whoever wrote it; false when it does not exist.</summary>
    public static bool File(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        using (handle)
        {
            if (OperatingSystem.IsLinux())
            {
                Check(fsync(handle.DangerousGetHandle().ToInt32()), "fsync");
            }
            else
            {
                RandomAccess.FlushToDisk(handle);
            }
        }
        return true;
    }

    /// <summary>Syncs a directory, so the names of files made or removed in it are durable (Linux only; elsewhere a no-op).</summary>
    public static void Directory(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var fd = open(path, 0 /* O_RDONLY */);
        if (fd < 0)
        {
            Check(fd, "open");
        }
        try
        {
            Check(fsync(fd), "fsync");
        }
        finally
        {
            _ = close(fd);
        }
    }

    private static void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new IOException($"{call} failed: {Marshal.GetLastPInvokeErrorMessage()}", Marshal.GetLastPInvokeError());
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
