namespace Gpu.Engine.Training;

/// <summary>
/// Decides the order in which training rows are visited: a fresh seeded permutation every epoch
/// (epoch e uses stream e of the seed, so epochs are independent of each other and reproducible),
/// cut into batches of <see cref="BatchSize"/>; the last partial batch is trained on, not dropped.
/// </summary>
public sealed class MinibatchScheduler(int count, int batchSize, ulong seed)
{
    public int Count { get; } = count > 0 ? count : throw new ArgumentOutOfRangeException(nameof(count));
    public int BatchSize { get; } = batchSize > 0 ? batchSize : throw new ArgumentOutOfRangeException(nameof(batchSize));
    public int StepsPerEpoch => (Count + BatchSize - 1) / BatchSize;

    /// <summary>The row order of epoch <paramref name="epoch"/> (1-based).</summary>
    public int[] EpochOrder(int epoch) => Rng.For(seed, 1000UL + (ulong)epoch).Permutation(Count);

    /// <summary>(offset into the epoch order, rows) of every batch of an epoch.</summary>
    public IEnumerable<(int Offset, int Rows)> Batches()
    {
        for (int offset = 0; offset < Count; offset += BatchSize)
            yield return (offset, Math.Min(BatchSize, Count - offset));
    }
}
