namespace Gpu.Engine.Data;

/// <summary>
/// Finds a data path given relative to the working folder, or, when the program runs from elsewhere, relative
/// to a folder above the program (the repository root, for the data that ships in data/); the default data folder
/// also where Debian's dataset-fashion-mnist package installs it, so an installed tool trains outside the repository.
/// </summary>
internal static class DataLocator
{
    /// <summary>The data --data defaults to: Fashion-MNIST as it ships in the repository.</summary>
    public const string DefaultFolder = "data/fashion-mnist";

    /// <summary>Where Debian's dataset-fashion-mnist package puts the same four IDX files.</summary>
    public const string SystemFolder = "/usr/share/datasets/fashion-mnist";

    /// <summary>What to do when the default data is nowhere: the line's advice.</summary>
    public const string DefaultAdvice = $"run from the repository (it ships in {DefaultFolder}), install Debian's dataset-fashion-mnist (into {SystemFolder}), or pass --data DIR";

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
        return path == DefaultFolder && exists(SystemFolder) ? SystemFolder : path;
    }
}
