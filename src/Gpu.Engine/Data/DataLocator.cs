namespace Gpu.Engine.Data;

/// <summary>Finds a data folder given relative to the repository when the program runs from elsewhere.</summary>
public static class DataLocator
{
    public static string Resolve(string folder)
    {
        if (Directory.Exists(folder) || Path.IsPathRooted(folder)) return folder;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, folder);
            if (Directory.Exists(candidate)) return candidate;
        }
        return folder;
    }
}
