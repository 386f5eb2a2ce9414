using Gpu.Engine.Analysis;
using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The blocked GEMM family (<see cref="BlockedGemmKernels"/> through <see cref="BlockedGemm"/>) against the float64 reference:
/// every tile the device can run (the CPU accelerator: the 4-thread tile; OpenCL and CUDA: all), split factors 1 and 7,
/// shapes that are multiples of no tile, the three products with every epilogue and activation, outputs poisoned with NaN,
/// launched on a stream of the test's own. Relative error below 1e-5 and no NaN left.
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.All))]
public sealed class BlockedGemmTests(DeviceCase deviceCase)
{
    ComputeDevice device = null!;
    AcceleratorStream stream = null!;

    [OneTimeSetUp]
    public void Open()
    {
        device = deviceCase.OpenOrIgnore();
        stream = device.Accelerator.CreateStream();
    }

    [OneTimeTearDown]
    public void Close()
    {
        stream?.Dispose();
        device?.Dispose();
    }

    /// <summary>m x n x k (forward: X[m,k], W[n,k]) and the element offset every operand view starts at (1: never on a 16-byte boundary).</summary>
    public static readonly (int M, int N, int K, int Offset)[] Shapes =
    [
        (1, 1, 1, 0), (7, 5, 3, 0), (33, 129, 65, 0), (130, 67, 9, 0), (129, 10, 784, 0), (5, 260, 33, 0),
        (37, 44, 68, 0),   // n and k multiples of 4, views aligned: every operand takes the 16-byte path
        (37, 44, 68, 1),   // the same, every view one float off a 16-byte boundary: the scalar path
    ];

    public static readonly int[] SplitFactors = [1, 7];   // the epilogue in the product, and an uneven split-K (gpu check runs every tile at 3)

    static IEnumerable<TestCaseData> Cases() =>
        from s in Shapes from splits in SplitFactors
        select new TestCaseData(s.M, s.N, s.K, s.Offset, splits).SetArgDisplayNames($"{s.M}x{s.N}x{s.K}{(s.Offset > 0 ? " offset 1" : "")}", $"split {splits}");

    IEnumerable<BlockedTile> RunnableTiles => BlockedGemm.Tiles.Where(t => t.Threads <= device.Accelerator.MaxNumThreadsPerGroup);

    [Test]
    public void The_device_runs_the_tiles_its_groups_allow()
    {
        var names = RunnableTiles.Select(t => t.Name).ToList();
        if (deviceCase.Device == "cpu") Assert.That(names, Is.EqualTo(new[] { BlockedGemm.TinyTile }), "ILGPU's CPU accelerator: groups of at most 4 threads");
        else Assert.That(names, Is.EquivalentTo(BlockedGemm.Tiles.Select(t => t.Name)));
    }

    /// <summary>A device buffer holding <paramref name="values"/> after <paramref name="offset"/> unused floats, and its view of them.</summary>
    sealed class Operand(Accelerator a, float[] values, int offset) : IDisposable
    {
        readonly MemoryBuffer1D<float, Stride1D.Dense> buffer = Allocate(a, values, offset);
        public ArrayView<float> View => buffer.View.SubView(offset, Math.Max(1, values.Length));
        public float[] Read() => buffer.View.SubView(offset, Length).GetAsArray1D();
        public int Length => values.Length;
        public void Dispose() => buffer.Dispose();

        static MemoryBuffer1D<float, Stride1D.Dense> Allocate(Accelerator a, float[] values, int offset)
        {
            var host = new float[offset + Math.Max(1, values.Length)];
            Array.Fill(host, float.NaN);
            values.CopyTo(host, offset);
            var b = a.Allocate1D<float>(host.Length);
            b.CopyFromCPU(host);
            return b;
        }
    }

    static float[] NaNs(int n) => Enumerable.Repeat(float.NaN, n).ToArray();

    static string Check(string what, float[] got, double[] want)
    {
        int nan = got.Count(float.IsNaN);
        double e = KernelCheck.RelativeError(got, want);
        return nan == 0 && e < 1e-5 ? "" : $"{what}: relative error {e:E3}, {nan} NaN left";
    }

