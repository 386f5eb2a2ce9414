using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Engine.Analysis;

/// <summary>One comparison of a kernel against the float64 reference.</summary>
public sealed record CheckResult(string Kernel, string Variant, string Shape, double RelativeError, int Unwritten, bool Passed);

/// <summary>
/// Runs every kernel of a <see cref="KernelSet"/> on random inputs of awkward shapes (never tile
/// multiples), with outputs poisoned with NaN before each launch, and compares with
/// <see cref="ReferenceMlp"/>: ||out - ref|| / ||ref|| must stay below the tolerance and no output
/// may be left unwritten. This is what `gpu check` runs, so a user can verify a device and driver
/// (and a GPU machine without the .NET SDK can verify the CUDA kernels).
/// </summary>
public static class KernelCheck
{
    public const double Tolerance = 1e-5;

    static readonly (int M, int N, int K)[] AnyShapes = [(1, 1, 1), (7, 33, 5), (33, 7, 129), (129, 10, 784), (130, 67, 9), (200, 300, 100)];
    static readonly (int M, int N, int K)[] Vector4Shapes = [(7, 12, 36), (65, 36, 788), (129, 260, 12)];

    public static List<CheckResult> Run(KernelSet k, int seed = 1)
    {
        var results = new List<CheckResult>();
        var saved = k.Gemm;
        try
        {
            var variants = new List<GemmVariant> { GemmVariant.Scalar, GemmVariant.Tiled };
            if (k.Accelerator.AcceleratorType == AcceleratorType.CPU) variants.Add(GemmVariant.Vector4);
            foreach (var v in variants)
            {
                k.Gemm = v;
                foreach (var (m, n, kk) in v == GemmVariant.Vector4 ? Vector4Shapes : AnyShapes)
                    results.AddRange(Gemms(k, v.ToString(), m, n, kk, seed++));
            }
            k.Gemm = saved;
            foreach (var (m, c) in new[] { (1, 10), (33, 10), (129, 17) }) results.AddRange(Softmax(k, m, c, seed++));
            foreach (var (m, n) in new[] { (7, 33), (1000, 5) }) results.Add(BiasGrad(k, m, n, seed++));
            foreach (var n in new[] { 1, 4099 }) results.Add(Sgd(k, n, n / 3, seed++));
            foreach (var n in new[] { 1, 4099 })
                foreach (bool decoupled in new[] { false, true }) results.Add(Adam(k, n, n / 3, decoupled, seed++));
            foreach (var (b, d) in new[] { (7, 33), (129, 784) }) results.Add(Gather(k, b, d, seed++));
        }
        finally { k.Gemm = saved; }
        return results;
    }

