using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Analysis;

/// <summary>One comparison of a kernel's output against the float64 reference.</summary>
internal sealed record CheckResult(string Kernel, string Variant, string Shape, double RelativeError, int Unwritten, bool Passed);

/// <summary>
/// One check of one or more kernels against the float64 reference: its name, what it runs with (a GEMM
/// family, packed products, an element-wise layout; <see cref="Variant"/> says which in words, and
/// <see cref="Adjust"/> makes it from the device's profile), the kernel methods it covers (by
/// <c>Class.Method</c>, or <c>dense_layers.cl:kernel</c> for OpenCL C), and what it runs.
/// </summary>
internal sealed record KernelCase(string Name, string Variant, GemmFamily? Family, Func<DeviceProfile, DeviceProfile> Adjust, string[] Covers,
    Func<KernelSet, int, IEnumerable<CheckResult>> Check)
{
    public override string ToString() => $"{Name} [{Variant}]";

    /// <summary>Whether a device with this profile runs the case (a GEMM family it does not run is left out).</summary>
    public bool RunsOn(DeviceProfile p) => Family is not GemmFamily f || p.RunnableFamilies.Contains(f);

    /// <summary>Runs the case on the device's kernels, made as the case says; each result names the variant.</summary>
    public List<CheckResult> Run(ComputeDevice device, int seed)
    {
        var kernels = KernelSet.For(device, Adjust(Family is GemmFamily f ? device.Profile with { Gemm = f } : device.Profile));
        return Check(kernels, seed).Select(r => r with { Variant = Variant }).ToList();
    }
}

/// <summary>
/// Every kernel against the float64 reference (<see cref="ReferenceMlp"/>), on shapes that are never
/// multiples of a tile, with outputs poisoned with NaN before each launch: ||out - ref|| / ||ref|| must stay
/// below <see cref="Tolerance"/> and no output may be left unwritten. One list of cases, <see cref="All"/>,
/// serves `gpu check` (so a user can verify a device and driver, and a GPU machine without the .NET SDK can
/// verify its kernels) and the kernel tests (tests/Gpu.Tests/Kernels/KernelTests.cs), which also fail when a
/// kernel method in kernels/ has no case.
/// </summary>
internal static class KernelCheck
{
    public const double Tolerance = 1e-5;

    /// <summary>m x n x k shapes for every family: 1, primes and off-by-one sizes around the tiles and blocks.</summary>
    static readonly (int M, int N, int K)[] AnyShapes =
        [(1, 1, 1), (1, 7, 33), (7, 1, 5), (33, 7, 129), (129, 10, 33), (64, 33, 784), (5, 129, 3), (130, 67, 9)];

    /// <summary>Shapes for the vector4 family: the loaded dimensions are multiples of 4, never of its 4x8 block.</summary>
    static readonly (int M, int N, int K)[] Vector4Shapes = [(1, 4, 4), (7, 12, 36), (33, 20, 132), (129, 260, 12), (65, 36, 788), (3, 4, 20)];

    /// <summary>More for cl-vector: a full 32-column block with a 16-column one after it, a 784-wide layer, k tails of 0 and 1 after 16-wide chunks.</summary>
    static readonly (int M, int N, int K)[] ClVectorShapes = [.. AnyShapes, (17, 48, 40), (9, 100, 784), (3, 33, 48), (130, 16, 17)];

    static readonly GemmFamily[] Families = Enum.GetValues<GemmFamily>();

    static DeviceProfile Same(DeviceProfile p) => p;

    /// <summary>Element-wise layouts: one thread per element, and 3 threads each doing an uneven contiguous chunk.</summary>
    static readonly int[] Layouts = [0, 3];

    /// <summary>Every case, for every family and layout.</summary>
    public static IReadOnlyList<KernelCase> All { get; } = Build();

    /// <summary>The cases a device runs: all but the GEMM families it cannot run.</summary>
    public static IEnumerable<KernelCase> For(DeviceProfile profile) => All.Where(c => c.RunsOn(profile));

    /// <summary>Runs every case the device runs, or of the GEMM families only <paramref name="family"/> (what `gpu check` prints).</summary>
    public static List<CheckResult> Run(ComputeDevice device, GemmFamily? family = null, int seed = 1)
    {
        var results = new List<CheckResult>();
        foreach (var c in For(device.Profile).Where(c => family == null || c.Family == null || c.Family == family))
            results.AddRange(c.Run(device, seed++));
        return results;
    }

