using Gpu.Engine.Runtime;

namespace Gpu.Tests.Runtime;

/// <summary>
/// Issue 21, part 2: on an OpenCL CPU device the work of a launch is sized from the core count and the size of the work
/// (DeviceProfile.ProductSplit for the cl-vector products, the element-wise chunk floor), so small products wake few of
/// the driver's threads and large ones still give every thread several groups. The decisions for 1 to 64 cores.
/// </summary>
public sealed class CoreScalingTests
{
    /// <summary>The work-items (groups of one) a product of blocks0 x blocks1 output blocks gets, and the check that they cover every block.</summary>
    static long Groups(long blocks0, long blocks1, long flops, int cores)
    {
        var (per0, per1) = DeviceProfile.ProductSplit(blocks0, blocks1, flops, cores);
        Assert.That(per0, Is.InRange(1, blocks0));
        Assert.That(per1, Is.InRange(1, blocks1));
        long items0 = (blocks0 + per0 - 1) / per0, items1 = (blocks1 + per1 - 1) / per1;
        Assert.That((items0 - 1) * per0, Is.LessThan(blocks0), "no work-item starts past the last block");
        Assert.That((items1 - 1) * per1, Is.LessThan(blocks1));
        return items0 * items1;
    }

    // W1 (784-256-128-10, batch 128) on the cl-vector kernels: forward blocks are 4x4 (n/4 x m/4), gradient blocks 8x32
    static readonly (string Name, long Blocks0, long Blocks1, long Flops)[] W1 =
    [
        ("forward 128x256x784", 64, 32, 2L * 128 * 256 * 784),
        ("forward 128x128x256", 32, 32, 2L * 128 * 128 * 256),
        ("forward 128x10x128", 3, 32, 2L * 128 * 10 * 128),
        ("weight gradient 256x784 over 128", 32, 25, 2L * 128 * 256 * 784),
        ("weight gradient 10x128 over 128", 2, 4, 2L * 128 * 10 * 128),
        ("input gradient 128x128 over 10", 16, 4, 2L * 128 * 10 * 128),
    ];

    [TestCase(1, new long[] { 8, 8, 1, 7, 1, 1 })]
    [TestCase(2, new long[] { 16, 8, 1, 13, 1, 1 })]
    [TestCase(8, new long[] { 64, 8, 1, 50, 1, 1 })]
    [TestCase(16, new long[] { 64, 8, 1, 50, 1, 1 })]
    [TestCase(64, new long[] { 64, 8, 1, 50, 1, 1 })]
    public void W1s_products_get_work_items_by_size_and_cores(int cores, long[] expected)
    {
        var got = W1.Select(p => Groups(p.Blocks0, p.Blocks1, p.Flops, cores)).ToArray();
        Assert.That(got, Is.EqualTo(expected), string.Join(", ", W1.Zip(got, (p, g) => $"{p.Name}: {g}")));
        // today's launches had one work-item per block: 2048, 1024, 96, 800, 8, 64 on every core count
    }

    [Test]
    public void Small_products_run_as_one_work_item_on_any_core_count()
    {
        foreach (int cores in new[] { 1, 2, 8, 16, 64, 256 })
        {
            Assert.That(Groups(3, 32, DeviceProfile.MinFlopsPerGroup - 1, cores), Is.EqualTo(1), $"{cores} cores");
            Assert.That(DeviceProfile.ProductSplit(3, 32, 1000, cores), Is.EqualTo((3, 32)));
            Assert.That(Groups(1, 1, 0, cores), Is.EqualTo(1));
        }
    }

    [Test]
    public void Large_products_get_about_8_work_items_per_core_and_never_more_than_blocks()
    {
        // W3's first layer unpacked (1024x2048x784: 512 x 256 forward blocks, 3.3 GFLOP)
        long flops = 2L * 1024 * 2048 * 784;
        foreach (int cores in new[] { 1, 2, 8, 16, 64 })
            Assert.That(Groups(512, 256, flops, cores), Is.EqualTo(8 * cores), $"{cores} cores");
        // W3's output layer (1024x10x2048, 42 MFLOP in 3 x 256 forward blocks): 40 groups' worth of flops
        Assert.That(new[] { 1, 2, 8, 16, 64 }.Select(c => Groups(3, 256, 2L * 1024 * 10 * 2048, c)), Is.EqualTo(new long[] { 8, 16, 43, 43, 43 }));
        Assert.That(Groups(2, 3, long.MaxValue / 4, 64), Is.EqualTo(6), "at most one work-item per block");
    }

    [Test]
    public void Groups_grow_with_the_flops_and_the_cores_and_stay_within_8_per_core()
    {
        foreach (int cores in new[] { 1, 2, 3, 8, 16, 64 })
            foreach (var (b0, b1) in new (long, long)[] { (1, 1), (3, 32), (64, 32), (7, 5), (512, 256), (1, 1000) })
            {
                long last = 0;
                for (long flops = 1; flops < 1L << 36; flops *= 3)
                {
                    long g = Groups(b0, b1, flops, cores);
                    Assert.That(g, Is.LessThanOrEqualTo(Math.Min(b0 * b1, 8L * cores)), $"{b0}x{b1} blocks, {flops} flops, {cores} cores");
                    Assert.That(g, Is.GreaterThanOrEqualTo(Math.Min(b0 * b1, Math.Max(1, flops / DeviceProfile.MinFlopsPerGroup)) / 2 ).Or.GreaterThanOrEqualTo(Math.Min(8L * cores, b0 * b1) / 2),
                        $"{b0}x{b1} blocks, {flops} flops, {cores} cores: far fewer groups than the rule wants");
                    Assert.That(g, Is.GreaterThanOrEqualTo(last / 2), "more flops never mean far fewer groups");
                    last = g;
                }
            }
    }

    [Test]
    public void Element_wise_work_on_an_opencl_cpu_device_comes_in_chunks_of_at_least_8192_elements()
    {
        foreach (int cores in new[] { 2, 8, 16, 64 })
        {
            var p = DeviceProfile.For(DeviceKind.OpenClCpu, 1L << 30, multiprocessors: cores, maxGroupSize: 4096);
            Assert.That(p.ElementwiseThreads, Is.EqualTo(8 * cores), "at most 8 chunks per thread of the driver");
            Assert.That(p.Chunk(10), Is.EqualTo(10), "a bias-sized launch is one chunk");
            Assert.That(p.Chunk(128 * 784), Is.EqualTo(Math.Max(8192, (128 * 784 + 8 * cores - 1) / (8 * cores))), "W1's batch gather");
            Assert.That(p.Chunk(235_146), Is.EqualTo(Math.Max(8192, (235_146 + 8 * cores - 1) / (8 * cores))), "W1's optimizer");
            Assert.That(p.Chunk(1 << 24), Is.EqualTo((1 << 24) / (8 * cores)), "large work: 8 chunks per thread");
        }
        var cpu = DeviceProfile.For(DeviceKind.CpuAccelerator, 1L << 30);
        Assert.That(cpu.Chunk(10), Is.EqualTo(1), "ILGPU's CPU accelerator keeps its chunking");
    }
}