    static float[] Random(int n, Random r, double scale = 1) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)).ToArray();
    static double[] D(float[] a) => Array.ConvertAll(a, v => (double)v);

    /// <summary>||got - want|| / ||want|| (the plain norm when want is 0); NaN anywhere in got makes it NaN.</summary>
    public static double RelativeError(float[] got, double[] want)
    {
        double num = 0, den = 0;
        for (int i = 0; i < got.Length; i++) { double d = got[i] - want[i]; num += d * d; den += want[i] * want[i]; }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    static CheckResult Compare(string kernel, string variant, string shape, float[] got, double[] want)
    {
        int unwritten = got.Count(float.IsNaN);
        double rel = RelativeError(got, want);
        return new CheckResult(kernel, variant, shape, rel, unwritten, unwritten == 0 && rel < Tolerance);
    }

    static MemoryBuffer1D<float, Stride1D.Dense> Poisoned(Accelerator a, int n)
    {
        var b = a.Allocate1D<float>(n);
        b.CopyFromCPU(Enumerable.Repeat(float.NaN, n).ToArray());
        return b;
    }

    static IEnumerable<CheckResult> Gemms(KernelSet k, string variant, int m, int n, int kk, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var x = Random(m * kk, r); var w = Random(n * kk, r); var b = Random(n, r); var dz = Random(m * n, r);
        var h = Random(m * kk, r).Select(v => Math.Max(0f, v)).ToArray();
        string shape = $"{m}x{n}x{kk}";
        using var dx_ = a.Allocate1D(x); using var dw_ = a.Allocate1D(w); using var db_ = a.Allocate1D(b);
        using var ddz = a.Allocate1D(dz); using var dh = a.Allocate1D(h);
        foreach (var act in Enum.GetValues<Activation>())
        {
            using var y = Poisoned(a, m * n);
            k.DenseForward(dx_.View, dw_.View, db_.View, y.View, m, n, kk, act);
            yield return Compare($"dense forward ({Words.ActivationName(act)})", variant, shape, y.GetAsArray1D(), ReferenceMlp.Dense(D(x), D(w), D(b), m, n, kk, act));
        }
        using (var dw = Poisoned(a, n * kk))
        {
            k.WeightGrad(ddz.View, dx_.View, dw.View, m, n, kk);
            yield return Compare("weight gradient", variant, shape, dw.GetAsArray1D(), ReferenceMlp.MatTN(D(dz), D(x), m, n, kk));
        }
        foreach (var act in Enum.GetValues<Activation>())
        {
            // h must be a possible output of the activation: relu/leaky outputs of random z, sigmoid in (0,1), tanh in (-1,1)
            var hAct = h.Select((v, i) => (float)ReferenceMlp.Activate(4 * (x[i % x.Length] + v - 0.5), act)).ToArray();
            using var dhAct = a.Allocate1D(hAct);
            using var dxo = Poisoned(a, m * kk);
            k.InputGrad(ddz.View, dw_.View, dhAct.View, dxo.View, m, n, kk, act);
            yield return Compare($"input gradient ({Words.ActivationName(act)}')", variant, shape, dxo.GetAsArray1D(), ReferenceMlp.MatNN(D(dz), D(w), m, n, kk, D(hAct), act));
        }
    }

    static IEnumerable<CheckResult> Softmax(KernelSet k, int m, int c, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var z = Random(m * c, r, 30);
        var labels = Enumerable.Range(0, m).Select(_ => r.Next(c)).ToArray();
        using var dz_ = a.Allocate1D(z); using var dy = a.Allocate1D(labels);
        using var grad = Poisoned(a, m * c); using var loss = Poisoned(a, m); using var correct = Poisoned(a, m);
        k.SoftmaxCrossEntropy(dz_.View, dy.View, grad.View, loss.View, correct.View, m, c, 1f / m, grad: true);
        var (wl, wc, wd) = ReferenceMlp.SoftmaxCrossEntropy(D(z), labels, m, c, 1.0 / m);
        yield return Compare("softmax cross-entropy loss", "-", $"{m}x{c}", loss.GetAsArray1D(), wl);
        yield return Compare("softmax cross-entropy gradient", "-", $"{m}x{c}", grad.GetAsArray1D(), wd);
        yield return Compare("argmax correct", "-", $"{m}x{c}", correct.GetAsArray1D(), wc);

        var sig = z.Select(v => (float)(1 / (1 + Math.Exp(-v / 10)))).ToArray();   // sigmoid outputs in (0, 1)
        using var ds = a.Allocate1D(sig);
        using var grad2 = Poisoned(a, m * c); using var loss2 = Poisoned(a, m); using var correct2 = Poisoned(a, m);
        k.SigmoidSquaredError(ds.View, dy.View, grad2.View, loss2.View, correct2.View, m, c, 1f / m, grad: true);
        var (sl, sc, sd) = ReferenceMlp.SigmoidSquaredError(D(sig), labels, m, c, 1.0 / m);
        yield return Compare("sigmoid squared-error loss", "-", $"{m}x{c}", loss2.GetAsArray1D(), sl);
        yield return Compare("sigmoid squared-error gradient", "-", $"{m}x{c}", grad2.GetAsArray1D(), sd);
        yield return Compare("argmax correct (sigmoid)", "-", $"{m}x{c}", correct2.GetAsArray1D(), sc);
    }

    static CheckResult BiasGrad(KernelSet k, int m, int n, int seed)
    {
        var a = k.Accelerator;
        var dz = Random(m * n, new Random(seed));
        using var ddz = a.Allocate1D(dz); using var db = Poisoned(a, n);
        k.BiasGrad(ddz.View, db.View, m, n);
        return Compare("bias gradient", "-", $"{m}x{n}", db.GetAsArray1D(), ReferenceMlp.ColumnSums(D(dz), m, n));
    }

    static CheckResult Sgd(KernelSet k, int n, int weights, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = Random(n, r); var g = Random(n, r); var v = Random(n, r, 0.1);
        using var dp = a.Allocate1D(p); using var dg = a.Allocate1D(g); using var dv = a.Allocate1D(v);
        k.SgdMomentum(dp.View, dg.View, dv.View, 0.05f, 0.9f, 0.01f, weights);
        var rp = D(p); var rv = D(v);
        ReferenceMlp.SgdMomentum(rp, D(g), rv, 0.05, 0.9, 0.01, weights);
        return Compare("SGD momentum + L2", "-", $"{n}", dp.GetAsArray1D(), rp);
    }

    static CheckResult Adam(KernelSet k, int n, int weights, bool decoupled, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        var p = Random(n, r); var g = Random(n, r); var m0 = Random(n, r, 0.1); var v0 = Random(n, r, 0.1).Select(Math.Abs).ToArray();
        using var dp = a.Allocate1D(p); using var dg = a.Allocate1D(g); using var dm = a.Allocate1D(m0); using var dv = a.Allocate1D(v0);
        k.Adam(dp.View, dg.View, dm.View, dv.View, 0.01f, 0.9f, 0.999f, 1e-8f, 3, 0.05f, decoupled, weights);
        var rp = D(p); var rm = D(m0); var rv = D(v0);
        ReferenceMlp.Adam(rp, D(g), rm, rv, 0.01f, 0.9f, 0.999f, 1e-8f, 3, 0.05f, decoupled, weights);
        return Compare(decoupled ? "AdamW" : "Adam", "-", $"{n}", dp.GetAsArray1D(), rp);
    }

    static CheckResult Gather(KernelSet k, int b, int d, int seed)
    {
        var a = k.Accelerator;
        var r = new Random(seed);
        int count = b + 5;
        var pixels = new byte[count * d]; r.NextBytes(pixels);
        var order = Enumerable.Range(0, count).OrderBy(_ => r.Next()).ToArray();
        using var dp = a.Allocate1D(pixels); using var dl = a.Allocate1D(new int[count]); using var dord = a.Allocate1D(order);
        using var x = Poisoned(a, b * d); using var y = a.Allocate1D<int>(b);
        k.GatherBatch(dp.View, dl.View, dord.View, x.View, y.View, 3, b, d);
        var want = new double[b * d];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < d; j++) want[i * d + j] = pixels[order[3 + i] * d + j] / 255.0 - 0.5;
        return Compare("batch gather + normalise", "-", $"{b}x{d}", x.GetAsArray1D(), want);
    }
}
