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
        oneMma = accelerator.LoadKernel<ArrayView<uint>, ArrayView<uint>, ArrayView<float>>(Bf16MmaProbeKernels.OneMma);
    }

    static Action<AcceleratorStream, KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>>? oneMma;

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

    [Test]
    public void One_emulated_mma_follows_the_ptx_fragment_formulas()
    {
        // PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type" (.bf16), transcribed apart from the kernel: element
        // i of a lane's fragment sits in register i / 2, the lower i in the low 16 bits; g = lane >> 2, t = lane % 4.
        //   A (16 x 16): row g for a0, a1, a4, a5, else g + 8; column 2t + (i & 1), + 8 for i >= 4
        //   B (16 x 8):  row (k) 2t + (i & 1), + 8 for i >= 2; column (n) g
        //   C (16 x 8):  row g for c0, c1, else g + 8; column 2t + (i & 1)
        // (Which half holds the lower k cannot change a product while A and B agree on it: swapping k and k + 1 in both only
        // reorders the sum. Packing A's halves one way and B's the other does, and the product tests above fail on it.)
        var rng = new System.Random(7);
        float[,] a = new float[16, 16], b = new float[16, 8];
        for (int r = 0; r < 16; r++) for (int k = 0; k < 16; k++) a[r, k] = rng.Next(-8, 9);   // small integers: every product and sum exact
        for (int k = 0; k < 16; k++) for (int n = 0; n < 8; n++) b[k, n] = rng.Next(-8, 9);
        uint Bits(float v) => (uint)BitConverter.SingleToInt32Bits(v) >> 16;   // exact in bf16
        uint[] aRegs = new uint[32 * 4], bRegs = new uint[32 * 2];
        for (int lane = 0; lane < 32; lane++)
        {
            int g = lane >> 2, t = lane & 3;
            for (int i = 0; i < 8; i++)
            {
                int row = i < 2 || (i >= 4 && i < 6) ? g : g + 8, col = 2 * t + (i & 1) + (i >= 4 ? 8 : 0);
                aRegs[lane * 4 + i / 2] |= Bits(a[row, col]) << (16 * (i & 1));
            }
            for (int i = 0; i < 4; i++)
            {
                int k = 2 * t + (i & 1) + (i >= 2 ? 8 : 0);
                bRegs[lane * 2 + i / 2] |= Bits(b[k, g]) << (16 * (i & 1));
            }
        }
        var acc = accelerator!;
        using var da = acc.Allocate1D(aRegs);
        using var db = acc.Allocate1D(bRegs);
        using var dd = acc.Allocate1D(Enumerable.Repeat(float.NaN, 32 * 4).ToArray());
        oneMma!(acc.DefaultStream, new KernelConfig(1, 32), da.View, db.View, dd.View);
        acc.Synchronize();
        float[] d = dd.GetAsArray1D();
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < 4; i++)
            {
                int g = lane >> 2, t = lane & 3, row = i < 2 ? g : g + 8, col = 2 * t + (i & 1);
                float want = 0;
                for (int k = 0; k < 16; k++) want += a[row, k] * b[k, col];
                Assert.That(d[lane * 4 + i], Is.EqualTo(want), $"lane {lane} c{i} = D[{row}, {col}]");
            }
    }
}

/// <summary>One warp's emulated m16n8k16 bf16 mma on fragments given per lane: a (4 registers a lane), b (2), d (4 accumulators, from 0).</summary>
public static class Bf16MmaProbeKernels
{
    public static void OneMma(ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> d)
    {
        int lane = Group.IdxX;
        MmaAccumulator acc = default;
        default(ShuffleMmaBf16).Mma(ref acc, a[lane * 4], a[lane * 4 + 1], a[lane * 4 + 2], a[lane * 4 + 3], b[lane * 2], b[lane * 2 + 1]);
        d[lane * 4] = acc.C0; d[lane * 4 + 1] = acc.C1; d[lane * 4 + 2] = acc.C2; d[lane * 4 + 3] = acc.C3;
    }
}
