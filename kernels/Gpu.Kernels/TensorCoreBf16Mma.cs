using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace Gpu.Kernels;

/// <summary>
/// One warp-wide m16n8k16 bf16 mma on the tensor cores, acc += A (16x16) . B (16x8), every lane of the warp together: PTX
/// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 through ILGPU's inline PTX (CUDA only). Each register holds two bf16
/// values, the lower-indexed one in the low 16 bits. With g = lane / 4, t = lane % 4 (PTX ISA, "Matrix Fragments for
/// mma.m16n8k16 with floating point type", .bf16 A: row g for a0, a1, a4, a5, g + 8 for the others, column 2t + (i &amp; 1),
/// + 8 for a4..a7; B: row (k) 2t + (i &amp; 1), + 8 for b2, b3, column (n) g; C: as m16n8k8, <see cref="MmaAccumulator"/>):
/// a0 = A(g, 2t..2t+1), a1 = A(g+8, 2t..2t+1), a2 = A(g, 2t+8..2t+9), a3 = A(g+8, 2t+8..2t+9); b0 = B(2t..2t+1, g), b1 = B(2t+8..2t+9, g).
/// </summary>
internal struct TensorCoreMmaBf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mma(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        Output<float> d0 = default, d1 = default, d2 = default, d3 = default;
        Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
        Input<float> z0 = acc.C0, z1 = acc.C1, z2 = acc.C2, z3 = acc.C3;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};",
            ref d0, ref d1, ref d2, ref d3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1, ref z0, ref z1, ref z2, ref z3);
        acc.C0 = d0.Value; acc.C1 = d1.Value; acc.C2 = d2.Value; acc.C3 = d3.Value;
    }
}

/// <summary>
/// A 16-deep shared tile's fragments packed for m16n8k16 (<see cref="TensorCoreMmaBf16"/>'s layout), in the same
/// <see cref="AFragments"/> (tile m's a0..a3 as MmR0..MmR3) and <see cref="BFragments"/> (tile n's b0, b1 as NnR0, NnR1).
/// The mma's 16 k indices are the tile's 16 depths in another order, the same for A and B (a sum over k is the same sum in any
/// order of its terms): k = 2t is depth t, 2t + 1 is t + 4, 2t + 8 is t + 8, 2t + 9 is t + 12. So a lane reads exactly the TF32
/// fragments of the tile's two 8-deep steps (row or column g, depths t, t + 4, t + 8, t + 12: bank 20g + t + const mod 32, 32
/// distinct banks, no conflict, 48 4-byte reads per tile) and packs pairs of them. Reading the ISA's own depths instead, pairs
/// (2t, 2t + 1) at Ld = 20, would conflict: 20g + 2t mod 32 takes 16 banks, a 2-way conflict for each 4-byte read; one 8-byte
/// read per pair (24 per tile) still meets a 2-way conflict in each half-warp (rows 0 and 3 share banks 0..3, rows 4 and 7
/// banks 16..19), 4 wavefronts a read, twice the conflict-free 48; Ld = 24 would free the 8-byte read but conflict TF32's
/// 4-byte ones (rows g and g + 4), and no Ld of 4 x odd frees both.
/// A value staged by <see cref="Bf16Rounding"/> is a bf16 value in fp32 (its low 16 bits 0; a NaN quiet, so its top half is a
/// NaN too): its bf16 bits are its top 16, so packing two is one byte permute.
/// </summary>
internal static class Bf16Fragments
{
    /// <summary>The A registers of the tile from the fragments of its steps at depth 0 (<paramref name="f0"/>) and 8 (<paramref name="f8"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static AFragments A(AFragments f0, AFragments f8)
    {
        AFragments r;
        r.M0R0 = Pack(f0.M0R0, f0.M0R2); r.M0R1 = Pack(f0.M0R1, f0.M0R3); r.M0R2 = Pack(f8.M0R0, f8.M0R2); r.M0R3 = Pack(f8.M0R1, f8.M0R3);
        r.M1R0 = Pack(f0.M1R0, f0.M1R2); r.M1R1 = Pack(f0.M1R1, f0.M1R3); r.M1R2 = Pack(f8.M1R0, f8.M1R2); r.M1R3 = Pack(f8.M1R1, f8.M1R3);
        r.M2R0 = Pack(f0.M2R0, f0.M2R2); r.M2R1 = Pack(f0.M2R1, f0.M2R3); r.M2R2 = Pack(f8.M2R0, f8.M2R2); r.M2R3 = Pack(f8.M2R1, f8.M2R3);
        r.M3R0 = Pack(f0.M3R0, f0.M3R2); r.M3R1 = Pack(f0.M3R1, f0.M3R3); r.M3R2 = Pack(f8.M3R0, f8.M3R2); r.M3R3 = Pack(f8.M3R1, f8.M3R3);
        return r;
    }

