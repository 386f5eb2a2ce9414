namespace Gpu.Engine.Training;

/// <summary>
/// The one owner of the epoch's batches: the order in which training rows are visited (a fresh
/// seeded permutation every epoch; epoch e uses stream e of the seed, so epochs are independent of
/// each other and reproducible) and its cut into (offset into that order, rows) batches of
/// <see cref="BatchSize"/>. The last partial batch is trained on, not dropped. Both data paths
/// (<see cref="Runtime.IBatchSource"/>) are handed these batches; they do not cut the pass themselves.
/// </summary>
public sealed class MinibatchScheduler(int count, int batchSize, ulong seed)
{
    public int Count { get; } = count > 0 ? count : throw new ArgumentOutOfRangeException(nameof(count));
    public int BatchSize { get; } = batchSize > 0 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));
    public int StepsPerEpoch => (Count + BatchSize - 1) / BatchSize;

    /// <summary>The row order of epoch <paramref name="epoch"/> (1-based).</summary>
    public int[] EpochOrder(int epoch) => Rng.For(seed, 1000UL + (ulong)epoch).Permutation(Count);

    /// <summary>(offset into the epoch order, rows) of the epoch's batches from step <paramref name="fromStep"/> (0-based) on: a resumed epoch skips the ones done.</summary>
    public IReadOnlyList<(int Offset, int Rows)> Batches(int fromStep = 0) => Cut(Count, BatchSize, fromStep);

    /// <summary>
    /// <paramref name="count"/> rows cut into batches of <paramref name="batchSize"/>, the last one
    /// partial when the count is not a multiple: (offset, rows) of batch <paramref name="fromStep"/> and on.
    /// </summary>
    public static IReadOnlyList<(int Offset, int Rows)> Cut(int count, int batchSize, int fromStep = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(fromStep);
        var batches = new List<(int, int)>();
        for (long offset = (long)fromStep * batchSize; offset < count; offset += batchSize)
            batches.Add(((int)offset, (int)Math.Min(batchSize, count - offset)));
        return batches;
    }
}
