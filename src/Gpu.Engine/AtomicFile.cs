namespace Gpu.Engine;

/// <summary>Writes a file through a temporary file and a rename, so a reader never sees half a file.</summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string text) => Write(path, tmp => File.WriteAllText(tmp, text));

    public static void Write(string path, Action<string> writeTemp)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        try
        {
            writeTemp(tmp);
            File.Move(tmp, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch { }
            throw new UserError($"cannot write {path}: {e.Message.TrimEnd('.')}; choose another --output folder");
        }
    }

    /// <summary>Creates an output folder, or explains why it cannot.</summary>
    public static string EnsureFolder(string folder)
    {
        try
        {
            Directory.CreateDirectory(folder);
            var probe = Path.Combine(folder, $".write-test.{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return folder;
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException || e is NotSupportedException)
        {
            throw new UserError($"cannot write to output folder '{folder}': {e.Message.TrimEnd('.')}; choose another --output folder");
        }
    }
}