    /// <summary>The B registers of the tile from the fragments of its steps at depth 0 and 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BFragments B(BFragments f0, BFragments f8)
    {
        BFragments r;
        r.N0R0 = Pack(f0.N0R0, f0.N0R1); r.N0R1 = Pack(f8.N0R0, f8.N0R1);
        r.N1R0 = Pack(f0.N1R0, f0.N1R1); r.N1R1 = Pack(f8.N1R0, f8.N1R1);
        r.N2R0 = Pack(f0.N2R0, f0.N2R1); r.N2R1 = Pack(f8.N2R0, f8.N2R1);
        r.N3R0 = Pack(f0.N3R0, f0.N3R1); r.N3R1 = Pack(f8.N3R0, f8.N3R1);
        return r;
    }

    /// <summary>Two bf16-rounded values' bf16 bits in one register: <paramref name="lower"/> (the lower k) in the low half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Pack(uint lower, uint upper) => (lower >> 16) | (upper & 0xffff0000u);

    /// <summary>The bf16 in the low 16 bits (the lower k) as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Lo(uint v) => BitConverter.Int32BitsToSingle((int)(v << 16));

    /// <summary>The bf16 in the high 16 bits (the higher k) as fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Hi(uint v) => BitConverter.Int32BitsToSingle((int)(v & 0xffff0000u));
}

/// <summary>
/// bf16 on the tensor cores (CUDA compute capability 8.0 and later only): values rounded as cvt.rn.bf16.f32 (<see cref="Bf16Rounding"/>),
/// a 16-deep tile as one step of 16 mma.sync m16n8k16 bf16 (<see cref="TensorCoreMmaBf16"/>), one per m16n8 tile of the warp's
/// 4 x 4, on the registers <see cref="Bf16Fragments"/> packs.
/// </summary>
internal struct TensorCoreWarpMmaBf16 : IStagedMma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x) => default(Bf16Rounding).Round(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(ref WarpTile acc, ArrayView<float> at, ArrayView<float> bt) =>
        Step(ref acc, Bf16Fragments.A(TensorCoreGemmKernels.FragmentsA(at, 0), TensorCoreGemmKernels.FragmentsA(at, 8)),
            Bf16Fragments.B(TensorCoreGemmKernels.FragmentsB(bt, 0), TensorCoreGemmKernels.FragmentsB(bt, 8)));

    /// <summary>acc (4 x 4 m16n8 tiles) += A (64 x 16, packed registers a) . B (16 x 32, packed registers b).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref WarpTile acc, AFragments a, BFragments b)
    {
        TensorCoreMmaBf16 m = default;
        m.Mma(ref acc.C00, a.M0R0, a.M0R1, a.M0R2, a.M0R3, b.N0R0, b.N0R1); m.Mma(ref acc.C01, a.M0R0, a.M0R1, a.M0R2, a.M0R3, b.N1R0, b.N1R1);
        m.Mma(ref acc.C02, a.M0R0, a.M0R1, a.M0R2, a.M0R3, b.N2R0, b.N2R1); m.Mma(ref acc.C03, a.M0R0, a.M0R1, a.M0R2, a.M0R3, b.N3R0, b.N3R1);
        m.Mma(ref acc.C10, a.M1R0, a.M1R1, a.M1R2, a.M1R3, b.N0R0, b.N0R1); m.Mma(ref acc.C11, a.M1R0, a.M1R1, a.M1R2, a.M1R3, b.N1R0, b.N1R1);
        m.Mma(ref acc.C12, a.M1R0, a.M1R1, a.M1R2, a.M1R3, b.N2R0, b.N2R1); m.Mma(ref acc.C13, a.M1R0, a.M1R1, a.M1R2, a.M1R3, b.N3R0, b.N3R1);
        m.Mma(ref acc.C20, a.M2R0, a.M2R1, a.M2R2, a.M2R3, b.N0R0, b.N0R1); m.Mma(ref acc.C21, a.M2R0, a.M2R1, a.M2R2, a.M2R3, b.N1R0, b.N1R1);
        m.Mma(ref acc.C22, a.M2R0, a.M2R1, a.M2R2, a.M2R3, b.N2R0, b.N2R1); m.Mma(ref acc.C23, a.M2R0, a.M2R1, a.M2R2, a.M2R3, b.N3R0, b.N3R1);
        m.Mma(ref acc.C30, a.M3R0, a.M3R1, a.M3R2, a.M3R3, b.N0R0, b.N0R1); m.Mma(ref acc.C31, a.M3R0, a.M3R1, a.M3R2, a.M3R3, b.N1R0, b.N1R1);
        m.Mma(ref acc.C32, a.M3R0, a.M3R1, a.M3R2, a.M3R3, b.N2R0, b.N2R1); m.Mma(ref acc.C33, a.M3R0, a.M3R1, a.M3R2, a.M3R3, b.N3R0, b.N3R1);
    }
}