    [TestCaseSource(nameof(Cases))]
    public void Products_match_the_reference(int m, int n, int k, int offset, int splits)
    {
        var a = device.Accelerator;
        var blocked = BlockedGemm.For(a);
        int seed = m * 1000003 + n * 1009 + k * 7 + offset;
        var x = Rand.Floats(m * k, seed); var w = Rand.Floats(n * k, seed + 1); var b = Rand.Floats(n, seed + 2);
        var dz = Rand.Floats(m * n, seed + 3); var hIn = Rand.Floats(m * k, seed + 4); var z = Rand.Floats(m * k, seed + 5, 3f);
        using var dx_ = new Operand(a, x, offset); using var dw_ = new Operand(a, w, offset); using var db_ = new Operand(a, b, offset);
        using var ddz = new Operand(a, dz, offset); using var dh = new Operand(a, hIn, offset);
        var failures = new List<string>();
        foreach (var tile in RunnableTiles)
        {
            var plan = new GemmPlan(tile.Name, splits);
            int expectedLaunches = tile.Split(k, splits).Splits > 1 ? 2 : 1;
            foreach (var act in Enum.GetValues<Activation>())
            {
                using var y = new Operand(a, NaNs(m * n), offset);
                int launches = blocked.DenseForward(stream, dx_.View, dw_.View, db_.View, y.View, m, n, k, act, plan);
                stream.Synchronize();
                failures.Add(Check($"{plan} forward {act}", y.Read(), ReferenceMlp.Dense(Rand.D(x), Rand.D(w), Rand.D(b), m, n, k, act)));
                if (launches != expectedLaunches) failures.Add($"{plan} forward: {launches} launches, expected {expectedLaunches}");

                var h = z.Select(v => (float)ReferenceMlp.Activate(v, act)).ToArray();   // real activation outputs (ReLU: about half 0)
                using var hh = new Operand(a, h, offset); using var dxOut = new Operand(a, NaNs(m * k), offset);
                blocked.InputGrad(stream, ddz.View, dw_.View, hh.View, dxOut.View, m, n, k, act, new GemmPlan(tile.Name, splits));
                stream.Synchronize();
                failures.Add(Check($"{plan} input gradient {act}'", dxOut.Read(), ReferenceMlp.MatNN(Rand.D(dz), Rand.D(w), m, n, k, Rand.D(h), act)));
            }
            var wantDw = ReferenceMlp.MatTN(Rand.D(dz), Rand.D(hIn), m, n, k);
            using (var dwOut = new Operand(a, NaNs(n * k), offset))
            {
                blocked.WeightGrad(stream, ddz.View, dh.View, dwOut.View, null, m, n, k, plan);
                stream.Synchronize();
                failures.Add(Check($"{plan} weight gradient", dwOut.Read(), wantDw));
            }
            using (var dwOut = new Operand(a, NaNs(n * k), offset))
            using (var dbOut = new Operand(a, NaNs(n), offset))
            {
                blocked.WeightGrad(stream, ddz.View, dh.View, dwOut.View, dbOut.View, m, n, k, plan);
                stream.Synchronize();
                failures.Add(Check($"{plan} weight gradient (with bias)", dwOut.Read(), wantDw));
                var db = dbOut.Read();
                failures.Add(Check($"{plan} bias gradient", db, ReferenceMlp.ColumnSums(Rand.D(dz), m, n)));
                // summed in p order, in float: the very bits of a sequential float sum, with or without split-K
                for (int j = 0; j < n; j++)
                {
                    float s = 0f;
                    for (int r = 0; r < m; r++) s += dz[r * n + j];
                    if (BitConverter.SingleToInt32Bits(s) != BitConverter.SingleToInt32Bits(db[j]))
                    {
                        failures.Add($"{plan} bias gradient [{j}] = {db[j]:R}, the sequential sum is {s:R}");
                        break;
                    }
                }
            }
        }
        failures.RemoveAll(f => f.Length == 0);
        Assert.That(failures, Is.Empty, string.Join("\n", failures));
    }

