using Gpu.Engine.Runtime;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The staged tensor-core product (TensorCoreGemmKernels.Gemm) without a GPU, one fixture per precision: the kernel with its mma
/// emulated by warp shuffles on a CPU accelerator whose warps have 32 lanes, as a CUDA warp does, against the float64 product of
/// the rounded inputs. It checks what a GPU would otherwise be the first to check: the shared-memory staging (two buffers, padded
/// rows, one barrier per 16-deep tile, both read paths of each operand: along p and along the rows, scalar and 16-byte), the
/// rounding once as values are staged, the 128 x 128 block and 64 x 32 warp tiling, the fragment layout of A, B and the
/// accumulators (taken from PTX's documentation), the edges of shapes that are no multiple of any tile (several blocks in both
/// directions, several tiles deep), the strides of the three products a layer needs, the epilogues, and split contractions.
/// Outputs are poisoned (NaN) before each launch.
/// </summary>
public abstract class StagedTensorCoreTests
{
    Context? context;
    Accelerator? accelerator;
    Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? gemm;
    Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>? reduce;

    /// <summary>The emulated instance, loaded on <paramref name="a"/>.</summary>
    private protected abstract Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> Load(Accelerator a);

    /// <summary>An input as the multiplier sees it (the host reference's rounding).</summary>
    protected abstract float Rounded(float x);

    /// <summary>The CPU accelerator the kernel runs on (for a fixture's own probes).</summary>
    protected Accelerator Accelerator => accelerator!;

    [OneTimeSetUp]
    public void Open()
    {
        // 32-lane warps, 8 per group (the kernel's 256 threads)
        context = ComputeDevice.CpuOnlyContext(new CPUDevice(32, TensorCoreGemmKernels.Threads / 32, Math.Max(1, Environment.ProcessorCount)));
        accelerator = context.CreateCPUAccelerator(0);
        gemm = Load(accelerator);
        reduce = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(
            SplitKKernels.ReduceSplits);
        OpenProbes(accelerator);
    }

    /// <summary>Loads a fixture's own probe kernels.</summary>
    protected virtual void OpenProbes(Accelerator a) { }

    [OneTimeTearDown]
    public void Close()
    {
        accelerator?.Dispose();
        context?.Dispose();
    }

    /// <summary>
    /// (m, n, k): rows of X, units of the layer, inputs. Each product (forward m x n deep k, weight gradient n x k deep m, input
    /// gradient m x k deep n) of the first two runs past a 128 x 128 block in at least one direction (the first in both) and
    /// several 16-deep tiles, no multiple of any tile; the first reads every operand value by value (odd strides), the second 16
    /// bytes at a time (strides and extents multiples of 4); the last is smaller than one mma tile.
    /// </summary>
    static readonly (int M, int N, int K)[] Shapes = [(130, 141, 35), (132, 36, 140), (3, 5, 9)];

    protected static float[] Random(int count, int seed, float scale)
    {
        var rng = new System.Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
    }

