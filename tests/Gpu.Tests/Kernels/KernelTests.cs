using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Inference;
using Gpu.Engine.Model;
using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Tests.Kernels;

/// <summary>
/// Every kernel against the float64 reference, on shapes that are not multiples of any tile size,
/// with outputs poisoned with NaN before the launch, on the CPU accelerator at O1 and O2 (and CUDA where present).
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.All))]
public sealed class KernelTests(DeviceCase deviceCase)
{
    ComputeDevice device = null!;
    KernelSet k = null!;
    Accelerator A => device.Accelerator;

    [OneTimeSetUp] public void Open() { device = deviceCase.OpenOrIgnore(); k = KernelSet.For(A); }
    [OneTimeTearDown] public void Close() => device?.Dispose();
    [SetUp] public void ResetChunk() { k.ChunkOverride = null; k.Gemm = GemmVariant.Auto; }

    /// <summary>Shapes for the Float4 kernels: the loaded dimensions are multiples of 4, never of the 4x8 tile.</summary>
    static readonly object[] VectorShapes =
    [
        new[] { 1, 4, 4 }, new[] { 7, 12, 36 }, new[] { 33, 20, 132 }, new[] { 129, 260, 12 }, new[] { 65, 36, 788 }, new[] { 3, 4, 20 },
    ];

    static IEnumerable<TestCaseData> AllGemmCases() =>
        Shapes.Select(s => new TestCaseData(s, GemmVariant.Scalar))
            .Concat(VectorShapes.Select(s => new TestCaseData(s, GemmVariant.Vector4)))
            .Concat(VectorShapes.Select(s => new TestCaseData(s, GemmVariant.Scalar)))
            .Concat(Shapes.Select(s => new TestCaseData(s, GemmVariant.Tiled)));

    static readonly object[] Shapes =
    [
        new[] { 1, 1, 1 }, new[] { 1, 7, 33 }, new[] { 7, 1, 5 }, new[] { 33, 7, 129 },
        new[] { 129, 10, 33 }, new[] { 64, 33, 784 }, new[] { 5, 129, 3 }, new[] { 130, 67, 9 },
    ];

    MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] a) => A.Allocate1D(a);

    MemoryBuffer1D<float, Stride1D.Dense> Poisoned(int n)
    {
        var b = A.Allocate1D<float>(n);
        b.CopyFromCPU(Enumerable.Repeat(float.NaN, n).ToArray());
        return b;
    }

    static float[] Read(MemoryBuffer1D<float, Stride1D.Dense> b) => b.GetAsArray1D();

    [TestCaseSource(nameof(AllGemmCases))]
    public void DenseForward_matches_reference(int[] s, GemmVariant variant)
    {
        k.Gemm = variant;
        int m = s[0], n = s[1], kk = s[2];
        var x = Rand.Floats(m * kk, 1); var w = Rand.Floats(n * kk, 2); var b = Rand.Floats(n, 3);
        foreach (var act in Enum.GetValues<Activation>())
        {
            using var dx = Upload(x); using var dw = Upload(w); using var db = Upload(b); using var dy = Poisoned(m * n);
            k.DenseForward(dx.View, dw.View, db.View, dy.View, m, n, kk, act);
            var want = ReferenceMlp.Dense(Rand.D(x), Rand.D(w), Rand.D(b), m, n, kk, act);
            Compare.Close(Read(dy), want, what: $"{act}");
        }
    }

    [TestCaseSource(nameof(AllGemmCases))]
    public void WeightGrad_matches_reference(int[] s, GemmVariant variant)
    {
        k.Gemm = variant;
        int m = s[0], n = s[1], kk = s[2];
        var dz = Rand.Floats(m * n, 4); var h = Rand.Floats(m * kk, 5);
        using var ddz = Upload(dz); using var dh = Upload(h); using var dw = Poisoned(n * kk);
        k.WeightGrad(ddz.View, dh.View, dw.View, m, n, kk);
        Compare.Close(Read(dw), ReferenceMlp.MatTN(Rand.D(dz), Rand.D(h), m, n, kk));
    }

    [TestCaseSource(nameof(AllGemmCases))]
    public void InputGrad_through_every_activation_matches_reference(int[] s, GemmVariant variant)
    {
        k.Gemm = variant;
        int m = s[0], n = s[1], kk = s[2];
        var dz = Rand.Floats(m * n, 6); var w = Rand.Floats(n * kk, 7);
        var z = Rand.Floats(m * kk, 8, 3f);
        foreach (var act in Enum.GetValues<Activation>())
        {
            var h = z.Select(v => (float)ReferenceMlp.Activate(v, act)).ToArray();   // real outputs of the activation (ReLU: about half 0)
            using var ddz = Upload(dz); using var dw = Upload(w); using var dh = Upload(h); using var dx = Poisoned(m * kk);
            k.InputGrad(ddz.View, dw.View, dh.View, dx.View, m, n, kk, act);
            Compare.Close(Read(dx), ReferenceMlp.MatNN(Rand.D(dz), Rand.D(w), m, n, kk, Rand.D(h), act), what: $"{act}");
        }
    }

    [TestCase(1, 10)]
    [TestCase(7, 3)]
    [TestCase(33, 10)]
    [TestCase(129, 17)]
    public void SoftmaxCrossEntropy_matches_reference(int m, int c)
    {
        var z = Rand.Floats(m * c, 9, scale: 30f);   // large logits: exercises the max shift
        var labels = Enumerable.Range(0, m).Select(i => (i * 7 + 3) % c).ToArray();
        using var dz_ = Upload(z); using var dy = A.Allocate1D(labels);
        using var grad = Poisoned(m * c); using var loss = Poisoned(m); using var correct = Poisoned(m);
        k.SoftmaxCrossEntropy(dz_.View, dy.View, grad.View, loss.View, correct.View, m, c, 1f / m, grad: true);
        var (wl, wc, wd) = ReferenceMlp.SoftmaxCrossEntropy(Rand.D(z), labels, m, c, 1.0 / m);
        Compare.Close(Read(loss), wl, what: "loss");
        Compare.Close(Read(grad), wd, what: "dZ");
        Assert.That(Read(correct).Select(v => (double)v), Is.EqualTo(wc), "correct");
    }

    [TestCase(1, 10)]
    [TestCase(7, 3)]
    [TestCase(129, 17)]
    public void SigmoidSquaredError_matches_reference(int m, int c)
    {
        var a = Rand.Floats(m * c, 15).Select(v => 0.5f + 0.49f * v).ToArray();   // sigmoid outputs in (0, 1)
        var labels = Enumerable.Range(0, m).Select(i => (i * 3 + 1) % c).ToArray();
        using var da = Upload(a); using var dy = A.Allocate1D(labels);
        using var grad = Poisoned(m * c); using var loss = Poisoned(m); using var correct = Poisoned(m);
        k.SigmoidSquaredError(da.View, dy.View, grad.View, loss.View, correct.View, m, c, 1f / m, grad: true);
        var (wl, wc, wd) = ReferenceMlp.SigmoidSquaredError(Rand.D(a), labels, m, c, 1.0 / m);
        Compare.Close(Read(loss), wl, what: "loss");
        Compare.Close(Read(grad), wd, what: "dZ");
        Assert.That(Read(correct).Select(v => (double)v), Is.EqualTo(wc), "correct");
    }

    [TestCase(1, 1)]
    [TestCase(7, 33)]
    [TestCase(129, 10)]
    [TestCase(1000, 5)]
    public void BiasGrad_matches_reference(int m, int n)
    {
        var dz = Rand.Floats(m * n, 10);
        using var ddz = Upload(dz); using var db = Poisoned(n);
        k.BiasGrad(ddz.View, db.View, m, n);
        Compare.Close(Read(db), ReferenceMlp.ColumnSums(Rand.D(dz), m, n));
    }

    [Test]
    public void AccumulateMetrics_sums_on_the_device_across_calls()
    {
        var loss = Rand.Floats(37, 11).Select(Math.Abs).ToArray();
        var correct = Enumerable.Range(0, 37).Select(i => (float)(i % 3 == 0 ? 1 : 0)).ToArray();
        using var dl = Upload(loss); using var dc = Upload(correct); using var acc = A.Allocate1D<double>(2);
        acc.MemSetToZero();
        k.AccumulateMetrics(dl.View, dc.View, acc.View, 37);
        k.AccumulateMetrics(dl.View, dc.View, acc.View, 20);
        var got = acc.GetAsArray1D();
        double wantLoss = loss.Sum(v => (double)v) + loss.Take(20).Sum(v => (double)v);
        double wantCorrect = correct.Sum() + correct.Take(20).Sum();
        Assert.That(got[0], Is.EqualTo(wantLoss).Within(1e-9).Percent);
        Assert.That(got[1], Is.EqualTo(wantCorrect));
    }

    [TestCase(1, 1, null)]
    [TestCase(1000, 733, null)]
    [TestCase(1000, 733, 1)]
    [TestCase(4099, 17, 7)]
    public void SgdMomentum_matches_reference_over_several_steps(int n, int weightCount, int? chunk)
    {
        k.ChunkOverride = chunk;
        var p = Rand.Floats(n, 12); var v = Rand.Floats(n, 13, 0.1f);
        var rp = Rand.D(p); var rv = Rand.D(v);
        using var dp = Upload(p); using var dv = Upload(v);
        for (int step = 0; step < 3; step++)
        {
            var g = Rand.Floats(n, 100 + step);
            using var dg = Upload(g);
            k.SgdMomentum(dp.View, dg.View, dv.View, 0.05f, 0.9f, 1e-2f, weightCount);
            ReferenceMlp.SgdMomentum(rp, Rand.D(g), rv, 0.05, 0.9, 1e-2, weightCount);
        }
        Compare.Close(Read(dp), rp, what: "parameters");
        Compare.Close(Read(dv), rv, what: "velocity");
    }

    [TestCase(1, 1, null, false)]
    [TestCase(1000, 733, null, false)]
    [TestCase(1000, 733, 1, true)]
    [TestCase(4099, 17, 7, true)]
    public void Adam_and_AdamW_match_reference_over_several_steps(int n, int weightCount, int? chunk, bool decoupled)
    {
        k.ChunkOverride = chunk;
        var p = Rand.Floats(n, 16);
        var rp = Rand.D(p); var rm = new double[n]; var rv = new double[n];
        using var dp = Upload(p); using var dm = A.Allocate1D<float>(n); using var dv = A.Allocate1D<float>(n);
        dm.MemSetToZero(); dv.MemSetToZero();
        for (int step = 1; step <= 4; step++)
        {
            var g = Rand.Floats(n, 200 + step);
            using var dg = Upload(g);
            k.Adam(dp.View, dg.View, dm.View, dv.View, 0.01f, 0.9f, 0.999f, 1e-8f, step, 0.05f, decoupled, weightCount);
            // the reference gets the float32 constants the kernel gets (1 - 0.999f differs from 0.001 by 1.3e-5 relative)
            ReferenceMlp.Adam(rp, Rand.D(g), rm, rv, 0.01f, 0.9f, 0.999f, 1e-8f, step, 0.05f, decoupled, weightCount);
        }
        Compare.Close(Read(dp), rp, what: "parameters");
        Compare.Close(Read(dm), rm, what: "first moment");
        Compare.Close(Read(dv), rv, what: "second moment");
    }

    [TestCase(1000, 733, null)]
    [TestCase(4099, 17, 7)]
    public void Nesterov_matches_reference_over_several_steps(int n, int weightCount, int? chunk)
    {
        k.ChunkOverride = chunk;
        var p = Rand.Floats(n, 17); var v = new float[n];
        var rp = Rand.D(p); var rv = new double[n];
        using var dp = Upload(p); using var dv = Upload(v);
        for (int step = 0; step < 3; step++)
        {
            var g = Rand.Floats(n, 300 + step);
            using var dg = Upload(g);
            k.SgdMomentum(dp.View, dg.View, dv.View, 0.05f, 0.9f, 1e-2f, weightCount, nesterov: true);
            ReferenceMlp.Nesterov(rp, Rand.D(g), rv, 0.05, 0.9, 1e-2, weightCount);
        }
        Compare.Close(Read(dp), rp, what: "parameters");
        Compare.Close(Read(dv), rv, what: "velocity");
    }

    [TestCase(1, 1, null)]
    [TestCase(13, 2, 1)]
    [TestCase(37, 3, null)]
    public void GatherBatchShifted_moves_each_image_by_its_seeded_shift(int b, int maxShift, int? chunk)
    {
        k.ChunkOverride = chunk;
        const int w = 7, d = w * w;   // 7x7 images: shifts of up to 3 move content fully in and out
        int count = b + 4;
        var r = new Random(18);
        var pixels = new byte[count * d]; r.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray();
        var order = Enumerable.Range(0, count).OrderBy(_ => r.Next()).ToArray();
        using var dpx = A.Allocate1D(pixels); using var dl = A.Allocate1D(labels); using var dord = A.Allocate1D(order);
        using var x = Poisoned(b * d); using var y = A.Allocate1D(new int[b]);
        k.GatherBatchShifted(dpx.View, dl.View, dord.View, x.View, y.View, 2, b, d, w, maxShift, 99, 4);
        var want = new double[b * d];
        var seen = new HashSet<(int, int)>();
        for (int i = 0; i < b; i++)
        {
            int src = order[2 + i];
            int sx = Gpu.Kernels.DataKernels.Shift(99, 4, src, 0, maxShift), sy = Gpu.Kernels.DataKernels.Shift(99, 4, src, 1, maxShift);
            Assert.That(Math.Abs(sx), Is.LessThanOrEqualTo(maxShift));
            seen.Add((sx, sy));
            for (int row = 0; row < w; row++)
                for (int col = 0; col < w; col++)
                {
                    int pr = row - sy, pc = col - sx;
                    int v = pr >= 0 && pr < w && pc >= 0 && pc < w ? pixels[src * d + pr * w + pc] : 0;
                    want[i * d + row * w + col] = v / 255.0 - 0.5;
                }
        }
        Compare.Close(Read(x), want);
        Assert.That(y.GetAsArray1D(), Is.EqualTo(Enumerable.Range(0, b).Select(i => labels[order[2 + i]]).ToArray()));
        if (b > 30) Assert.That(seen.Count, Is.GreaterThan(5), "shifts vary between images");
    }

    [TestCase(1, 1, null)]
    [TestCase(7, 33, null)]
    [TestCase(129, 784, null)]
    [TestCase(129, 784, 1)]
    [TestCase(13, 5, 3)]
    public void GatherBatch_normalises_the_ordered_rows(int b, int d, int? chunk)
    {
        k.ChunkOverride = chunk;
        int count = b + 11;
        var r = new Random(14);
        var pixels = new byte[count * d]; r.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray();
        var order = Enumerable.Range(0, count).OrderBy(_ => r.Next()).ToArray();
        int offset = 5;
        using var dpx = A.Allocate1D(pixels); using var dl = A.Allocate1D(labels); using var dord = A.Allocate1D(order);
        using var x = Poisoned(b * d); using var y = A.Allocate1D(Enumerable.Repeat(-1, b).ToArray());
        k.GatherBatch(dpx.View, dl.View, dord.View, x.View, y.View, offset, b, d);
        var want = new double[b * d];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < d; j++) want[i * d + j] = pixels[order[offset + i] * d + j] / 255.0 - 0.5;
        Compare.Close(Read(x), want);
        Assert.That(y.GetAsArray1D(), Is.EqualTo(Enumerable.Range(0, b).Select(i => labels[order[offset + i]]).ToArray()));
    }
}
