using Gpu.Engine.Data;
using Gpu.Engine.Runtime;
using Gpu.Engine.Training;

namespace Gpu.Tests.Training;

/// <summary>The epoch order of a training set read in place from its file: blocks shuffled, rows shuffled within a buffer of blocks.</summary>
public sealed class BlockShuffleTests : TempFolderTest
{
    [TestCase(10_000, 64, 8)]
    [TestCase(10_001, 64, 8)]   // a partial last block
    [TestCase(5_000, 1024, 2)]
    [TestCase(3_000, 7, 1)]     // a buffer of one block: only the blocks move
    public void Each_epoch_is_a_seeded_deterministic_permutation_of_all_rows(int count, int blockRows, int bufferBlocks)
    {
        var shuffle = new BlockShuffle(blockRows, bufferBlocks);
        Assert.That(shuffle.Fits(count), Is.False);
        for (int epoch = 1; epoch <= 3; epoch++)
        {
            var order = shuffle.Order(count, 7, epoch);
            Assert.That(order.OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, count)), $"epoch {epoch} visits every row once");
            Assert.That(shuffle.Order(count, 7, epoch), Is.EqualTo(order), "same seed and epoch, same order");
            Assert.That(shuffle.Order(count, 8, epoch), Is.Not.EqualTo(order), "another seed, another order");
            Assert.That(shuffle.Order(count, 7, epoch + 1), Is.Not.EqualTo(order), "another epoch, another order");
            Assert.That(order, Is.Not.EqualTo(Enumerable.Range(0, count)), "shuffled");
        }
    }

    [Test]
    public void Each_window_of_the_order_holds_the_rows_of_buffer_blocks_and_rows_move_within_it()
    {
        var shuffle = new BlockShuffle(100, 4);
        var order = shuffle.Order(2_000, 3, 1);
        for (int w = 0; w < 5; w++)
        {
            var window = order.Skip(w * 400).Take(400).ToArray();
            var blocks = window.Select(r => r / 100).Distinct().ToArray();
            Assert.That(blocks, Has.Length.EqualTo(4), $"window {w} reads 4 blocks");
            Assert.That(window.OrderBy(r => r), Is.EqualTo(blocks.SelectMany(b => Enumerable.Range(b * 100, 100)).OrderBy(r => r)), "whole blocks");
            Assert.That(window.Take(100).Select(r => r / 100).Distinct().Count(), Is.GreaterThan(1), "rows of the blocks are mixed");
        }
    }

    [Test]
    public void A_set_that_fits_the_buffer_gets_the_full_permutation_of_the_resident_path()
    {
        var shuffle = new BlockShuffle(1024, 4);
        Assert.That(shuffle.Fits(4096), Is.True);
        for (int epoch = 1; epoch <= 2; epoch++)
        {
            Assert.That(shuffle.Order(4096, 5, epoch), Is.EqualTo(new MinibatchScheduler(4096, 32, 5).EpochOrder(epoch)));
            Assert.That(new MinibatchScheduler(4096, 32, 5, shuffle).EpochOrder(epoch), Is.EqualTo(new MinibatchScheduler(4096, 32, 5).EpochOrder(epoch)));
        }
        Assert.That(new MinibatchScheduler(4096, 32, 5, shuffle).Blocks, Is.Null);
        Assert.That(new MinibatchScheduler(4097, 32, 5, shuffle).Blocks, Is.EqualTo(shuffle));
        Assert.That(BlockShuffle.ForBuffer(64L << 20, 784), Is.EqualTo(new BlockShuffle(1024, 83)), "64 MB of 784-byte rows: 83 blocks of 1,024");
        Assert.That(BlockShuffle.ForBuffer(1, 784).BufferBlocks, Is.EqualTo(2), "never fewer than two blocks");
    }

    [Test]
    public void The_block_cache_reads_each_block_once_per_pass_in_block_order_and_once_in_all_when_the_set_fits()
    {
        int count = 5_000, features = 12;
        var pixels = new byte[count * features];
        new Random(2).NextBytes(pixels);
        var path = Path.Combine(dir, "x.npy");
        TestFiles.WriteNpy(path, "|u1", [count, features], pixels);
        var data = new Dataset("x", MappedImages.TryOpen(path, out _)!, null, new int[count], 10);
        var shuffle = new BlockShuffle(256, 3);
        var cache = new BlockCache(data, 256, 3);
        foreach (int r in shuffle.Order(count, 1, 1))
            Assert.That(cache.Row(r).ToArray(), Is.EqualTo(pixels.AsSpan(r * features, features).ToArray()));
        Assert.That(cache.Reads, Is.EqualTo(20), "20 blocks of 256 rows, each read once in the epoch");
        foreach (int r in shuffle.Order(count, 1, 2)) cache.Row(r);
        Assert.That(cache.Reads, Is.InRange(20 + 17, 20 + 20), "each read at most once more in the next epoch (the last window's three may still be held)");

        var all = new BlockCache(data, 256, 20);
        for (int epoch = 1; epoch <= 2; epoch++)
            foreach (int r in MinibatchScheduler.FullPermutation(count, 1, epoch)) all.Row(r);
        Assert.That(all.Reads, Is.EqualTo(20), "a set that fits is read once");
    }
}