    /// <summary>
    /// Runs the kernel on C[rows, cols] and returns C and aux as written; both start as NaN except where aux is an input.
    /// With an <paramref name="offset"/>, a and b are views that start that many floats into buffers whose other values are NaN;
    /// with <paramref name="splits"/> &gt; 1, the contraction is cut into that many splits of whole 16-deep tiles (as
    /// TensorCoreFamily cuts it), their partial sums (a NaN-poisoned workspace) added by the blocked family's reduction.
    /// </summary>
    protected (float[] C, float[] Aux) Run(float[] a, float[] b, float[]? auxIn, int auxLength, int rows, int cols, int depth,
        int aRow, int aCol, int bRow, int bCol, int epilogue, int act, int offset = 0, int splits = 1)
    {
        var acc = accelerator!;
        float[] Inside(float[] x) => [.. Enumerable.Repeat(float.NaN, offset), .. x, .. Enumerable.Repeat(float.NaN, 7)];
        using var da = acc.Allocate1D(Inside(a));
        using var db = acc.Allocate1D(Inside(b));
        using var dc = acc.Allocate1D(Enumerable.Repeat(float.NaN, rows * cols).ToArray());
        using var dx = acc.Allocate1D(auxIn ?? Enumerable.Repeat(float.NaN, Math.Max(1, auxLength)).ToArray());
        var va = da.View.SubView(offset, a.Length);
        var vb = db.View.SubView(offset, b.Length);
        var args = TensorCoreFamily.Args(va, vb, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, act);
        Assert.That(args.Aligned, Is.EqualTo(offset % 4 == 0 ? 3 : 0), "each view's 16-byte alignment, as the host sees it");
        if (splits == 1) gemm!(acc.DefaultStream, TensorCoreGemmKernels.Config(rows, cols, 1), va, vb, dc.View, dx.View, args);
        else
        {
            int tiles = (depth + TensorCoreGemmKernels.TileDepth - 1) / TensorCoreGemmKernels.TileDepth, per = (tiles + splits - 1) / splits;
            (args.Splits, args.SplitDepth) = ((tiles + per - 1) / per, per * TensorCoreGemmKernels.TileDepth);
            Assert.That(args.Splits, Is.EqualTo(splits), "every split non-empty");
            using var partials = acc.Allocate1D(Enumerable.Repeat(float.NaN, splits * rows * cols).ToArray());
            gemm!(acc.DefaultStream, TensorCoreGemmKernels.Config(rows, cols, splits), va, vb, partials.View, dx.View, args);
            reduce!(acc.DefaultStream, rows * cols, partials.View, dc.View, dx.View, va, args);
            acc.Synchronize();
        }
        acc.Synchronize();
        return (dc.GetAsArray1D(), dx.GetAsArray1D());
    }

