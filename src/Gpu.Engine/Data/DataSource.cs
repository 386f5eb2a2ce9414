namespace Gpu.Engine.Data;

/// <summary>
/// Where a run's data comes from: a folder (IDX, NPY or CSV files, see <see cref="Idx.ReadFolder"/>), or
/// explicit files (training images and labels, test images and labels; no labels for CSV images). Every path
/// is a value of its own (a ';' or '=' in it is just a character) and is kept twice: as the user gave it
/// (<see cref="Entry.Given"/>, perhaps relative) and resolved to an absolute path when the run started
/// (<see cref="Entry.Resolved"/>). Saved runs store both; <see cref="Load"/> reads the resolved path while
/// it exists, and otherwise resolves the given one again from where the program runs now: the same rule
/// for train, resume, eval and gradcheck.
/// </summary>
internal sealed record DataSource(DataSource.Entry? Folder, DataSource.Entry? TrainImages, DataSource.Entry? TrainLabels,
    DataSource.Entry? TestImages, DataSource.Entry? TestLabels)
{
    /// <summary>The range of an NPY or CSV file's values (--pixel-range); IDX files hold uint8 pixels 0..255.</summary>
    public PixelRange PixelRange { get; init; } = PixelRange.Auto;

    /// <summary>A path as given and as resolved (absolute).</summary>
    public sealed record Entry(string Given, string Resolved)
    {
        /// <summary>The path to read: the resolved one while it exists, else the given one resolved again (working folder, then the folders above the program).</summary>
        public string Locate(Func<string, bool> exists) =>
            exists(Resolved) ? Resolved : Path.GetFullPath(DataLocator.Resolve(Given, exists));
    }

    /// <summary>A data folder, resolved now.</summary>
    public static DataSource OfFolder(string folder) =>
        new(new Entry(folder, Path.GetFullPath(DataLocator.Resolve(folder))), null, null, null, null);

    /// <summary>Explicit files, resolved now (labels are null for CSV images, which hold their labels).</summary>
    public static DataSource OfFiles(string trainImages, string? trainLabels, string testImages, string? testLabels) =>
        new(null, File(trainImages), trainLabels == null ? null : File(trainLabels), File(testImages), testLabels == null ? null : File(testLabels));

    static Entry File(string path) => new(path, Path.GetFullPath(DataLocator.Resolve(path, System.IO.File.Exists)));

    /// <summary>The entries that are set, under the names data files use for them: folder, train_images, ...</summary>
    public IEnumerable<(string Key, Entry Entry)> Entries()
    {
        if (Folder != null) yield return ("folder", Folder);
        if (TrainImages != null) yield return ("train_images", TrainImages);
        if (TrainLabels != null) yield return ("train_labels", TrainLabels);
        if (TestImages != null) yield return ("test_images", TestImages);
        if (TestLabels != null) yield return ("test_labels", TestLabels);
    }

    /// <summary>From named entries as <see cref="Entries"/> gives them; a folder, or at least the training and test images.</summary>
    public static DataSource FromEntries(IReadOnlyDictionary<string, Entry> entries)
    {
        var s = new DataSource(entries.GetValueOrDefault("folder"), entries.GetValueOrDefault("train_images"), entries.GetValueOrDefault("train_labels"),
            entries.GetValueOrDefault("test_images"), entries.GetValueOrDefault("test_labels"));
        if (s.Folder == null && (s.TrainImages == null || s.TestImages == null))
            throw new FormatException("a data source names a folder, or training and test images");
        return s;
    }

    /// <summary>The first path that can be found neither where it was resolved nor by resolving it again; null when all are there.</summary>
    public Entry? Missing()
    {
        foreach (var (key, e) in Entries())
        {
            Func<string, bool> exists = key == "folder" ? Directory.Exists : System.IO.File.Exists;
            if (!exists(e.Locate(exists))) return e;
        }
        return null;
    }

    /// <summary>As the user gave it: "data/fashion-mnist", or "train a.csv, test b.csv" / "train a.npy (labels b.npy), test ...".</summary>
    public string Describe()
    {
        if (Folder != null) return Folder.Given;
        static string Part(string what, Entry images, Entry? labels) => $"{what} {images.Given}{(labels == null ? "" : $" (labels {labels.Given})")}";
        return $"{Part("train", TrainImages!, TrainLabels)}, {Part("test", TestImages!, TestLabels)}";
    }

    /// <summary>
    /// Reads the data (every value checked); a problem is one <see cref="UserError"/> naming the file. With
    /// <paramref name="map"/> (the streamed data path) image files are read in place from a memory mapping where
    /// the format allows (<see cref="MappedImages"/>); each that does not is loaded, and <paramref name="map"/> told why.
    /// </summary>
    public DataPair Load(Action<string>? map = null)
    {
        if (Folder != null) return Idx.ReadFolder(Folder.Locate(Directory.Exists), Folder.Given, map, PixelRange);
        string? Path(Entry? e) => e?.Locate(System.IO.File.Exists);
        var train = TableData.Read(Path(TrainImages)!, Path(TrainLabels), "train", map: map, range: PixelRange);
        var test = TableData.Read(Path(TestImages)!, Path(TestLabels), "test", map: map, range: PixelRange);
        return TableData.Pair(train, test, Describe());
    }

    /// <summary>The test split only: a folder's test files, or the test images (and labels) alone.</summary>
    public Dataset LoadTest(int classes = 10)
    {
        if (Folder != null || TrainImages != null) return Load().Test;
        return TableData.Read(TestImages!.Locate(System.IO.File.Exists), TestLabels?.Locate(System.IO.File.Exists), "test", classes, range: PixelRange);
    }
}
