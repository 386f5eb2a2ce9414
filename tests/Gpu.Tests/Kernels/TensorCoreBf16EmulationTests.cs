using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The bf16 tensor-core product (TensorCoreBf16GemmKernels.Gemm) without a GPU: the same kernel with its m16n8k16 mma emulated by
/// warp shuffles (<see cref="ShuffleMmaBf16"/>) on a CPU accelerator whose warps have 32 lanes, as a CUDA warp does, against the
/// float64 product of bf16-rounded inputs. It checks the 64 x 64 block and 32 x 32 warp tiling, the packing of two bf16 values per
/// register and the fragment layout of A, B and the accumulators (taken from PTX's documentation), the 16-deep steps (one, two,
/// and depths that are no multiple of 16), the edges of shapes that are no multiple of any tile, the strides of the three products
/// a layer needs, and the epilogues. Outputs are poisoned (NaN) before each launch.
/// </summary>
public sealed class TensorCoreBf16EmulationTests
{
    static Context? context;
    static Accelerator? accelerator;
    static Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>? gemm;

    [OneTimeSetUp]
    public void Open()
    {
        context = ComputeDevice.CpuOnlyContext(new CPUDevice(32, 4, Math.Max(1, Environment.ProcessorCount)));
        accelerator = context.CreateCPUAccelerator(0);
        gemm = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(
            TensorCoreBf16GemmKernels.Gemm<ShuffleMmaBf16>);
    }

    [OneTimeTearDown]
    public void Close()
    {
        accelerator?.Dispose();
        context?.Dispose();
    }

    /// <summary>(m, n, k): rows of X, units of the layer, inputs; past a 64 block in m and in n, off every tile; depths of 2 steps and a part, under one step, exactly 2 steps.</summary>
    static readonly (int M, int N, int K)[] Shapes = [(70, 13, 37), (3, 67, 9), (19, 7, 32)];

    static float[] Random(int count, int seed, float scale)
    {
        var rng = new System.Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
    }

    /// <summary>Runs the kernel on C[rows, cols] and returns C and aux as written; both start as NaN except where aux is an input.</summary>
    static (float[] C, float[] Aux) Run(float[] a, float[] b, float[]? auxIn, int auxLength, int rows, int cols, int depth,
        int aRow, int aCol, int bRow, int bCol, int epilogue, int act)
    {
        var acc = accelerator!;
        using var da = acc.Allocate1D(a);
        using var db = acc.Allocate1D(b);
        using var dc = acc.Allocate1D(Enumerable.Repeat(float.NaN, rows * cols).ToArray());
        using var dx = acc.Allocate1D(auxIn ?? Enumerable.Repeat(float.NaN, Math.Max(1, auxLength)).ToArray());
        gemm!(acc.DefaultStream, TensorCoreBf16GemmKernels.Config(rows, cols), da.View, db.View, dc.View, dx.View, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, act);
        acc.Synchronize();
        return (dc.GetAsArray1D(), dx.GetAsArray1D());
    }

    /// <summary>Each C[i, j] against sum_p bf16(A(i, p)) bf16(B(j, p)) in float64, within fp32 summation's error of the sum of |terms|.</summary>
    static void AssertProduct(float[] c, Func<int, int, float> a, Func<int, int, float> b, int rows, int cols, int depth,
        Func<int, int, double, double> epilogue, string what)
    {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
            {
                double sum = 0, size = 0;
                for (int p = 0; p < depth; p++)
                {
                    double term = (double)ReducedPrecision.Bf16(a(i, p)) * ReducedPrecision.Bf16(b(j, p));
                    sum += term;
                    size += Math.Abs(term);
                }
                double expected = epilogue(i, j, sum), got = c[(long)i * cols + j];
                Assert.That(double.IsFinite(got), $"{what}: C[{i}, {j}] = {got} (not written?)");
                Assert.That(Math.Abs(got - expected), Is.LessThanOrEqualTo(2e-6 * depth * size + 1e-12), $"{what}: C[{i}, {j}]");
            }
    }