    static List<KernelCase> Build()
    {
        var cases = new List<KernelCase>();
        var gemmVariants = Families.Select(f => (f, Name: Words.Name(f), Adjust: (Func<DeviceProfile, DeviceProfile>)(p => p), Packed: false))
            .Append((GemmFamily.ClVector, "cl-vector packed", p => p with { PackAboveMacs = 0 }, true));
        foreach (var (f, variant, adjust, packed) in gemmVariants)
        {
            var shapes = f switch { GemmFamily.Vector4 => Vector4Shapes, GemmFamily.ClVector => ClVectorShapes, _ => AnyShapes };
            string[] forward = f switch
            {
                GemmFamily.Scalar => ["GemmKernels.DenseForward"], GemmFamily.Vector4 => ["VectorGemmKernels.DenseForward"],
                GemmFamily.Tiled => ["TiledGemmKernels.Gemm"], _ => ["dense_layers.cl:dense_forward"],
            };
            string[] weight = f switch
            {
                GemmFamily.Scalar => ["GemmKernels.WeightGrad"], GemmFamily.Vector4 => ["VectorGemmKernels.WeightGrad"],
                GemmFamily.Tiled => ["TiledGemmKernels.Gemm"], _ => ["dense_layers.cl:weight_grad"],
            };
            string[] input = f switch
            {
                GemmFamily.Scalar => ["GemmKernels.InputGrad"], GemmFamily.Vector4 => ["VectorGemmKernels.InputGrad"],
                GemmFamily.Tiled => ["TiledGemmKernels.Gemm"], _ => ["dense_layers.cl:input_grad"],
            };
            string[] fused = weight;   // every family sums the bias gradient in the weight gradient's launch
            if (packed)
                (forward, weight, input, fused) = (["dense_layers.cl:pack_rows", "dense_layers.cl:gemm_packed"],
                    ["dense_layers.cl:pack_cols", "dense_layers.cl:gemm_packed"], ["dense_layers.cl:pack_rows", "dense_layers.cl:pack_cols", "dense_layers.cl:gemm_packed"],
                    ["dense_layers.cl:pack_cols", "dense_layers.cl:gemm_packed"]);
            foreach (var (m, n, k) in shapes)
            {
                cases.Add(new($"dense forward {m}x{n}x{k}", variant, f, adjust, forward, (ks, seed) => DenseForward(ks, m, n, k, seed)));
                cases.Add(new($"weight gradient {m}x{n}x{k}", variant, f, adjust, weight, (ks, seed) => [WeightGrad(ks, m, n, k, seed)]));
                cases.Add(new($"weight and bias gradient {m}x{n}x{k}", variant, f, adjust, fused, (ks, seed) => WeightAndBiasGrad(ks, m, n, k, seed)));
                cases.Add(new($"input gradient {m}x{n}x{k}", variant, f, adjust, input, (ks, seed) => InputGrad(ks, m, n, k, seed)));
            }
        }
        // the blocked family, through its own launcher (BlockedGemm) until the family registry takes it in: the device's plan
        // and a split-K plan of its tile (the full check: tests/Gpu.Tests/Kernels/BlockedGemmTests.cs)
        foreach (var (m, n, k) in new[] { (33, 7, 129), (130, 67, 9) })
            cases.Add(new($"blocked products {m}x{n}x{k}", "blocked", null, Same, ["BlockedGemmKernels.Gemm", "BlockedGemmKernels.ReduceSplits"],
                (ks, seed) => Blocked(ks, m, n, k, seed)));
        foreach (var (m, c) in new[] { (1, 10), (7, 3), (33, 10), (129, 17) })
        {
            cases.Add(new($"softmax cross-entropy {m}x{c}", "-", null, Same, ["LayerKernels.SoftmaxCrossEntropy"], (ks, seed) => Loss(ks, LossKind.SoftmaxCrossEntropy, m, c, seed)));
            cases.Add(new($"sigmoid squared error {m}x{c}", "-", null, Same, ["LayerKernels.SigmoidSquaredError"], (ks, seed) => Loss(ks, LossKind.SigmoidSquaredError, m, c, seed)));
        }
        foreach (var kind in new[] { LossKind.SoftmaxCrossEntropy, LossKind.SigmoidSquaredError })
        {
            string[] covers = [kind == LossKind.SoftmaxCrossEntropy ? "LayerKernels.SoftmaxCrossEntropy" : "LayerKernels.SigmoidSquaredError"];
            foreach (var m in new[] { 37, 1000 })
                cases.Add(new($"metric accumulation and non-finite marker, {Words.Name(kind)}, {m} rows", "-", null, Same, covers, (ks, seed) => Accumulation(ks, kind, m, seed)));
        }
        foreach (int threads in Layouts)
        {
            string layout = threads == 0 ? "per-element" : $"{threads} chunks";
            Func<DeviceProfile, DeviceProfile> chunked = p => p with { ElementwiseThreads = threads };
            foreach (var (n, w) in new[] { (1, 1), (1000, 733), (4099, 17) })
            {
                cases.Add(new($"SGD momentum + L2, 3 steps, {n}", layout, null, chunked, ["OptimizerKernels.SgdMomentum"], (ks, seed) => Sgd(ks, n, w, nesterov: false, seed)));
                cases.Add(new($"Nesterov + L2, 3 steps, {n}", layout, null, chunked, ["OptimizerKernels.SgdMomentum"], (ks, seed) => Sgd(ks, n, w, nesterov: true, seed)));
                cases.Add(new($"Adam + L2, 4 steps, {n}", layout, null, chunked, ["OptimizerKernels.Adam"], (ks, seed) => Adam(ks, n, w, decoupled: false, seed)));
                cases.Add(new($"AdamW, 4 steps, {n}", layout, null, chunked, ["OptimizerKernels.Adam"], (ks, seed) => Adam(ks, n, w, decoupled: true, seed)));
            }
            foreach (var (b, d) in new[] { (1, 1), (7, 33), (129, 784), (13, 5) })
                cases.Add(new($"batch gather + normalise {b}x{d}", layout, null, chunked, ["DataKernels.GatherBatch"], (ks, seed) => Gather(ks, b, d, seed)));
            foreach (var (b, shift) in new[] { (1, 1), (13, 2), (37, 3) })
                cases.Add(new($"shifted gather {b} images of 7x7, shifts up to {shift}", layout, null, chunked, ["DataKernels.GatherBatchShifted"],
                    (ks, seed) => GatherShifted(ks, b, shift, seed)));
            foreach (var (m, n) in new[] { (1, 1), (7, 33), (64, 129) })
                cases.Add(new($"dropout forward and backward {m}x{n}", layout, null, chunked, ["DropoutKernels.Forward", "DropoutKernels.Backward"],
                    (ks, seed) => Dropout(ks, m, n, seed)));
        }
        return cases;
    }