    [Test]
    public void Two_launches_give_identical_bits()
    {
        var a = device.Accelerator;
        var blocked = BlockedGemm.For(a);
        const int m = 67, n = 45, k = 300;
        var x = Rand.Floats(m * k, 5); var w = Rand.Floats(n * k, 6); var b = Rand.Floats(n, 7);
        using var dx = a.Allocate1D(x); using var dw = a.Allocate1D(w); using var db = a.Allocate1D(b);
        using var y1 = a.Allocate1D<float>(m * n); using var y2 = a.Allocate1D<float>(m * n);
        foreach (var tile in RunnableTiles)
            foreach (int splits in new[] { 1, 3 })
            {
                var plan = new GemmPlan(tile.Name, splits);
                blocked.DenseForward(stream, dx.View, dw.View, db.View, y1.View, m, n, k, Activation.Tanh, plan);
                blocked.DenseForward(stream, dx.View, dw.View, db.View, y2.View, m, n, k, Activation.Tanh, plan);
                stream.Synchronize();
                Assert.That(y2.GetAsArray1D().Select(BitConverter.SingleToInt32Bits), Is.EqualTo(y1.GetAsArray1D().Select(BitConverter.SingleToInt32Bits)), $"{plan}");
            }
    }

    /// <summary>A recorded CUDA graph names the split-K workspace it was recorded with: a larger product (an evaluation after the
    /// training step was recorded) gets a new one, and the old one stays allocated, so a replay never writes freed memory.</summary>
    [Test]
    public void A_replaced_split_k_workspace_stays_allocated()
    {
        var a = device.Accelerator;
        var blocked = BlockedGemm.For(a);
        using var own = a.CreateStream();   // a stream of its own: a workspace of its own
        var tile = RunnableTiles.Last();
        long before = blocked.WorkspaceFloats;
        foreach (int m in new[] { 10, 40 })
        {
            const int n = 9, k = 64;
            using var x = a.Allocate1D(Rand.Floats(m * k, m)); using var w = a.Allocate1D(Rand.Floats(n * k, 2)); using var b = a.Allocate1D(Rand.Floats(n, 3));
            using var y = a.Allocate1D<float>(m * n);
            blocked.DenseForward(own, x.View, w.View, b.View, y.View, m, n, k, Activation.Relu, new GemmPlan(tile.Name, 2));
            own.Synchronize();
        }
        Assert.That(blocked.WorkspaceFloats - before, Is.EqualTo(2L * 10 * 9 + Math.Max(2L * 40 * 9, 2 * 2L * 10 * 9)), "the first workspace kept beside its replacement");
    }

    [Test]
    public void The_planned_product_matches_the_reference()
    {
        var a = device.Accelerator;
        var blocked = BlockedGemm.For(a);
        const int m = 96, n = 70, k = 200;
        var plan = blocked.Plan(m, n, k);
        var x = Rand.Floats(m * k, 8); var w = Rand.Floats(n * k, 9); var b = Rand.Floats(n, 10);
        using var dx = a.Allocate1D(x); using var dw = a.Allocate1D(w); using var db = a.Allocate1D(b);
        using var y = a.Allocate1D(NaNs(m * n));
        blocked.DenseForward(stream, dx.View, dw.View, db.View, y.View, m, n, k, Activation.Relu, plan);
        stream.Synchronize();
        Assert.That(Check($"{plan}", y.GetAsArray1D(), ReferenceMlp.Dense(Rand.D(x), Rand.D(w), Rand.D(b), m, n, k, Activation.Relu)), Is.Empty);
        Assert.That(plan.Tile, deviceCase.Device == "cpu" ? Is.EqualTo(BlockedGemm.TinyTile) : Is.Not.EqualTo(BlockedGemm.TinyTile));
    }
}

