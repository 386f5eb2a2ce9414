namespace Gpu.Engine.Data;

/// <summary>
/// Finds a data path given relative to the working folder, or, when the program runs from elsewhere, relative
/// to a folder above the program (the repository root, for the data that ships in data/).
/// </summary>
internal static class DataLocator
{
    /// <summary>A folder, as given when it exists or is absolute, else under a folder above the program, else as given.</summary>
    public static string Resolve(string folder) => Resolve(folder, Directory.Exists);

    /// <summary>A path for which <paramref name="exists"/> holds, found as <see cref="Resolve(string)"/> finds folders.</summary>
    public static string Resolve(string path, Func<string, bool> exists)
    {
        if (exists(path) || Path.IsPathRooted(path)) return path;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, path);
            if (exists(candidate)) return candidate;
        }
        return path;
    }
}