    static float[] Random(int n, Random r, double scale = 1) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();
    static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    /// <summary>||got - want|| / ||want|| (the plain norm when want is 0); NaN anywhere in got makes it NaN.</summary>
    public static double RelativeError(float[] got, double[] want)
    {
        if (got.Length != want.Length) return double.NaN;
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++) { double d = got[i] - want[i]; num += d * d; den += want[i] * want[i]; }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    static CheckResult Compare(string kernel, string shape, float[] got, double[] want)
    {
        int unwritten = got.Count(float.IsNaN);
        double rel = RelativeError(got, want);
        return new CheckResult(kernel, "", shape, rel, unwritten, unwritten == 0 && rel < Tolerance);
    }

    /// <summary>An exact comparison (counts, step numbers): relative error 0 or 1.</summary>
    static CheckResult Exact(string kernel, string shape, bool equal) => new(kernel, "", shape, equal ? 0 : 1, 0, equal);

    static MemoryBuffer1D<float, Stride1D.Dense> Poisoned(Accelerator a, int n)
    {
        var b = a.Allocate1D<float>(n);
        b.CopyFromCPU(Enumerable.Repeat(float.NaN, n).ToArray());
        return b;
    }

    static IEnumerable<CheckResult> DenseForward(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var x = Random(m * kk, r); var w = Random(n * kk, r); var b = Random(n, r);
        using var dx = a.Allocate1D(x); using var dw = a.Allocate1D(w); using var db = a.Allocate1D(b);
        foreach (var act in Enum.GetValues<Activation>())
        {
            using var y = Poisoned(a, m * n);
            k.DenseForward(dx.View, dw.View, db.View, y.View, m, n, kk, act);
            yield return Compare($"dense forward ({Words.ActivationName(act)})", $"{m}x{n}x{kk}", y.GetAsArray1D(), ReferenceMlp.Dense(D(x), D(w), D(b), m, n, kk, act));
        }
    }

