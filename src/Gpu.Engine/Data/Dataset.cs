namespace Gpu.Engine.Data;

/// <summary>
/// Images as uint8 pixels (row-major [Count, Features]) with int labels in 0..Classes-1, kept on
/// the host exactly as read. Normalisation (x / 255 - 0.5, float32) happens when a batch is built.
/// A dataset may instead read its pixels in place from a memory-mapped file (<see cref="Mapped"/>, for
/// <c>--data-path stream</c> over sets larger than memory): then only its labels and the file rows it holds
/// are in memory, <see cref="CopyRows"/> reads pixels, and <see cref="Pixels"/> reads the whole set in once.
/// </summary>
internal sealed class Dataset
{
    byte[]? pixels;
    /// <summary>The mapped file the pixels are read from, or null when they are in memory.</summary>
    public MappedImages? Mapped { get; }
    /// <summary>With <see cref="Mapped"/>: the file row of each of this dataset's rows, ascending (null: all rows, in file order).</summary>
    readonly int[]? fileRows;

    /// <summary>Every pixel in memory; a mapped dataset reads them all in on first use (the streamed path never asks for them).</summary>
    public byte[] Pixels => pixels ??= ReadAll();

    /// <summary>Pixel bytes of the whole set: what it takes in memory when loaded.</summary>
    public long Bytes => (long)Count * Features;
    public int[] Labels { get; }
    public int Count { get; }
    public int Features { get; }
    public int Classes { get; }
    public string Name { get; }
    /// <summary>How the file's values became these uint8 pixels, for the output line that names the data: "uint8, 0..255 as stored", "floats read as 0..1 (--pixel-range 0-1), times 255".</summary>
    public string Scaling { get; init; } = ByteScaling;

    /// <summary>The scaling of a file of uint8 pixels (IDX, uint8 NPY): taken as they are.</summary>
    public const string ByteScaling = "uint8, 0..255 as stored";

    public Dataset(string name, byte[] pixels, int[] labels, int features, int classes)
    {
        if (labels.Length == 0) throw new UserError($"{name}: the dataset is empty");
        if (pixels.Length != (long)labels.Length * features)
            throw new UserError($"{name}: {pixels.Length} pixels do not make {labels.Length} images of {features} features");
        CheckLabels(name, labels, classes);
        Name = name; this.pixels = pixels; Labels = labels; Count = labels.Length; Features = features; Classes = classes;
    }

    /// <summary>A dataset read in place from <paramref name="file"/>: rows <paramref name="rows"/> of it (ascending; null: all of them), labelled by <paramref name="labels"/>.</summary>
    public Dataset(string name, MappedImages file, int[]? rows, int[] labels, int classes)
    {
        if (labels.Length == 0) throw new UserError($"{name}: the dataset is empty");
        if (labels.Length != (rows?.Length ?? file.Count))
            throw new UserError($"{file.Path} holds {rows?.Length ?? file.Count} images but there are {labels.Length} labels; use matching files");
        CheckLabels(name, labels, classes);
        Scaling = file.Scaling;
        Name = name; Mapped = file; fileRows = rows; Labels = labels; Count = labels.Length; Features = file.Features; Classes = classes;
    }