/// <summary>The blocked family's host-side rules: the tiles' sizes, the planner, the split arithmetic (no device).</summary>
public sealed class BlockedGemmPlanTests
{
    const int H200Multiprocessors = 132;

    [Test]
    public void Tiles_have_the_sizes_the_kernel_relies_on()
    {
        foreach (var t in BlockedGemm.Tiles)
        {
            Assert.That(t.BM % 8 == 0 && t.BN % 8 == 0, $"{t.Name}: BM and BN multiples of 8");
            Assert.That(t.BK, Is.EqualTo(4).Or.EqualTo(8), t.Name);
            Assert.That(t.Threads, Is.EqualTo(t.BM / BlockedGemmKernels.ThreadRows * (t.BN / BlockedGemmKernels.ThreadCols)), t.Name);
            foreach (int extent in new[] { t.BM, t.BN })
            {
                Assert.That(extent * t.BK / 4 % t.Threads, Is.Zero, $"{t.Name}: whole cells per thread");
                Assert.That(extent * t.BK / 4 / t.Threads, Is.EqualTo(1).Or.EqualTo(2).Or.EqualTo(4), $"{t.Name}: 1, 2 or 4 cells per thread");
                Assert.That((extent + BlockedGemmKernels.Pad) % 8, Is.EqualTo(4), $"{t.Name}: padded rows 4 mod 8 floats (conflict-free transposing stores of BK = 8)");
            }
            int sharedBytes = 4 * (2 * t.BK * (t.BM + BlockedGemmKernels.Pad) + 2 * t.BK * (t.BN + BlockedGemmKernels.Pad) + t.BM);
            Assert.That(sharedBytes, Is.LessThanOrEqualTo(48 * 1024), $"{t.Name}: static shared memory");
            Assert.That(t.Name, Is.EqualTo($"{t.BM}x{t.BN}"));
        }
        Assert.That(BlockedGemm.Tiles.Single(t => t.Name == BlockedGemm.TinyTile).Threads, Is.LessThanOrEqualTo(4));
        Assert.That(BlockedGemm.Tiles.Select(t => t.BM * t.BN), Is.Ordered.Descending, "largest first");
    }

    [TestCase(128, 256, 784)]
    [TestCase(128, 128, 256)]
    [TestCase(128, 10, 128)]
    [TestCase(1024, 2048, 784)]
    [TestCase(1024, 2048, 2048)]
    [TestCase(2048, 784, 1024)]
    [TestCase(256, 784, 128)]   // W1's first weight gradient (rows n, cols k, depth m)
    [TestCase(1024, 784, 2048)]  // W3's input gradient of the second layer
    [TestCase(1024, 1024, 1024)]
    [TestCase(4096, 4096, 4096)]
    public void The_plan_fills_an_H200_where_any_plan_can(int rows, int cols, int depth)
    {
        var plan = BlockedGemm.Plan(rows, cols, depth, H200Multiprocessors, 1024);
        Assert.That(BlockedGemm.Plan(rows, cols, depth, H200Multiprocessors, 1024), Is.EqualTo(plan), "the same inputs, the same plan");
        var candidates = BlockedGemm.Tiles.Where(t => t.Name != BlockedGemm.TinyTile).ToList();
        long Groups(BlockedTile t, int s) => t.Blocks(rows, cols) * s;
        long Warps(BlockedTile t, int s) => Groups(t, s) * ((t.Threads + 31) / 32);
        bool Fills(BlockedTile t, int s) => Groups(t, s) >= H200Multiprocessors && Warps(t, s) >= BlockedGemm.WarpsPerMultiprocessor * H200Multiprocessors;
        var tile = BlockedGemm.Tile(plan.Tile);
        TestContext.Out.WriteLine($"{rows}x{cols}x{depth}: {plan}, {Groups(tile, plan.Splits)} groups, {(double)Warps(tile, plan.Splits) / H200Multiprocessors:F1} warps per SM");
        Assert.That(plan.Splits, Is.InRange(1, tile.MaxSplits(depth)));
        Assert.That(tile.Split(depth, plan.Splits).Splits, Is.EqualTo(plan.Splits), "the plan's S is the number of splits made");
        bool anyFills = candidates.Any(t => Enumerable.Range(1, t.MaxSplits(depth)).Any(s => t.Split(depth, s).Splits == s && Fills(t, s)));
        if (anyFills)
        {
            Assert.That(Fills(tile, plan.Splits), $"{plan} fills the GPU: a wave of groups, {BlockedGemm.WarpsPerMultiprocessor} warps per SM");
            foreach (var larger in candidates.TakeWhile(t => t.Name != plan.Tile))
                Assert.That(Enumerable.Range(1, larger.MaxSplits(depth)).Any(s => larger.Split(depth, s).Splits == s && Fills(larger, s)), Is.False, $"{larger.Name} would fill it too");
            Assert.That(Enumerable.Range(1, plan.Splits - 1).Any(s => tile.Split(depth, s).Splits == s && Fills(tile, s)), Is.False, "no fewer splits fill it");
        }
        else
            Assert.That(Groups(tile, plan.Splits), Is.EqualTo(candidates.Max(t => Groups(t, t.Split(depth, t.MaxSplits(depth)).Splits))), $"{plan}: nothing fills the GPU; the most groups");
    }