    [Test]
    public void Forward_with_bias_and_relu_matches_the_bf16_reference([Range(0, 2)] int shape)
    {
        var (m, n, k) = Shapes[shape];
        float[] x = Random(m * k, 101 + shape, 1f), w = Random(n * k, 111 + shape, 0.5f), bias = Random(n, 121 + shape, 0.1f);
        // Z[m, n] = relu(X W^T + b): A = X (aRow k, aCol 1), B = W (bRow k, bCol 1)
        var (c, _) = Run(x, w, bias, n, m, n, k, k, 1, k, 1, Epilogue.BiasAct, (int)Gpu.Engine.Settings.Activation.Relu);
        AssertProduct(c, (i, p) => x[i * k + p], (j, p) => w[j * k + p], m, n, k, (_, j, s) => Math.Max(0, s + bias[j]), "forward");
    }

    [Test]
    public void Weight_gradient_with_bias_gradient_matches_the_bf16_reference([Range(0, 2)] int shape)
    {
        var (m, n, k) = Shapes[shape];
        float[] dz = Random(m * n, 131 + shape, 1f), h = Random(m * k, 141 + shape, 1f);
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
    public void Weight_gradient_without_bias_writes_the_product_only()
    {
        var (m, n, k) = (21, 9, 17);
        float[] dz = Random(m * n, 151, 1f), h = Random(m * k, 152, 1f);
        var (dw, _) = Run(dz, h, null, n * k, n, k, m, 1, n, 1, k, Epilogue.None, 0);
        AssertProduct(dw, (i, p) => dz[p * n + i], (j, p) => h[p * k + j], n, k, m, (_, _, s) => s, "weight gradient, no bias");
    }

    [Test]
    public void Input_gradient_through_relu_matches_the_bf16_reference([Range(0, 2)] int shape)
    {
        var (m, n, k) = Shapes[shape];
        float[] dz = Random(m * n, 161 + shape, 1f), w = Random(n * k, 171 + shape, 0.5f), h = Random(m * k, 181 + shape, 1f);
        // dH[m, k] = (dZ W) * relu'(H): A = dZ (aRow n, aCol 1), B(j, p) = w[p, j] (bRow 1, bCol k)
        var (dx, _) = Run(dz, w, h, m * k, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, (int)Gpu.Engine.Settings.Activation.Relu);
        AssertProduct(dx, (i, p) => dz[i * n + p], (j, p) => w[p * k + j], m, k, n, (i, j, s) => h[i * k + j] > 0 ? s : 0, "input gradient");
    }

    [Test]
    public void The_emulation_rounds_the_inputs_to_bf16_ties_to_even_and_not_more()
    {
        // ties of bf16: 1 + 2^-8 rounds down to 1 (even), 1 + 3 2^-8 up to 1 + 2^-6 (even); TF32 would keep both, truncation would give 1 + 2^-7 for the second
        const int m = 16, n = 8, k = 16;
        float tieDown = BitConverter.Int32BitsToSingle(0x3f808000), tieUp = BitConverter.Int32BitsToSingle(0x3f818000);
        var a = Enumerable.Range(0, m * k).Select(e => e / k < 8 ? tieDown : tieUp).ToArray();
        var b = Enumerable.Repeat(1f, n * k).ToArray();
        var (c, _) = Run(a, b, null, 1, m, n, k, k, 1, k, 1, Epilogue.None, 0);
        Assert.That(c.Take(8 * n), Has.All.EqualTo(16f), "sixteen products of bf16(1 + 2^-8) = 1");
        Assert.That(c.Skip(8 * n), Has.All.EqualTo(16f * 1.015625f), "sixteen products of bf16(1 + 3 2^-8) = 1 + 2^-6");
    }
}