    static void CheckLabels(string name, int[] labels, int classes)
    {
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes)
                throw new UserError($"{name}: label {labels[i]} at index {i} is outside 0..{classes - 1}");
    }

    /// <summary>The pixels of rows [<paramref name="first"/>, first + <paramref name="count"/>) into <paramref name="dst"/>, row after row.</summary>
    public void CopyRows(int first, int count, Span<byte> dst)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)first + count, Count);
        if (Mapped == null || pixels != null) { Pixels.AsSpan(first * Features, count * Features).CopyTo(dst); return; }
        if (fileRows != null) { Mapped.CopyRows(fileRows.AsSpan(first, count), dst); return; }
        var rows = new int[count];
        for (int i = 0; i < count; i++) rows[i] = first + i;
        Mapped.CopyRows(rows, dst);
    }

    byte[] ReadAll()
    {
        var all = new byte[Bytes];
        const int chunk = 4096;
        for (int r = 0; r < Count; r += chunk)
        {
            int n = Math.Min(chunk, Count - r);
            CopyRows(r, n, all.AsSpan(r * Features, n * Features));
        }
        return all;
    }

    /// <summary>The preprocessing of the NumPy code (README): x / 255 - 0.5, as float32.</summary>
    public static float Normalize(byte pixel) => Gpu.Kernels.DataKernels.Normalize(pixel);   // the device gather's own formula

    /// <summary>A new dataset holding the given rows, in the given order.</summary>
    public Dataset Subset(IReadOnlyList<int> rows, string name)
    {
        if (Mapped != null && this.pixels == null && IsAscending(rows))   // still in place: the file rows of the chosen rows
            return new Dataset(name, Mapped, rows.Select(r => fileRows?[r] ?? r).ToArray(), rows.Select(r => Labels[r]).ToArray(), Classes);
        var pixels = new byte[(long)rows.Count * Features];
        var labels = new int[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            Buffer.BlockCopy(Pixels, rows[i] * Features, pixels, i * Features, Features);
            labels[i] = Labels[rows[i]];
        }
        return new Dataset(name, pixels, labels, Features, Classes) { Scaling = Scaling };
    }

    static bool IsAscending(IReadOnlyList<int> rows)
    {
        for (int i = 1; i < rows.Count; i++) if (rows[i] <= rows[i - 1]) return false;
        return true;
    }

    /// <summary>The first <paramref name="count"/> rows (all if count is larger).</summary>
    public Dataset Take(int count) =>
        count >= Count ? this : Subset(Enumerable.Range(0, count).ToArray(), $"{Name}[:{count}]");

    /// <summary>
    /// Seeded split into (train, validation): a permutation drawn from <paramref name="seed"/>;
    /// the first round(fraction * Count) rows of it are held out for validation.
    /// </summary>
    public (Dataset Train, Dataset? Validation) Split(double fraction, ulong seed)
    {
        if (fraction <= 0) return (this, null);
        int nVal = (int)Math.Round(fraction * Count);
        if (nVal <= 0 || nVal >= Count)
            throw new UserError($"--val-fraction {fraction} leaves no training or no validation images out of {Count}; use a value between 0 and 1");
        var perm = new Rng(seed).Permutation(Count);
        var val = perm.Take(nVal).OrderBy(i => i).ToArray();
        var train = perm.Skip(nVal).OrderBy(i => i).ToArray();
        return (Subset(train, Name + "/train"), Subset(val, Name + "/validation"));
    }

    /// <summary>Float32 features of rows [start, start+count), normalised, row-major.</summary>
    public float[] Features32(int start, int count)
    {
        var x = new float[(long)count * Features];
        var bytes = new byte[x.Length];
        CopyRows(start, count, bytes);
        for (long i = 0; i < x.Length; i++) x[i] = Normalize(bytes[i]);
        return x;
    }
}

/// <summary>The standard train/test pair of a dataset folder.</summary>
internal sealed record DataPair(Dataset Train, Dataset Test, string Folder)
{
    /// <summary>
    /// The first <paramref name="limit"/> training images (--limit; 0: all). A limit above the training set keeps all of it,
    /// and <paramref name="note"/> says so rather than let a typo pass for a choice.
    /// </summary>
    public DataPair Limited(int limit, Action<string>? note)
    {
        if (limit <= 0) return this;
        if (limit >= Train.Count)
        {
            if (limit > Train.Count) note?.Invoke($"--limit {limit:N0} is more than the {Train.Count:N0} training images in {Folder}; using all {Train.Count:N0}");
            return this;
        }
        return this with { Train = Train.Take(limit) };
    }
}
