using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The staged product's bf16 instance emulated (<see cref="ShuffleWarpMmaBf16"/>: the packing of two bf16 values per register in
/// the depth order <see cref="Bf16Fragments"/> gives them, and m16n8k16's fragment layout) against the float64 product of
/// bf16-rounded inputs (the shared cases: <see cref="StagedTensorCoreTests"/>), the rounding itself, NaN inputs, and one
/// emulated mma against the PTX ISA's fragment formulas.
/// </summary>
public sealed class TensorCoreBf16EmulationTests : StagedTensorCoreTests
{
    private protected override Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs> Load(Accelerator a) =>
        a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(TensorCoreGemmKernels.Gemm<ShuffleWarpMmaBf16>);

    protected override float Rounded(float x) => ReducedPrecision.Bf16(x);

    protected override void OpenProbes(Accelerator a) =>
        oneMma = a.LoadKernel<ArrayView<uint>, ArrayView<uint>, ArrayView<float>>(Bf16MmaProbeKernels.OneMma);

    Action<AcceleratorStream, KernelConfig, ArrayView<uint>, ArrayView<uint>, ArrayView<float>>? oneMma;

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
    public void A_nan_whose_payload_bf16_drops_stays_nan_in_its_row_only()
    {
        // 0x7f800001: its top 16 bits alone are infinity; staged, it must stay a NaN (Bf16Rounding makes it quiet)
        const int m = 16, n = 8, k = 16;
        var a = Enumerable.Repeat(1f, m * k).ToArray();
        a[3 * k + 5] = BitConverter.Int32BitsToSingle(0x7f800001);
        var b = Enumerable.Repeat(0.5f, n * k).ToArray();
        var (c, _) = Run(a, b, null, 1, m, n, k, k, 1, k, 1, Epilogue.None, 0);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                if (i == 3) Assert.That(float.IsNaN(c[i * n + j]), $"C[3, {j}] = {c[i * n + j]}: a NaN, not an infinity");
                else Assert.That(c[i * n + j], Is.EqualTo(8f), $"C[{i}, {j}]");
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
        var acc = Accelerator;
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

/// <summary>
/// One warp's emulated m16n8k16 bf16 mma on fragments given per lane: a (4 registers a lane), b (2), d (4 accumulators, from 0),
/// as m tile 0 and n tile 0 of <see cref="ShuffleWarpMmaBf16.Step"/> (the other tiles' registers 0).
/// </summary>
public static class Bf16MmaProbeKernels
{
    public static void OneMma(ArrayView<uint> a, ArrayView<uint> b, ArrayView<float> d)
    {
        int lane = Group.IdxX;
        AFragments x = default;
        x.M0R0 = a[lane * 4]; x.M0R1 = a[lane * 4 + 1]; x.M0R2 = a[lane * 4 + 2]; x.M0R3 = a[lane * 4 + 3];
        BFragments y = default;
        y.N0R0 = b[lane * 2]; y.N0R1 = b[lane * 2 + 1];
        WarpTile acc = default;
        ShuffleWarpMmaBf16.Step(ref acc, x, y);
        d[lane * 4] = acc.C00.C0; d[lane * 4 + 1] = acc.C00.C1; d[lane * 4 + 2] = acc.C00.C2; d[lane * 4 + 3] = acc.C00.C3;
    }
}
