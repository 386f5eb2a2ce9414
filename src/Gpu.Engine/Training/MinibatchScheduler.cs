namespace Gpu.Engine.Training;

/// <summary>
/// The one owner of the epoch's batches: the order in which training rows are visited (a fresh
/// seeded permutation every epoch; epoch e uses stream e of the seed, so epochs are independent of
/// each other and reproducible) and its cut into (offset into that order, rows) batches of
/// <see cref="BatchSize"/>. The last partial batch is trained on, not dropped. Both data paths
/// (<see cref="Runtime.IBatchSource"/>) are handed these batches; they do not cut the pass themselves.
/// With <paramref name="blocks"/> (a training set read in place from a file larger than the streaming
/// buffer) the order is <see cref="BlockShuffle.Order"/>'s instead; when the set fits the buffer it is the
/// full permutation all the same.
/// </summary>
internal sealed class MinibatchScheduler(int count, int batchSize, ulong seed, BlockShuffle? blocks = null)
{
    public int Count { get; } = count > 0 ? count : throw new ArgumentOutOfRangeException(nameof(count));
    public int BatchSize { get; } = batchSize > 0 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));
    public int StepsPerEpoch => (Count + BatchSize - 1) / BatchSize;

    /// <summary>The block shuffle in use, or null when every epoch is a full permutation (no blocks, or a set that fits the buffer).</summary>
    public BlockShuffle? Blocks { get; } = blocks != null && !blocks.Fits(count) ? blocks : null;

    /// <summary>The row order of epoch <paramref name="epoch"/> (1-based).</summary>
    public int[] EpochOrder(int epoch) => Blocks?.Order(Count, seed, epoch) ?? FullPermutation(Count, seed, epoch);

    /// <summary>A uniform permutation of all <paramref name="count"/> rows, from stream 1000 + epoch of the seed.</summary>
    public static int[] FullPermutation(int count, ulong seed, int epoch) => Rng.For(seed, 1000UL + (ulong)epoch).Permutation(count);

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