    /// <summary>Each C[i, j] against sum_p r(A(i, p)) r(B(j, p)) in float64, within fp32 summation's error of the sum of |terms|.</summary>
    void AssertProduct(float[] c, Func<int, int, float> a, Func<int, int, float> b, int rows, int cols, int depth,
        Func<int, int, double, double> epilogue, string what)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double sum = 0, size = 0;
                for (int p = 0; p < depth; p++)
                {
                    double term = (double)Rounded(a(i, p)) * Rounded(b(j, p));
                    sum += term;
                    size += Math.Abs(term);
                }
                double expected = epilogue(i, j, sum), got = c[(long)i * cols + j];
                Assert.That(double.IsFinite(got), $"{what}: C[{i}, {j}] = {got} (not written?)");
                Assert.That(Math.Abs(got - expected), Is.LessThanOrEqualTo(2e-6 * depth * size + 1e-12), $"{what}: C[{i}, {j}]");
            }
    }

    [Test]
    public void Forward_with_bias_and_relu_matches_the_reference([Range(0, 2)] int shape)
    {
        var (m, n, k) = Shapes[shape];
        float[] x = Random(m * k, 1 + shape, 1f), w = Random(n * k, 11 + shape, 0.5f), bias = Random(n, 21 + shape, 0.1f);
        // Z[m, n] = relu(X W^T + b): A = X (aRow k, aCol 1), B = W (bRow k, bCol 1)
        var (c, _) = Run(x, w, bias, n, m, n, k, k, 1, k, 1, Epilogue.BiasAct, (int)Gpu.Engine.Settings.Activation.Relu);
        AssertProduct(c, (i, p) => x[i * k + p], (j, p) => w[j * k + p], m, n, k, (_, j, s) => Math.Max(0, s + bias[j]), "forward");
    }

    [Test]
    public void Weight_gradient_with_bias_gradient_matches_the_reference([Range(0, 2)] int shape)
    {
        var (m, n, k) = Shapes[shape];
        float[] dz = Random(m * n, 31 + shape, 1f), h = Random(m * k, 41 + shape, 1f);
        // dW[n, k] = dZ^T H: A(i, p) = dz[p, i] (aRow 1, aCol n), B(j, p) = h[p, j] (bRow 1, bCol k); aux[i] = sum_p dz[p, i], unrounded
        var (dw, db) = Run(dz, h, null, n, n, k, m, 1, n, 1, k, Epilogue.RowSums, 0);
        AssertProduct(dw, (i, p) => dz[p * n + i], (j, p) => h[p * k + j], n, k, m, (_, _, s) => s, "weight gradient");
        for (int i = 0; i < n; i++)
        {
            double sum = 0, size = 0;
            for (int p = 0; p < m; p++) { sum += dz[p * n + i]; size += Math.Abs(dz[p * n + i]); }
            Assert.That(db[i], Is.EqualTo(sum).Within(2e-6 * m * size + 1e-12), $"bias gradient [{i}] (float32 sums of the unrounded column)");
        }
    }

    [Test]
    public void Input_gradient_through_relu_matches_the_reference([Range(0, 2)] int shape)
    {
        var (m, n, k) = Shapes[shape];
        float[] dz = Random(m * n, 51 + shape, 1f), w = Random(n * k, 61 + shape, 0.5f), h = Random(m * k, 71 + shape, 1f);
        // dH[m, k] = (dZ W) * relu'(H): A = dZ (aRow n, aCol 1), B(j, p) = w[p, j] (bRow 1, bCol k)
        var (dx, _) = Run(dz, w, h, m * k, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, (int)Gpu.Engine.Settings.Activation.Relu);
        AssertProduct(dx, (i, p) => dz[i * n + p], (j, p) => w[p * k + j], m, k, n, (i, j, s) => h[i * k + j] > 0 ? s : 0, "input gradient");
    }

    [Test]
    public void Views_that_start_inside_a_buffer_are_read_from_their_start([Values(1, 4)] int offset)
    {
        // strides and extents multiples of 4: 16-byte reads where the views are aligned (offset 4), value by value where not (1)
        const int m = 20, n = 12, k = 36;
        float[] x = Random(m * k, 81, 1f), w = Random(n * k, 82, 0.5f), h = Random(m * k, 83, 1f), dz = Random(m * n, 84, 1f);
        var (y, _) = Run(x, w, null, 1, m, n, k, k, 1, k, 1, Epilogue.None, 0, offset);
        AssertProduct(y, (i, p) => x[i * k + p], (j, p) => w[j * k + p], m, n, k, (_, _, s) => s, $"forward, views at {offset}");
        var (dw, _) = Run(dz, h, null, 1, n, k, m, 1, n, 1, k, Epilogue.None, 0, offset);
        AssertProduct(dw, (i, p) => dz[p * n + i], (j, p) => h[p * k + j], n, k, m, (_, _, s) => s, $"weight gradient, views at {offset}");
    }

    [Test]
    public void Split_contractions_add_up_with_every_epilogue([Values(2, 3)] int splits)
    {
        // each product's contraction 36 to 99 deep (3 to 7 tiles) in 2 or 3 splits, the last one partial; odd k: value-by-value reads of the k-strided operands
        const int m = 40, n = 36, k = 99;
        var relu = (int)Gpu.Engine.Settings.Activation.Relu;
        float[] x = Random(m * k, 91, 1f), w = Random(n * k, 92, 0.5f), bias = Random(n, 93, 0.1f), h = Random(m * k, 94, 1f), dz = Random(m * n, 95, 1f);
        var (y, _) = Run(x, w, bias, n, m, n, k, k, 1, k, 1, Epilogue.BiasAct, relu, splits: splits);
        AssertProduct(y, (i, p) => x[i * k + p], (j, p) => w[j * k + p], m, n, k, (_, j, s) => Math.Max(0, s + bias[j]), $"forward in {splits} splits");
        var (dw, db) = Run(dz, h, null, n, n, k, m, 1, n, 1, k, Epilogue.RowSums, 0, splits: splits);
        AssertProduct(dw, (i, p) => dz[p * n + i], (j, p) => h[p * k + j], n, k, m, (_, _, s) => s, $"weight gradient in {splits} splits");
        for (int i = 0; i < n; i++)
            Assert.That(db[i], Is.EqualTo(Enumerable.Range(0, m).Sum(p => (double)dz[p * n + i])).Within(1e-4), $"bias gradient [{i}] in {splits} splits");
        var (dx, _) = Run(dz, w, h, m * k, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, relu, splits: splits);
        AssertProduct(dx, (i, p) => dz[i * n + p], (j, p) => w[p * k + j], m, k, n, (i, j, s) => h[i * k + j] > 0 ? s : 0, $"input gradient in {splits} splits");
    }
}
