namespace Gpu.Engine.Data;

/// <summary>
/// Images as uint8 pixels (row-major [Count, Features]) with int labels in 0..Classes-1, kept on
/// the host exactly as read. Normalisation (x / 255 - 0.5, float32) happens when a batch is built.
/// </summary>
public sealed class Dataset
{
    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public int Count { get; }
    public int Features { get; }
    public int Classes { get; }
    public string Name { get; }

    public Dataset(string name, byte[] pixels, int[] labels, int features, int classes)
    {
        if (labels.Length == 0) throw new UserError($"{name}: the dataset is empty");
        if (pixels.Length != (long)labels.Length * features)
            throw new UserError($"{name}: {pixels.Length} pixels do not make {labels.Length} images of {features} features");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes)
                throw new UserError($"{name}: label {labels[i]} at index {i} is outside 0..{classes - 1}");
        Name = name; Pixels = pixels; Labels = labels; Count = labels.Length; Features = features; Classes = classes;
    }

    /// <summary>The preprocessing of the NumPy code (README): x / 255 - 0.5, as float32.</summary>
    public static float Normalize(byte pixel) => Gpu.Kernels.DataKernels.Normalize(pixel);   // the device gather's own formula

    /// <summary>A new dataset holding the given rows, in the given order.</summary>
    public Dataset Subset(IReadOnlyList<int> rows, string name)
    {
        var pixels = new byte[(long)rows.Count * Features];
        var labels = new int[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            Buffer.BlockCopy(Pixels, rows[i] * Features, pixels, i * Features, Features);
            labels[i] = Labels[rows[i]];
        }
        return new Dataset(name, pixels, labels, Features, Classes);
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
        for (long i = 0; i < x.Length; i++) x[i] = Normalize(Pixels[(long)start * Features + i]);
        return x;
    }
}

/// <summary>The standard train/test pair of a dataset folder.</summary>
public sealed record DataPair(Dataset Train, Dataset Test, string Folder);