    static CheckResult WeightGrad(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var dz = Random(m * n, r); var h = Random(m * kk, r);
        using var ddz = a.Allocate1D(dz); using var dh = a.Allocate1D(h); using var dw = Poisoned(a, n * kk);
        k.WeightGrad(ddz.View, dh.View, dw.View, m, n, kk);
        return Compare("weight gradient", $"{m}x{n}x{kk}", dw.GetAsArray1D(), ReferenceMlp.MatTN(D(dz), D(h), m, n, kk));
    }

    static IEnumerable<CheckResult> WeightAndBiasGrad(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var dz = Random(m * n, r); var h = Random(m * kk, r);
        using var ddz = a.Allocate1D(dz); using var dh = a.Allocate1D(h); using var dw = Poisoned(a, n * kk); using var db = Poisoned(a, n);
        k.WeightAndBiasGrad(ddz.View, dh.View, dw.View, db.View, m, n, kk);
        yield return Compare("weight gradient (with bias)", $"{m}x{n}x{kk}", dw.GetAsArray1D(), ReferenceMlp.MatTN(D(dz), D(h), m, n, kk));
        yield return Compare("bias gradient (with weight gradient)", $"{m}x{n}", db.GetAsArray1D(), ReferenceMlp.ColumnSums(D(dz), m, n));
    }

    static IEnumerable<CheckResult> InputGrad(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var dz = Random(m * n, r); var w = Random(n * kk, r); var z = Random(m * kk, r, 3);
        using var ddz = a.Allocate1D(dz); using var dw = a.Allocate1D(w);
        foreach (var act in Enum.GetValues<Activation>())
        {
            var h = z.Select(v => (float)ReferenceMlp.Activate(v, act)).ToArray();   // real outputs of the activation (ReLU: about half 0)
            using var dh = a.Allocate1D(h); using var dx = Poisoned(a, m * kk);
            k.InputGrad(ddz.View, dw.View, dh.View, dx.View, m, n, kk, act);
            yield return Compare($"input gradient ({Words.ActivationName(act)}')", $"{m}x{n}x{kk}", dx.GetAsArray1D(), ReferenceMlp.MatNN(D(dz), D(w), m, n, kk, D(h), act));
        }
    }

    /// <summary>The three products of the blocked family with the device's plan and with its tile cut into 3 splits, on the default stream.</summary>
    static IEnumerable<CheckResult> Blocked(KernelSet ks, int m, int n, int kk, int seed)
    {
        var a = ks.Accelerator;
        var blocked = BlockedGemm.For(a);
        var r = new Random(seed);
        var x = Random(m * kk, r); var w = Random(n * kk, r); var b = Random(n, r); var dz = Random(m * n, r);
        var h = Random(m * kk, r, 3).Select(v => (float)ReferenceMlp.Activate(v, Activation.Tanh)).ToArray();
        using var dx_ = a.Allocate1D(x); using var dw_ = a.Allocate1D(w); using var db_ = a.Allocate1D(b); using var ddz = a.Allocate1D(dz); using var dh = a.Allocate1D(h);
        var stream = a.DefaultStream;
        var results = new List<CheckResult>();
        foreach (var split in new[] { false, true })
        {
            string Name(GemmPlan p) => $"blocked {p}";
            var forward = blocked.Plan(m, n, kk);
            if (split) forward = forward with { Splits = 3 };
            using var y = Poisoned(a, m * n);
            blocked.DenseForward(stream, dx_.View, dw_.View, db_.View, y.View, m, n, kk, Activation.Relu, forward);
            results.Add(Compare($"{Name(forward)} dense forward (relu)", $"{m}x{n}x{kk}", y.GetAsArray1D(), ReferenceMlp.Dense(D(x), D(w), D(b), m, n, kk, Activation.Relu)));
            var weight = blocked.Plan(n, kk, m);
            if (split) weight = weight with { Splits = 3 };
            using var dwOut = Poisoned(a, n * kk); using var dbOut = Poisoned(a, n);
            blocked.WeightGrad(stream, ddz.View, dh.View, dwOut.View, dbOut.View, m, n, kk, weight);
            results.Add(Compare($"{Name(weight)} weight gradient (with bias)", $"{m}x{n}x{kk}", dwOut.GetAsArray1D(), ReferenceMlp.MatTN(D(dz), D(h), m, n, kk)));
            results.Add(Compare($"{Name(weight)} bias gradient", $"{m}x{n}", dbOut.GetAsArray1D(), ReferenceMlp.ColumnSums(D(dz), m, n)));
            var input = blocked.Plan(m, kk, n);
            if (split) input = input with { Splits = 3 };
            using var dxOut = Poisoned(a, m * kk);
            blocked.InputGrad(stream, ddz.View, dw_.View, dh.View, dxOut.View, m, n, kk, Activation.Tanh, input);
            results.Add(Compare($"{Name(input)} input gradient (tanh')", $"{m}x{n}x{kk}", dxOut.GetAsArray1D(), ReferenceMlp.MatNN(D(dz), D(w), m, n, kk, D(h), Activation.Tanh)));
        }
        return results;
    }