    [Test]
    public void Plans_for_the_w1_and_w3_shapes()
    {
        string Plan(int r, int c, int d) => BlockedGemm.Plan(r, c, d, H200Multiprocessors, 1024).ToString();
        Assert.Multiple(() =>
        {
            Assert.That(Plan(128, 256, 784), Is.EqualTo("64x32 split 20"));    // W1's first forward: nothing fills an H200; the most warps and groups
            Assert.That(Plan(128, 128, 256), Is.EqualTo("64x32 split 8"));
            Assert.That(Plan(128, 10, 128), Is.EqualTo("64x64 split 4"));     // W1's output layer: 8 groups (64x32 ties), not 4 mostly idle 128x128 ones
            Assert.That(Plan(1024, 2048, 784), Is.EqualTo("128x128 split 2"));  // W3: a wave of 128x128 groups needs two splits
            Assert.That(Plan(1024, 2048, 2048), Is.EqualTo("128x128 split 2"));
            Assert.That(Plan(2048, 2048, 1024), Is.EqualTo("128x128"));          // W3's second weight gradient: 256 groups alone
            Assert.That(Plan(1024, 1024, 1024), Is.EqualTo("128x128 split 3"));
            Assert.That(Plan(4096, 4096, 4096), Is.EqualTo("128x128"));
        });
    }

    [Test]
    public void Groups_of_four_threads_get_the_tiny_tile()
    {
        foreach (var (r, c, d) in new[] { (128, 256, 784), (1024, 2048, 2048), (1, 1, 1), (7, 5, 3) })
        {
            var plan = BlockedGemm.Plan(r, c, d, 2, 4);
            Assert.That(plan.Tile, Is.EqualTo(BlockedGemm.TinyTile));
            Assert.That(BlockedGemm.Plan(r, c, d, 2, 4), Is.EqualTo(plan));
        }
        Assert.Throws<ArgumentException>(() => BlockedGemm.Plan(8, 8, 8, 2, 2));
    }

    [TestCase(784, 1, 1, 784)]
    [TestCase(784, 17, 17, 48)]   // 98 slices of 8: 6 per split, 17 splits
    [TestCase(784, 7, 7, 112)]
    [TestCase(80, 6, 5, 16)]      // 10 slices: 2 per split makes 5 splits, not 6
    [TestCase(3, 7, 1, 8)]
    [TestCase(0, 3, 1, 8)]
    public void A_split_covers_whole_slices_and_none_is_empty(int depth, int requested, int splits, int splitDepth)
    {
        var tile = BlockedGemm.Tile("128x128");
        Assert.That(tile.Split(depth, requested), Is.EqualTo((splits, splitDepth)));
        if (depth > 0) Assert.That((splits - 1) * splitDepth, Is.LessThan(depth), "the last split is not empty");
    }
}
