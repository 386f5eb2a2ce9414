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
/// family with its knobs, an element-wise layout; <see cref="Variant"/> says which in words, and
/// <see cref="Adjust"/> makes the rest from the device's profile), the kernel methods it covers (by
/// <c>Class.Method</c>, or <c>dense_layers.cl:kernel</c> for OpenCL C), and what it runs.
/// </summary>
internal sealed record KernelCase(string Name, string Variant, GemmFamily? Family, Func<DeviceProfile, DeviceProfile> Adjust, string[] Covers,
    Func<KernelSet, int, IEnumerable<CheckResult>> Check)
{
    public override string ToString() => $"{Name} [{Variant}]";

    /// <summary>Whether a device with this profile runs the case (a GEMM family it does not run is left out).</summary>
    public bool RunsOn(DeviceProfile p) => Family is not GemmFamily f || p.Runs(f) && f.Fits(p);

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
/// kernel method in kernels/ has no case. Each GEMM family that emulates TF32 or bf16 (<see cref="GemmFamily.Computes"/>)
/// is checked in those precisions too, against the float64 product of inputs rounded as the hardware rounds them
/// (<see cref="ReducedPrecision"/>), a quarter of them ties of that precision; its bias gradient against unrounded sums.
/// </summary>
internal static class KernelCheck
{
    public const double Tolerance = 1e-5;

    static DeviceProfile Same(DeviceProfile p) => p;

    /// <summary>Element-wise layouts: one thread per element, and 3 threads each doing an uneven contiguous chunk.</summary>
    static readonly int[] Layouts = [0, 3];

    /// <summary>The loss kernels every loss case covers (each cost is a row struct of the same two kernels).</summary>
    static readonly string[] LossKernels = ["LayerKernels.LossOneGroup", "LayerKernels.Loss"];

    /// <summary>
    /// The loss kernels' layouts: the device's own (one group on the CPU accelerator and OpenCL CPU devices, a group per 256
    /// rows on GPUs), one group whose threads take several rows each, and groups of 4 (on every device that builds the grid
    /// kernels, many of them: their partials and finished-group count; elsewhere one).
    /// </summary>
    static readonly (string Name, Func<DeviceProfile, DeviceProfile> Adjust)[] LossLayouts =
    [
        ("-", Same),
        ("one loss group", p => p with { LossMaxGroups = 1 }),
        ("loss groups of 4", p => p with { LossGroupSize = 4, LossMaxGroups = int.MaxValue }),
    ];

    /// <summary>Every case, for every family and layout.</summary>
    public static IReadOnlyList<KernelCase> All { get; } = Build();

    /// <summary>The cases a device runs: all but the GEMM families it cannot run.</summary>
    public static IEnumerable<KernelCase> For(DeviceProfile profile) => All.Where(c => c.RunsOn(profile));

    /// <summary>
    /// Runs every case the device runs, or of the GEMM families only <paramref name="family"/>, the products in
    /// <paramref name="precision"/> (fp32, or the TF32 or bf16 emulation against its rounded float64 reference) (what `gpu check` prints).
    /// </summary>
    public static List<CheckResult> Run(ComputeDevice device, GemmFamily? family = null, int seed = 1, Precision precision = Precision.Fp32)
    {
        var results = new List<CheckResult>();
        foreach (var c in For(device.Profile).Where(c => c.Family == null || (family == null || c.Family.Name == family.Name) && c.Family.Precision == precision))
            results.AddRange(c.Run(device, seed++));
        return results;
    }

    static List<KernelCase> Build()
    {
        var cases = new List<KernelCase>();
        // every family with each knob setting that takes other kernels, in fp32 and in each reduced precision it emulates
        var variants = GemmFamilies.All.SelectMany(f => f.CheckVariants).SelectMany(v => Enum.GetValues<Precision>().Where(v.Family.Computes)
            .Select(p => p == Precision.Fp32 ? v : ($"{v.Variant} {Words.Name(p)}", v.Family with { Precision = p })));
        foreach (var (variant, f) in variants)
            foreach (var (m, n, k) in f.CheckShapes)
            {
                cases.Add(new($"dense forward {m}x{n}x{k}", variant, f, Same, f.Kernels(GemmProduct.Forward), (ks, seed) => DenseForward(ks, m, n, k, seed)));
                cases.Add(new($"weight gradient {m}x{n}x{k}", variant, f, Same, f.Kernels(GemmProduct.WeightGrad), (ks, seed) => [WeightGrad(ks, m, n, k, seed)]));
                cases.Add(new($"weight and bias gradient {m}x{n}x{k}", variant, f, Same, f.Kernels(GemmProduct.WeightAndBiasGrad), (ks, seed) => WeightAndBiasGrad(ks, m, n, k, seed)));
                cases.Add(new($"input gradient {m}x{n}x{k}", variant, f, Same, f.Kernels(GemmProduct.InputGrad), (ks, seed) => InputGrad(ks, m, n, k, seed)));
            }
        foreach (var (m, c) in new[] { (1, 10), (7, 3), (33, 10), (129, 17) })
        {
            cases.Add(new($"softmax cross-entropy {m}x{c}", "-", null, Same, LossKernels, (ks, seed) => Loss(ks, LossKind.SoftmaxCrossEntropy, m, c, seed)));
            cases.Add(new($"sigmoid squared error {m}x{c}", "-", null, Same, LossKernels, (ks, seed) => Loss(ks, LossKind.SigmoidSquaredError, m, c, seed)));
        }
        foreach (var (m, c) in new[] { (1, 10), (7, 3), (33, 10), (129, 17) })
            foreach (bool labelIsArgmax in new[] { true, false })
                cases.Add(new($"softmax cross-entropy, confident rows, label {(labelIsArgmax ? "the argmax" : "elsewhere")} {m}x{c}", "-", null, Same,
                    LossKernels, (ks, seed) => ConfidentLoss(ks, m, c, labelIsArgmax, seed)));
        foreach (var kind in new[] { LossKind.SoftmaxCrossEntropy, LossKind.SigmoidSquaredError })
        {
            foreach (var m in new[] { 37, 1000 })
                foreach (var (layout, adjust) in LossLayouts)
                    cases.Add(new($"metric accumulation and non-finite marker, {Words.Name(kind)}, {m} rows", layout, null, adjust, LossKernels, (ks, seed) => Accumulation(ks, kind, m, seed)));
        }
        foreach (int threads in Layouts)
        {
            string layout = threads == 0 ? "per-element" : $"{threads} chunks";
            // the chunk floor off, so the small shapes here are cut into the chunks named (the profile's own floor is the floor-free chunking's special case)
            Func<DeviceProfile, DeviceProfile> chunked = p => p with { ElementwiseThreads = threads, ElementwiseMinChunk = 0 };
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

    /// <summary>
    /// A product's random inputs for <paramref name="precision"/>: fp32's as they are; for TF32 and bf16 every fourth value is
    /// made a tie of that precision (the dropped bits exactly half a kept place), so a wrong tie rule shows.
    /// </summary>
    static float[] Operand(int n, Random r, Precision precision)
    {
        var values = Random(n, r);
        if (precision == Precision.Fp32) return values;
        var (keep, half) = precision == Precision.Tf32 ? (0xffffe000u, 0x1000u) : (0xffff0000u, 0x8000u);
        for (int i = 0; i < n; i += 4)
            values[i] = BitConverter.UInt32BitsToSingle((BitConverter.SingleToUInt32Bits(values[i]) & keep) | half);
        return values;
    }

    /// <summary>A product's inputs as its reference takes them: rounded to the kernel set's precision, as float64.</summary>
    static double[] In(KernelSet k, float[] values) => ReducedPrecision.Rounded(values, k.Profile.Gemm.Precision);

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
        var p = k.Profile.Gemm.Precision;
        var x = Operand(m * kk, r, p); var w = Operand(n * kk, r, p); var b = Random(n, r);
        using var dx = a.Allocate1D(x); using var dw = a.Allocate1D(w); using var db = a.Allocate1D(b);
        foreach (var act in Enum.GetValues<Activation>())
        {
            using var y = Poisoned(a, m * n);
            k.DenseForward(dx.View, dw.View, db.View, y.View, m, n, kk, act);
            yield return Compare($"dense forward ({Words.ActivationName(act)})", $"{m}x{n}x{kk}", y.GetAsArray1D(), ReferenceMlp.Dense(In(k, x), In(k, w), D(b), m, n, kk, act));
        }
    }

    static CheckResult WeightGrad(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = k.Profile.Gemm.Precision;
        var dz = Operand(m * n, r, p); var h = Operand(m * kk, r, p);
        using var ddz = a.Allocate1D(dz); using var dh = a.Allocate1D(h); using var dw = Poisoned(a, n * kk);
        k.WeightGrad(ddz.View, dh.View, dw.View, m, n, kk);
        return Compare("weight gradient", $"{m}x{n}x{kk}", dw.GetAsArray1D(), ReferenceMlp.MatTN(In(k, dz), In(k, h), m, n, kk));
    }

    static IEnumerable<CheckResult> WeightAndBiasGrad(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = k.Profile.Gemm.Precision;
        var dz = Operand(m * n, r, p); var h = Operand(m * kk, r, p);
        using var ddz = a.Allocate1D(dz); using var dh = a.Allocate1D(h); using var dw = Poisoned(a, n * kk); using var db = Poisoned(a, n);
        k.WeightAndBiasGrad(ddz.View, dh.View, dw.View, db.View, m, n, kk);
        yield return Compare("weight gradient (with bias)", $"{m}x{n}x{kk}", dw.GetAsArray1D(), ReferenceMlp.MatTN(In(k, dz), In(k, h), m, n, kk));
        // the bias gradient is a reduction, fp32 in every precision: against dZ as it is
        // a sum's rounding error is relative to the sum of its terms' sizes, not to the sum (a column of 7 random terms may nearly cancel)
        var got = db.GetAsArray1D();
        var want = ReferenceMlp.ColumnSums(D(dz), m, n);
        var sizes = ReferenceMlp.ColumnSums(D(dz).Select(Math.Abs).ToArray(), m, n);
        double rel = Math.Sqrt(got.Select((g, i) => (g - want[i]) * (g - want[i])).Sum() / Math.Max(double.Epsilon, sizes.Sum(v => v * v)));
        int unwritten = got.Count(float.IsNaN);
        yield return new CheckResult("bias gradient (with weight gradient)", "", $"{m}x{n}", rel, unwritten, unwritten == 0 && rel < Tolerance);
    }

    static IEnumerable<CheckResult> InputGrad(KernelSet k, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = k.Profile.Gemm.Precision;
        var dz = Operand(m * n, r, p); var w = Operand(n * kk, r, p); var z = Random(m * kk, r, 3);
        using var ddz = a.Allocate1D(dz); using var dw = a.Allocate1D(w);
        foreach (var act in Enum.GetValues<Activation>())
        {
            var h = z.Select(v => (float)ReferenceMlp.Activate(v, act)).ToArray();   // real outputs of the activation (ReLU: about half 0)
            using var dh = a.Allocate1D(h); using var dx = Poisoned(a, m * kk);
            k.InputGrad(ddz.View, dw.View, dh.View, dx.View, m, n, kk, act);
            yield return Compare($"input gradient ({Words.ActivationName(act)}')", $"{m}x{n}x{kk}", dx.GetAsArray1D(), ReferenceMlp.MatNN(In(k, dz), In(k, w), m, n, kk, D(h), act));
        }
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
        using var acc = a.Allocate1D<double>(2); using var firstBad = a.Allocate1D(new[] { -1L }); using var workspace = k.AllocateLossWorkspace(m);
        acc.MemSetToZero();
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, workspace, m, c, 1f / m, grad: true, watchStep: 0);
        var (wl, wc, wd) = softmax ? ReferenceMlp.SoftmaxCrossEntropy(D(z), labels, m, c, 1.0 / m) : ReferenceMlp.SigmoidSquaredError(D(z), labels, m, c, 1.0 / m);
        string name = softmax ? "softmax cross-entropy" : "sigmoid squared-error";
        yield return Compare($"{name} loss", $"{m}x{c}", loss.GetAsArray1D(), wl);
        yield return Compare($"{name} gradient", $"{m}x{c}", grad.GetAsArray1D(), wd);
        yield return Exact($"{name} argmax correct", $"{m}x{c}", correct.GetAsArray1D().Select(v => (double)v).SequenceEqual(wc));
    }

    /// <summary>
    /// Softmax cross-entropy on confident rows: in each row one logit stands 20 to 40 above the others (drawn in [-3, 3]), the label
    /// being that logit (a loss of 1e-17 to 1e-8, all of it in the small terms; a loss formed as log(sum) or a gradient as
    /// 1 / sum - 1 is 0) or another one (a loss of 20 to 43). The worst row's relative error counts, not the norm's, so a row
    /// lost entirely cannot hide behind a larger one.
    /// </summary>
    static IEnumerable<CheckResult> ConfidentLoss(KernelSet k, int m, int c, bool labelIsArgmax, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var z = Random(m * c, r, 3);
        var labels = new int[m];
        for (int i = 0; i < m; i++)
        {
            int top = r.Next(c);
            z[i * c + top] = (float)(3 + 20 + 20 * r.NextDouble());
            labels[i] = labelIsArgmax || c == 1 ? top : (top + 1 + r.Next(c - 1)) % c;
        }
        using var dz_ = a.Allocate1D(z); using var dy = a.Allocate1D(labels);
        using var grad = Poisoned(a, m * c); using var loss = Poisoned(a, m); using var correct = Poisoned(a, m);
        using var acc = a.Allocate1D<double>(2); using var firstBad = a.Allocate1D(new[] { -1L }); using var workspace = k.AllocateLossWorkspace(m);
        acc.MemSetToZero();
        LossKernel(k, LossKind.SoftmaxCrossEntropy, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, workspace, m, c, 1f / m, grad: true, watchStep: 0);
        var (wl, wc, wd) = ReferenceMlp.SoftmaxCrossEntropy(D(z), labels, m, c, 1.0 / m);
        string shape = $"{m}x{c} {(labelIsArgmax ? "top" : "other")}";   // the label: the top logit, or another
        yield return CompareRows("softmax-ce confident loss", shape, loss.GetAsArray1D(), wl, m);
        yield return CompareRows("softmax-ce confident gradient", shape, grad.GetAsArray1D(), wd, m);
        yield return Exact("softmax-ce confident argmax correct", shape, correct.GetAsArray1D().Select(v => (double)v).SequenceEqual(wc));
    }

    /// <summary>As <see cref="Compare"/>, the relative error of the worst of <paramref name="rows"/> equal rows.</summary>
    static CheckResult CompareRows(string kernel, string shape, float[] got, double[] want, int rows)
    {
        int unwritten = got.Count(float.IsNaN), width = want.Length / rows;
        double worst = got.Length == want.Length ? 0 : double.NaN;
        for (int i = 0; i < rows && got.Length == want.Length; i++)
            worst = Math.Max(worst, RelativeError(got[(i * width)..((i + 1) * width)], want[(i * width)..((i + 1) * width)]));
        return new CheckResult(kernel, "", shape, worst, unwritten, unwritten == 0 && worst < Tolerance);
    }

    /// <summary>One launch of a loss kernel; a training step's number (<paramref name="watchStep"/> &gt;= 0) is read by the kernel from device memory, -1 is an evaluation (no watch).</summary>
    static void LossKernel(KernelSet k, LossKind kind, ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> loss, ArrayView<float> correct,
        ArrayView<double> acc, ArrayView<long> firstBad, LossWorkspace workspace, int m, int c, float scale, bool grad, long watchStep)
    {
        using var step = k.NewStepSlot();
        step.Set(new StepValues { Step = Math.Max(watchStep, 0) });
        bool watch = watchStep >= 0;
        if (kind == LossKind.SoftmaxCrossEntropy) k.SoftmaxCrossEntropy(z, y, dz, loss, correct, acc, firstBad, workspace, step.Current, m, c, scale, grad, watch);
        else k.SigmoidSquaredError(z, y, dz, loss, correct, acc, firstBad, workspace, step.Current, m, c, scale, grad, watch);
        k.Stream.Synchronize();   // before the step slot goes
    }

    /// <summary>
    /// The launch's loss and correct sums as the loss kernels form them over <paramref name="groups"/> groups of
    /// <paramref name="groupSize"/> threads: thread t's rows t, t + T, ... in row order, a tree within each group (thread t adds
    /// thread t + h's, h = G/2 .. 1), the groups in order.
    /// </summary>
    static (double Loss, double Correct) GridSums(float[] rowLoss, float[] rowCorrect, int rows, int groupSize, int groups)
    {
        int threads = groupSize * groups;
        var loss = new double[threads];
        var correct = new double[threads];
        for (int i = 0; i < rows; i++) { loss[i % threads] += rowLoss[i]; correct[i % threads] += rowCorrect[i]; }
        double totalLoss = 0, totalCorrect = 0;
        for (int g = 0; g < groups; g++)
        {
            int first = g * groupSize;
            for (int half = groupSize / 2; half > 0; half /= 2)
                for (int t = 0; t < half; t++) { loss[first + t] += loss[first + t + half]; correct[first + t] += correct[first + t + half]; }
            totalLoss += loss[first];
            totalCorrect += correct[first];
        }
        return (totalLoss, totalCorrect);
    }

    /// <summary>
    /// The loss kernel's own sums: over several launches sharing one workspace (a batch, then the first rows again) the
    /// accumulators gain the launch's per-row losses summed in the kernels' fixed order (<see cref="GridSums"/>, over the
    /// launch's groups), bit for bit, and its correct count, and the workspace's count of finished groups is back at 0; a
    /// training step whose loss is NaN is recorded once (the first one), an evaluation's never.
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
        using var acc = a.Allocate1D(new[] { 1.5, 2.0 }); using var firstBad = a.Allocate1D(new[] { -1L }); using var workspace = k.AllocateLossWorkspace(m);
        int half = Math.Max(1, m / 2);
        double wantLoss = 1.5, wantCorrect = 2;
        foreach (var (rows, step) in new[] { (m, 3L), (half, -1L) })   // a training step, then an evaluation of the first rows
        {
            LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, workspace, rows, c, 1f / rows, grad: step >= 0, watchStep: step);
            var (size, groups) = k.LossLayout(rows);
            var (sum, count) = GridSums(loss.GetAsArray1D(), correct.GetAsArray1D(), rows, size, groups);
            wantLoss += sum; wantCorrect += count;
        }
        var got = acc.GetAsArray1D();
        string name = softmax ? "softmax cross-entropy" : "sigmoid squared-error";
        var (groupSize, launchGroups) = k.LossLayout(m);
        string shape = $"{m}+{half}, {launchGroups}x{groupSize}";
        yield return new CheckResult($"{name} metric accumulation (loss, correct)", "", shape, got[0] == wantLoss ? 0 : Math.Abs(got[0] - wantLoss) / wantLoss, 0,
            got[0] == wantLoss && got[1] == wantCorrect);
        ArrayView1D<int, Stride1D.Dense> finished = workspace.Finished;
        yield return Exact($"{name} finished-group count reset", shape, finished.GetAsArray1D()[0] == 0);
        bool quiet = firstBad.GetAsArray1D()[0] == -1;

        z[(m - 1) * c] = float.NaN;   // the last row's loss becomes NaN, and with it the running sum
        dz_.CopyFromCPU(z);
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, workspace, m, c, 1f / m, grad: false, watchStep: -1);
        bool evaluationIgnored = firstBad.GetAsArray1D()[0] == -1 && double.IsNaN(acc.GetAsArray1D()[0]);
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, workspace, m, c, 1f / m, grad: true, watchStep: 7);
        LossKernel(k, kind, dz_.View, dy.View, grad.View, loss.View, correct.View, acc.View, firstBad.View, workspace, m, c, 1f / m, grad: true, watchStep: 9);
        yield return Exact($"{name} non-finite marker (finite: none; evaluation: none; first bad step kept)", shape,
            quiet && evaluationIgnored && firstBad.GetAsArray1D()[0] == 7);
    }

    static IEnumerable<CheckResult> Sgd(KernelSet k, int n, int weights, bool nesterov, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = Random(n, r); var v = Random(n, r, 0.1);
        var rp = D(p); var rv = D(v);
        using var dp = a.Allocate1D(p); using var dv = a.Allocate1D(v);
        using var steps = k.NewStepSlot();
        steps.Set(new StepValues { Lr = 0.05f });
        for (int step = 0; step < 3; step++)
        {
            var g = Random(n, r);
            using var dg = a.Allocate1D(g);
            k.SgdMomentum(dp.View, dg.View, dv.View, steps.Current, 0.9f, 0.01f, weights, nesterov);
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
        using var steps = k.NewStepSlot();
        var constants = KernelSet.AdamConstants(0.9, 0.999, 1e-8, 0.05f, decoupled);
        for (int step = 1; step <= 4; step++)
        {
            var g = Random(n, r);
            using var dg = a.Allocate1D(g);
            // the decays are double on both sides (KernelSet rounds 1 - beta and the bias corrections to float once)
            var (c1, c2) = KernelSet.AdamCorrections(0.9, 0.999, step);
            steps.Set(new StepValues { Lr = 0.01f, C1 = c1, C2 = c2, Step = step - 1 });
            k.Adam(dp.View, dg.View, dm.View, dv.View, steps.Current, constants, weights);
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
        using var steps = k.NewStepSlot();
        steps.Set(new StepValues { Offset = offset });
        k.GatherBatch(dp.View, dl.View, dord.View, x.View, y.View, steps.Current, b, d);
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
        using var steps = k.NewStepSlot();
        steps.Set(new StepValues { Offset = 2, Pass = 4 });
        k.GatherBatchShifted(dpx.View, dl.View, dord.View, x.View, y.View, steps.Current, b, d, w, maxShift, 99);
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
        using var steps = k.NewStepSlot();
        steps.Set(new StepValues { Step = step });
        k.DropoutForward(dh.View, m * n, rate, dseed, steps.Current, layer);
        var hDropped = dh.GetAsArray1D();
        var wantH = h.Select((v, i) => Kept(i) ? v / (1.0 - rate) : 0.0).ToArray();
        using var dg = a.Allocate1D(g);
        k.DropoutBackward(dg.View, dh.View, m * n, rate, dseed, steps.Current, layer, Activation.Relu);
        var wantG = g.Select((v, i) => Kept(i) ? v / (1.0 - rate) * ReferenceMlp.Derivative(h[i], Activation.Relu) : 0.0).ToArray();
        yield return Compare("dropout forward", $"{m}x{n}", hDropped, wantH);
        yield return Compare("dropout backward (relu')", $"{m}x{n}", dg.GetAsArray1D(), wantG);
    }
}