/// <summary>
/// bf16 emulated with warp shuffles, for a 32-lane warp on any device (the CPU accelerator with 32 threads per warp in the
/// tests), on the same packed registers as <see cref="TensorCoreWarpMmaBf16"/>: for each q &lt; 4 a lane fetches the whole A
/// register set of lane 4g + q (A(., 2q..2q+1), A(., 2q+8..2q+9) of its rows) and the B register sets of lanes 4(2t) + q and
/// 4(2t + 1) + q (B(2q..2q+1, .), B(2q+8..2q+9, .) of its columns 2t, 2t + 1), as <see cref="TensorCoreMmaBf16"/>'s layout
/// places them, unpacks each half and adds the products in fp32 (k order 2q, 2q + 1, 2q + 8, 2q + 9; a product of two bf16
/// values is exact in fp32). Three struct shuffles per q, 12 per 16-deep tile (not per mma tile: the CPU accelerator's shuffle
/// is a warp barrier). The tensor cores' own summation order may differ by rounding.
/// </summary>
internal struct ShuffleWarpMmaBf16 : IStagedMma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x) => default(Bf16Rounding).Round(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(ref WarpTile acc, ArrayView<float> at, ArrayView<float> bt) =>
        Step(ref acc, Bf16Fragments.A(TensorCoreGemmKernels.FragmentsA(at, 0), TensorCoreGemmKernels.FragmentsA(at, 8)),
            Bf16Fragments.B(TensorCoreGemmKernels.FragmentsB(bt, 0), TensorCoreGemmKernels.FragmentsB(bt, 8)));

    /// <summary>The 16 m16n8k16 mma of <see cref="TensorCoreWarpMmaBf16.Step"/> on packed registers, emulated (see the struct).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref WarpTile acc, AFragments a, BFragments b)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        for (int q = 0; q < 4; q++)
        {
            AFragments x = Warp.Shuffle(a, 4 * g + q);           // A(16m + g, 2q..) = R0, (16m + g + 8, 2q..) = R1, (16m + g, 2q + 8..) = R2, (16m + g + 8, 2q + 8..) = R3
            BFragments l = Warp.Shuffle(b, 4 * (2 * t) + q);     // B(2q.., 8n + 2t) = R0, B(2q + 8.., 8n + 2t) = R1
            BFragments r = Warp.Shuffle(b, 4 * (2 * t + 1) + q); // B(2q.., 8n + 2t + 1), B(2q + 8.., 8n + 2t + 1)
            Accumulate(ref acc.C00, x.M0R0, x.M0R1, x.M0R2, x.M0R3, l.N0R0, l.N0R1, r.N0R0, r.N0R1);
            Accumulate(ref acc.C01, x.M0R0, x.M0R1, x.M0R2, x.M0R3, l.N1R0, l.N1R1, r.N1R0, r.N1R1);
            Accumulate(ref acc.C02, x.M0R0, x.M0R1, x.M0R2, x.M0R3, l.N2R0, l.N2R1, r.N2R0, r.N2R1);
            Accumulate(ref acc.C03, x.M0R0, x.M0R1, x.M0R2, x.M0R3, l.N3R0, l.N3R1, r.N3R0, r.N3R1);
            Accumulate(ref acc.C10, x.M1R0, x.M1R1, x.M1R2, x.M1R3, l.N0R0, l.N0R1, r.N0R0, r.N0R1);
            Accumulate(ref acc.C11, x.M1R0, x.M1R1, x.M1R2, x.M1R3, l.N1R0, l.N1R1, r.N1R0, r.N1R1);
            Accumulate(ref acc.C12, x.M1R0, x.M1R1, x.M1R2, x.M1R3, l.N2R0, l.N2R1, r.N2R0, r.N2R1);
            Accumulate(ref acc.C13, x.M1R0, x.M1R1, x.M1R2, x.M1R3, l.N3R0, l.N3R1, r.N3R0, r.N3R1);
            Accumulate(ref acc.C20, x.M2R0, x.M2R1, x.M2R2, x.M2R3, l.N0R0, l.N0R1, r.N0R0, r.N0R1);
            Accumulate(ref acc.C21, x.M2R0, x.M2R1, x.M2R2, x.M2R3, l.N1R0, l.N1R1, r.N1R0, r.N1R1);
            Accumulate(ref acc.C22, x.M2R0, x.M2R1, x.M2R2, x.M2R3, l.N2R0, l.N2R1, r.N2R0, r.N2R1);
            Accumulate(ref acc.C23, x.M2R0, x.M2R1, x.M2R2, x.M2R3, l.N3R0, l.N3R1, r.N3R0, r.N3R1);
            Accumulate(ref acc.C30, x.M3R0, x.M3R1, x.M3R2, x.M3R3, l.N0R0, l.N0R1, r.N0R0, r.N0R1);
            Accumulate(ref acc.C31, x.M3R0, x.M3R1, x.M3R2, x.M3R3, l.N1R0, l.N1R1, r.N1R0, r.N1R1);
            Accumulate(ref acc.C32, x.M3R0, x.M3R1, x.M3R2, x.M3R3, l.N2R0, l.N2R1, r.N2R0, r.N2R1);
            Accumulate(ref acc.C33, x.M3R0, x.M3R1, x.M3R2, x.M3R3, l.N3R0, l.N3R1, r.N3R0, r.N3R1);
        }
    }

    // k 2q, 2q + 1, 2q + 8, 2q + 9 of one m16n8 tile: c0 (g, 2t) += A(g, .) B(., 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Accumulate(ref MmaAccumulator c, uint top, uint low, uint top8, uint low8, uint left, uint left8, uint right, uint right8)
    {
        c.C0 += Bf16Fragments.Lo(top) * Bf16Fragments.Lo(left); c.C1 += Bf16Fragments.Lo(top) * Bf16Fragments.Lo(right);
        c.C2 += Bf16Fragments.Lo(low) * Bf16Fragments.Lo(left); c.C3 += Bf16Fragments.Lo(low) * Bf16Fragments.Lo(right);
        c.C0 += Bf16Fragments.Hi(top) * Bf16Fragments.Hi(left); c.C1 += Bf16Fragments.Hi(top) * Bf16Fragments.Hi(right);
        c.C2 += Bf16Fragments.Hi(low) * Bf16Fragments.Hi(left); c.C3 += Bf16Fragments.Hi(low) * Bf16Fragments.Hi(right);
        c.C0 += Bf16Fragments.Lo(top8) * Bf16Fragments.Lo(left8); c.C1 += Bf16Fragments.Lo(top8) * Bf16Fragments.Lo(right8);
        c.C2 += Bf16Fragments.Lo(low8) * Bf16Fragments.Lo(left8); c.C3 += Bf16Fragments.Lo(low8) * Bf16Fragments.Lo(right8);
        c.C0 += Bf16Fragments.Hi(top8) * Bf16Fragments.Hi(left8); c.C1 += Bf16Fragments.Hi(top8) * Bf16Fragments.Hi(right8);
        c.C2 += Bf16Fragments.Hi(low8) * Bf16Fragments.Hi(left8); c.C3 += Bf16Fragments.Hi(low8) * Bf16Fragments.Hi(right8);
    }
}
