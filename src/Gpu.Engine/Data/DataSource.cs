namespace Gpu.Engine.Data;

/// <summary>
/// Where a run's data comes from, as one string that a checkpoint can store: a folder (IDX, NPY or CSV
/// files, see <see cref="Idx.ReadFolder"/>), or explicit files written
/// <c>train-images=PATH;train-labels=PATH;test-images=PATH;test-labels=PATH</c> (labels omitted for CSV).
/// </summary>
public static class DataSource
{
    public static string Files(string trainImages, string? trainLabels, string testImages, string? testLabels) =>
        $"train-images={Path.GetFullPath(trainImages)};train-labels={Full(trainLabels)};test-images={Path.GetFullPath(testImages)};test-labels={Full(testLabels)}";

    static string Full(string? p) => p == null ? "" : Path.GetFullPath(p);

    public static DataPair Load(string source)
    {
        if (!source.StartsWith("train-images=")) return Idx.ReadFolder(DataLocator.Resolve(source));
        var parts = source.Split(';').Select(p => p.Split('=', 2)).ToDictionary(p => p[0], p => p.Length > 1 && p[1].Length > 0 ? p[1] : null);
        string Need(string key) => parts.GetValueOrDefault(key) ?? throw new UserError($"--{key} is needed with explicit data files");
        var train = TableData.Read(Need("train-images"), parts.GetValueOrDefault("train-labels"), "train");
        var test = TableData.Read(Need("test-images"), parts.GetValueOrDefault("test-labels"), "test");
        return TableData.Pair(train, test, source);
    }
}