    /// <summary>A loss kernel: per-row loss, the gradient dZ and the argmax count, against the reference (softmax-ce: large logits exercise the max shift; sigmoid-sse: outputs in (0, 1)).</summary>
    static IEnumerable<CheckResult> Loss(KernelSet k, LossKind kind, int m, int c, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        bool softmax = kind == LossKind.SoftmaxCrossEntropy;
        var z = softmax ? Random(m * c, r, 30) : Random(m * c, r).Select(v => 0.5f + 0.49f * v).ToArray();
        var labels = Enumerable.Range(0, m).Select(_ => r.Next(c)).ToArray();
        using var dz_ = a.Allocate1D(z); using var dy = a.Allocate1D(labels);
        using var grad = Poisoned(a, m * c); using var loss = Poisoned(a, m); using var correct = Poisoned(a, m);
        using var acc = a.Allocate1D<double>(2); using var firstBad = a.Allocate1D(new[] { -1L });
        acc.MemSetToZero();
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, m, c, 1f / m, grad: true, watchStep: 0);
        var (wl, wc, wd) = softmax ? ReferenceMlp.SoftmaxCrossEntropy(D(z), labels, m, c, 1.0 / m) : ReferenceMlp.SigmoidSquaredError(D(z), labels, m, c, 1.0 / m);
        string name = softmax ? "softmax cross-entropy" : "sigmoid squared-error";
        yield return Compare($"{name} loss", $"{m}x{c}", loss.GetAsArray1D(), wl);
        yield return Compare($"{name} gradient", $"{m}x{c}", grad.GetAsArray1D(), wd);
        yield return Exact($"{name} argmax correct", $"{m}x{c}", correct.GetAsArray1D().Select(v => (double)v).SequenceEqual(wc));
    }

    static void LossKernel(KernelSet k, LossKind kind, ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> loss, ArrayView<float> correct,
        ArrayView<double> acc, ArrayView<long> firstBad, int m, int c, float scale, bool grad, long watchStep)
    {
        if (kind == LossKind.SoftmaxCrossEntropy) k.SoftmaxCrossEntropy(z, y, dz, loss, correct, acc, firstBad, m, c, scale, grad, watchStep);
        else k.SigmoidSquaredError(z, y, dz, loss, correct, acc, firstBad, m, c, scale, grad, watchStep);
    }

    /// <summary>
    /// The loss kernel's own sums: over several launches (a batch, then the first rows again) the accumulators gain the
    /// launch's per-row losses summed in row order in double, bit for bit, and its correct count; a training step whose
    /// loss is NaN is recorded once (the first one), an evaluation's never.
    /// </summary>
    static IEnumerable<CheckResult> Accumulation(KernelSet k, LossKind kind, int m, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        const int c = 10;
        bool softmax = kind == LossKind.SoftmaxCrossEntropy;
        var z = softmax ? Random(m * c, r, 5) : Random(m * c, r).Select(v => 0.5f + 0.49f * v).ToArray();
        var labels = Enumerable.Range(0, m).Select(_ => r.Next(c)).ToArray();
        using var dz_ = a.Allocate1D(z); using var dy = a.Allocate1D(labels);
        using var grad = a.Allocate1D<float>(m * c); using var loss = Poisoned(a, m); using var correct = Poisoned(a, m);
        using var acc = a.Allocate1D(new[] { 1.5, 2.0 }); using var firstBad = a.Allocate1D(new[] { -1L });
        int half = Math.Max(1, m / 2);
        double wantLoss = 1.5, wantCorrect = 2;
        foreach (var (rows, step) in new[] { (m, 3L), (half, -1L) })   // a training step, then an evaluation of the first rows
        {
            LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, rows, c, 1f / rows, grad: step >= 0, watchStep: step);
            var l = loss.GetAsArray1D(); var cr = correct.GetAsArray1D();
            double sum = 0, count = 0;
            for (int i = 0; i < rows; i++) { sum += l[i]; count += cr[i]; }
            wantLoss += sum; wantCorrect += count;
        }
        var got = acc.GetAsArray1D();
        string name = softmax ? "softmax cross-entropy" : "sigmoid squared-error";
        yield return new CheckResult($"{name} metric accumulation (loss, correct)", "", $"{m}+{half}", got[0] == wantLoss ? 0 : Math.Abs(got[0] - wantLoss) / wantLoss, 0,
            got[0] == wantLoss && got[1] == wantCorrect);
        bool quiet = firstBad.GetAsArray1D()[0] == -1;

        z[(m - 1) * c] = float.NaN;   // the last row's loss becomes NaN, and with it the running sum
        dz_.CopyFromCPU(z);
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, m, c, 1f / m, grad: false, watchStep: -1);
        bool evaluationIgnored = firstBad.GetAsArray1D()[0] == -1 && double.IsNaN(acc.GetAsArray1D()[0]);
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, m, c, 1f / m, grad: true, watchStep: 7);
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, m, c, 1f / m, grad: true, watchStep: 9);
        yield return Exact($"{name} non-finite marker (finite: none; evaluation: none; first bad step kept)", $"{m}",
            quiet && evaluationIgnored && firstBad.GetAsArray1D()[0] == 7);
    }

    static IEnumerable<CheckResult> Sgd(KernelSet k, int n, int weights, bool nesterov, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = Random(n, r); var v = Random(n, r, 0.1);
        var rp = D(p); var rv = D(v);
        using var dp = a.Allocate1D(p); using var dv = a.Allocate1D(v);
        for (int step = 0; step < 3; step++)
        {
            var g = Random(n, r);
            using var dg = a.Allocate1D(g);
            k.SgdMomentum(dp.View, dg.View, dv.View, 0.05f, 0.9f, 0.01f, weights, nesterov);
            if (nesterov) ReferenceMlp.Nesterov(rp, D(g), rv, 0.05, 0.9, 0.01, weights);
            else ReferenceMlp.SgdMomentum(rp, D(g), rv, 0.05, 0.9, 0.01, weights);
        }
        string name = nesterov ? "Nesterov + L2" : "SGD momentum + L2";
        yield return Compare($"{name} (parameters)", $"{n}", dp.GetAsArray1D(), rp);
        yield return Compare($"{name} (velocity)", $"{n}", dv.GetAsArray1D(), rv);
    }

    static IEnumerable<CheckResult> Adam(KernelSet k, int n, int weights, bool decoupled, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = Random(n, r);
        var rp = D(p); var rm = new double[n]; var rv = new double[n];
        using var dp = a.Allocate1D(p); using var dm = a.Allocate1D<float>(n); using var dv = a.Allocate1D<float>(n);
        dm.MemSetToZero(); dv.MemSetToZero();
        for (int step = 1; step <= 4; step++)
        {
            var g = Random(n, r);
            using var dg = a.Allocate1D(g);
            // the decays are double on both sides (KernelSet rounds 1 - beta and the bias corrections to float once)
            k.Adam(dp.View, dg.View, dm.View, dv.View, 0.01f, 0.9, 0.999, 1e-8, step, 0.05f, decoupled, weights);
            ReferenceMlp.Adam(rp, D(g), rm, rv, 0.01f, 0.9, 0.999, 1e-8, step, 0.05f, decoupled, weights);
        }
        string name = decoupled ? "AdamW" : "Adam + L2";
        yield return Compare($"{name} (parameters)", $"{n}", dp.GetAsArray1D(), rp);
        yield return Compare($"{name} (first moment)", $"{n}", dm.GetAsArray1D(), rm);
        yield return Compare($"{name} (second moment)", $"{n}", dv.GetAsArray1D(), rv);
    }

    static IEnumerable<CheckResult> Gather(KernelSet k, int b, int d, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        int count = b + 11, offset = 5;
        var pixels = new byte[count * d]; r.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray();
        var order = Enumerable.Range(0, count).OrderBy(_ => r.Next()).ToArray();
        using var dp = a.Allocate1D(pixels); using var dl = a.Allocate1D(labels); using var dord = a.Allocate1D(order);
        using var x = Poisoned(a, b * d); using var y = a.Allocate1D(Enumerable.Repeat(-1, b).ToArray());
        k.GatherBatch(dp.View, dl.View, dord.View, x.View, y.View, offset, b, d);
        var want = new double[b * d];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < d; j++) want[i * d + j] = pixels[order[offset + i] * d + j] / 255.0 - 0.5;
        yield return Compare("batch gather + normalise", $"{b}x{d}", x.GetAsArray1D(), want);
        yield return Exact("batch gather (labels)", $"{b}", y.GetAsArray1D().SequenceEqual(Enumerable.Range(0, b).Select(i => labels[order[offset + i]])));
    }

    /// <summary>7x7 images (shifts of up to 3 move content fully in and out) moved by their seeded shifts, checked pixel by pixel.</summary>
    static IEnumerable<CheckResult> GatherShifted(KernelSet k, int b, int maxShift, int seed)
    {
        const int w = 7, d = w * w;
        var a = k.Accelerator;
        var r = new Random(seed);
        int count = b + 4;
        var pixels = new byte[count * d]; r.NextBytes(pixels);
        var labels = Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray();
        var order = Enumerable.Range(0, count).OrderBy(_ => r.Next()).ToArray();
        using var dpx = a.Allocate1D(pixels); using var dl = a.Allocate1D(labels); using var dord = a.Allocate1D(order);
        using var x = Poisoned(a, b * d); using var y = a.Allocate1D(new int[b]);
        k.GatherBatchShifted(dpx.View, dl.View, dord.View, x.View, y.View, 2, b, d, w, maxShift, 99, 4);
        var want = new double[b * d];
        var seen = new HashSet<(int, int)>();
        bool inRange = true;
        for (int i = 0; i < b; i++)
        {
            int src = order[2 + i];
            int sx = DataKernels.Shift(99, 4, src, 0, maxShift), sy = DataKernels.Shift(99, 4, src, 1, maxShift);
            inRange &= Math.Abs(sx) <= maxShift && Math.Abs(sy) <= maxShift;
            seen.Add((sx, sy));
            for (int row = 0; row < w; row++)
                for (int col = 0; col < w; col++)
                {
                    int pr = row - sy, pc = col - sx;
                    int v = pr >= 0 && pr < w && pc >= 0 && pc < w ? pixels[src * d + pr * w + pc] : 0;
                    want[i * d + row * w + col] = v / 255.0 - 0.5;
                }
        }
        yield return Compare("shifted gather", $"{b}x{d}", x.GetAsArray1D(), want);
        yield return Exact("shifted gather (labels, shifts in range and varied)", $"{b}",
            inRange && (b <= 30 || seen.Count > 5) && y.GetAsArray1D().SequenceEqual(Enumerable.Range(0, b).Select(i => labels[order[2 + i]])));
    }

    /// <summary>Dropout forward on H and backward through it and the activation, against the reference with the kernels' counter-based mask.</summary>
    static IEnumerable<CheckResult> Dropout(KernelSet k, int m, int n, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        const float rate = 0.3f;
        const long dseed = 77, step = 5;
        const int layer = 1;
        var z = Random(m * n, r, 3);
        var h = z.Select(v => (float)ReferenceMlp.Activate(v, Activation.Relu)).ToArray();
        var g = Random(m * n, r);
        bool Kept(int i) => CounterRng.Uniform(dseed, step, layer, i) >= rate;
        using var dh = a.Allocate1D(h);
        k.DropoutForward(dh.View, m * n, rate, dseed, step, layer);
        var hDropped = dh.GetAsArray1D();
        var wantH = h.Select((v, i) => Kept(i) ? v / (1.0 - rate) : 0.0).ToArray();
        using var dg = a.Allocate1D(g);
        k.DropoutBackward(dg.View, dh.View, m * n, rate, dseed, step, layer, Activation.Relu);
        var wantG = g.Select((v, i) => Kept(i) ? v / (1.0 - rate) * ReferenceMlp.Derivative(h[i], Activation.Relu) : 0.0).ToArray();
        yield return Compare("dropout forward", $"{m}x{n}", hDropped, wantH);
        yield return Compare("dropout backward (relu')", $"{m}x{n}", dg.GetAsArray1D(), wantG);
    }
}
