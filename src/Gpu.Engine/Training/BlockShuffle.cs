namespace Gpu.Engine.Training;

/// <summary>
/// The epoch order for a training set read in place from a file too large for the streaming buffer
/// (<c>--data-path stream</c>, <c>--stream-buffer</c>): the rows are cut into blocks of <see cref="BlockRows"/>
/// consecutive rows; each epoch the blocks are shuffled (seeded), taken <see cref="BufferBlocks"/> at a time
/// (a window, what the buffer holds), and the rows of each window are shuffled among themselves. The streamed
/// path then reads every block once per epoch, in order of need, a block being one sequential read of the file.
/// <para>
/// What this gives up against a full permutation: a row's batch-mates and neighbours in the epoch come only
/// from the other rows of its window (BufferBlocks of the file's blocks), and rows within one block always
/// share a window, so rows next to each other in the file meet in the same stretch of the epoch far more often
/// than chance; a row cannot move further than its window's span. A file sorted by class (or by time) therefore
/// gives windows with skewed classes unless the buffer spans many blocks: shuffle such a file once when writing it.
/// When the set fits the buffer (<see cref="Fits"/>) the order is the full permutation, exactly the resident path's.
/// </para>
/// </summary>
internal sealed record BlockShuffle(int BlockRows, int BufferBlocks)
{
    /// <summary>Rows per block: 1,024 rows of 784 pixels are 0.8 MB, one sequential read.</summary>
    public const int DefaultBlockRows = 1024;

    /// <summary>Blocks of <see cref="DefaultBlockRows"/> rows of <paramref name="features"/> bytes that <paramref name="bufferBytes"/> holds (at least 2).</summary>
    public static BlockShuffle ForBuffer(long bufferBytes, int features) =>
        new(DefaultBlockRows, (int)Math.Clamp(bufferBytes / ((long)DefaultBlockRows * features), 2, int.MaxValue));

    /// <summary>Rows the buffer holds.</summary>
    public long BufferRows => (long)BlockRows * BufferBlocks;

    /// <summary>Whether a set of <paramref name="count"/> rows fits the buffer: then every epoch is the full permutation.</summary>
    public bool Fits(int count) => count <= BufferRows;

    /// <summary>
    /// The order of epoch <paramref name="epoch"/> over <paramref name="count"/> rows: from stream 2^32 + epoch of the
    /// seed, a permutation of the blocks, then, window by window, a permutation of the window's rows. A permutation of
    /// all rows, the same for the same seed and epoch. A set that fits gets <see cref="MinibatchScheduler.FullPermutation"/>.
    /// </summary>
    public int[] Order(int count, ulong seed, int epoch)
    {
        if (Fits(count)) return MinibatchScheduler.FullPermutation(count, seed, epoch);
        var rng = Rng.For(seed, (1UL << 32) + (ulong)epoch);
        int blocks = (int)((count + (long)BlockRows - 1) / BlockRows);
        var blockOrder = rng.Permutation(blocks);
        var order = new int[count];
        var window = new List<int>();
        int at = 0;
        for (int w = 0; w < blocks; w += BufferBlocks)
        {
            window.Clear();
            for (int b = w; b < Math.Min(blocks, w + BufferBlocks); b++)
            {
                int first = blockOrder[b] * BlockRows, end = (int)Math.Min(count, (long)first + BlockRows);
                for (int r = first; r < end; r++) window.Add(r);
            }
            foreach (int i in rng.Permutation(window.Count)) order[at++] = window[i];
        }
        return order;
    }
}
