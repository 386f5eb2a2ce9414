namespace Gpu.Engine.Data;

/// <summary>The one check every data reader makes before opening a file a user named.</summary>
internal static class InputFile
{
    /// <summary>Refuses a missing path, and a folder where a file is wanted (which "file not found" would misdescribe), in one line.</summary>
    public static void Require(string path)
    {
        if (File.Exists(path)) return;
        if (Directory.Exists(path))
            throw new UserError($"{path} is a folder, not a file; give the file itself (a data folder goes to --data)");
        throw new UserError($"{path}: file not found");
    }
}
