using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Gpu.Kernels;

/// <summary>
/// One warp-wide m16n8k16 bf16 mma: acc += A (16x16) . B (16x8), every lane of the warp together. Each register holds two bf16
/// values, the lower-indexed one in the low 16 bits. With g = lane / 4, t = lane % 4 (PTX ISA, "Matrix Fragments for
/// mma.m16n8k16 with floating point type", .bf16 A: row g for a0, a1, a4, a5, g + 8 for the others, column 2t + (i &amp; 1),
/// + 8 for a4..a7; B: row (k) 2t + (i &amp; 1), + 8 for b2, b3, column (n) g; C: as m16n8k8, <see cref="MmaAccumulator"/>):
/// a0 = A(g, 2t..2t+1), a1 = A(g+8, 2t..2t+1), a2 = A(g, 2t+8..2t+9), a3 = A(g+8, 2t+8..2t+9); b0 = B(2t..2t+1, g), b1 = B(2t+8..2t+9, g).
/// </summary>
internal interface IMmaBf16
{
    void Mma(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1);
}

/// <summary>The mma on the tensor cores: PTX mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 through ILGPU's inline PTX (CUDA only).</summary>
internal struct TensorCoreMmaBf16 : IMmaBf16
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
/// The same mma emulated with warp shuffles, for a 32-lane warp on any device (the CPU accelerator with 32 threads per warp in
/// the tests): for each pair of k indices (k, k + 1) each lane fetches the registers holding A(g, k..k+1), A(g + 8, k..k+1),
/// B(k..k+1, 2t) and B(k..k+1, 2t + 1) from the lanes that hold them (<see cref="IMmaBf16"/>'s layout: lane 4g + (k % 8) / 2,
/// a0/a1 and b0 for k &lt; 8, a2/a3 and b1 above) and adds the products to its accumulators in k order, in fp32 (a product of
/// two bf16 values is exact in fp32). The tensor cores' own summation order may differ by rounding.
/// </summary>
internal struct ShuffleMmaBf16 : IMmaBf16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mma(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        for (int k = 0; k < 16; k += 2)
        {
            int q = (k & 7) >> 1;   // the t of the lanes holding k and k + 1
            // every lane shuffles the same registers, so all 32 take part in each shuffle
            uint top = Warp.Shuffle(k < 8 ? a0 : a2, g * 4 + q), low = Warp.Shuffle(k < 8 ? a1 : a3, g * 4 + q);   // A(g, k..k+1), A(g+8, k..k+1)
            uint left = Warp.Shuffle(k < 8 ? b0 : b1, 2 * t * 4 + q), right = Warp.Shuffle(k < 8 ? b0 : b1, (2 * t + 1) * 4 + q);   // B(k..k+1, 2t), B(k..k+1, 2t+1)
            acc.C0 += Lo(top) * Lo(left); acc.C1 += Lo(top) * Lo(right);
            acc.C2 += Lo(low) * Lo(left); acc.C3 += Lo(low) * Lo(right);
            acc.C0 += Hi(top) * Hi(left); acc.C1 += Hi(top) * Hi(right);
            acc.C2 += Hi(low) * Hi(left); acc.C3 += Hi(low) * Hi(right);
        }
    }

    /// <summary>The bf16 in the low 16 bits (element k) as fp32.</summary>
    static float Lo(uint v) => BitConverter.Int32BitsToSingle((int)(v << 16));

    /// <summary>The bf16 in the high 16 bits (element k + 1) as fp32.</summary>
    static float Hi(uint v) => BitConverter.Int32BitsToSingle((int)(v & 0xffff0000u));
}

/// <summary>
/// bf16 products on NVIDIA tensor cores (compute capability 8.0 and later) through ILGPU's inline PTX, in the strided form of
/// <see cref="TensorCoreGemmKernels"/>: C[i,j] = epilogue(sum_p bf16(A(i,p)) bf16(B(j,p))), A(i,p) = a[i*aRow + p*aCol],
/// B(j,p) = b[j*bRow + p*bCol], C [rows, cols] row-major, sums in fp32, the <see cref="Epilogue"/>s of the tiled kernel (the row
/// sums over unrounded A). Each input is rounded as cvt.rn.bf16.f32 rounds it (<see cref="Bf16Rounding"/>), packed two to a
/// register and handed to mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 (<see cref="TensorCoreMmaBf16"/>), or to its
/// warp-shuffle emulation (<see cref="ShuffleMmaBf16"/>). The tiling of the TF32 kernel: a group of 4 warps computes a 64x64
/// block of C, each warp 32x32 (2 x 4 mma tiles, 8 mma per 16-deep step), fragments loaded straight from global memory. Any
/// shape: loads outside the matrices read 0, stores outside are skipped. Launch with <see cref="Config"/>: a grid of
/// (ceil(cols / 64), ceil(rows / 64)) groups of 128 threads.
/// </summary>
internal static class TensorCoreBf16GemmKernels
{
    /// <summary>Rows and columns of C per group; threads per group (4 warps of 32).</summary>
    public const int Block = 64, Threads = 128;

    // C[rows,cols] = epilogue(sum_p bf16(A(i,p)) bf16(B(j,p))) over p < depth on tensor cores; see the class comment for the strides and layout.
    public static void Gemm<TMma>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux,
        int rows, int cols, int depth, int aRow, int aCol, int bRow, int bCol, int epilogue, int act) where TMma : struct, IMmaBf16
    {
        int lane = Group.IdxX & 31, warp = Group.IdxX >> 5;
        int g = lane >> 2, t = lane & 3;
        int r0 = Grid.IdxY * Block + (warp >> 1) * 32 + g;   // this lane's first A row: m tile 0 rows r0, r0 + 8; tile 1 r0 + 16, r0 + 24
        int n0 = Grid.IdxX * Block + (warp & 1) * 32 + g;    // this lane's first B row (C column): n tile u at n0 + 8u
        MmaAccumulator c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        for (int p = 2 * t; p < depth + 2 * t; p += 16)   // p: this lane's first k index in the step (k0 + 2t); its pairs (p, p + 1), (p + 8, p + 9)
        {
            uint a00 = Pair(a, r0, p, rows, depth, aRow, aCol), a01 = Pair(a, r0 + 8, p, rows, depth, aRow, aCol);
            uint a02 = Pair(a, r0, p + 8, rows, depth, aRow, aCol), a03 = Pair(a, r0 + 8, p + 8, rows, depth, aRow, aCol);
            uint a10 = Pair(a, r0 + 16, p, rows, depth, aRow, aCol), a11 = Pair(a, r0 + 24, p, rows, depth, aRow, aCol);
            uint a12 = Pair(a, r0 + 16, p + 8, rows, depth, aRow, aCol), a13 = Pair(a, r0 + 24, p + 8, rows, depth, aRow, aCol);
            uint b00 = Pair(b, n0, p, cols, depth, bRow, bCol), b01 = Pair(b, n0, p + 8, cols, depth, bRow, bCol);
            uint b10 = Pair(b, n0 + 8, p, cols, depth, bRow, bCol), b11 = Pair(b, n0 + 8, p + 8, cols, depth, bRow, bCol);
            uint b20 = Pair(b, n0 + 16, p, cols, depth, bRow, bCol), b21 = Pair(b, n0 + 16, p + 8, cols, depth, bRow, bCol);
            uint b30 = Pair(b, n0 + 24, p, cols, depth, bRow, bCol), b31 = Pair(b, n0 + 24, p + 8, cols, depth, bRow, bCol);
            Mma<TMma>(ref c00, a00, a01, a02, a03, b00, b01); Mma<TMma>(ref c01, a00, a01, a02, a03, b10, b11);
            Mma<TMma>(ref c02, a00, a01, a02, a03, b20, b21); Mma<TMma>(ref c03, a00, a01, a02, a03, b30, b31);
            Mma<TMma>(ref c10, a10, a11, a12, a13, b00, b01); Mma<TMma>(ref c11, a10, a11, a12, a13, b10, b11);
            Mma<TMma>(ref c12, a10, a11, a12, a13, b20, b21); Mma<TMma>(ref c13, a10, a11, a12, a13, b30, b31);
        }
        int i0 = r0, j0 = n0 - g + 2 * t;   // accumulator rows i0 (+8) of m tile 0, i0 + 16 (+8) of tile 1; columns j0, j0 + 1 of n tile 0, + 8u of tile u
        TensorCoreGemmKernels.Store(c, aux, c00, i0, j0, rows, cols, epilogue, act); TensorCoreGemmKernels.Store(c, aux, c01, i0, j0 + 8, rows, cols, epilogue, act);
        TensorCoreGemmKernels.Store(c, aux, c02, i0, j0 + 16, rows, cols, epilogue, act); TensorCoreGemmKernels.Store(c, aux, c03, i0, j0 + 24, rows, cols, epilogue, act);
        TensorCoreGemmKernels.Store(c, aux, c10, i0 + 16, j0, rows, cols, epilogue, act); TensorCoreGemmKernels.Store(c, aux, c11, i0 + 16, j0 + 8, rows, cols, epilogue, act);
        TensorCoreGemmKernels.Store(c, aux, c12, i0 + 16, j0 + 16, rows, cols, epilogue, act); TensorCoreGemmKernels.Store(c, aux, c13, i0 + 16, j0 + 24, rows, cols, epilogue, act);
        if (epilogue == Epilogue.RowSums && Grid.IdxX == 0 && (warp & 1) == 0)
        {
            // the first column block's left warps: lane l sums its warp's row l of A over p, in order, unrounded (a reduction: fp32)
            int i = Grid.IdxY * Block + (warp >> 1) * 32 + lane;
            if (i < rows)
            {
                float s = 0f;
                for (int q = 0; q < depth; q++) s += a[(long)i * aRow + (long)q * aCol];
                aux[i] = s;
            }
        }
    }

    /// <summary>A(i, p) and A(i, p + 1) rounded to bf16 and packed into one register, A(i, p) in the low 16 bits; 0 outside [0, limit) x [0, depth).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Pair(ArrayView<float> m, int i, int p, int limit, int depth, int stride, int step) =>
        Half(Load(m, i, p, limit, depth, stride, step)) | (Half(Load(m, i, p + 1, limit, depth, stride, step)) << 16);

    /// <summary>A(i, p) rounded to bf16 (still an fp32 value: its low 16 bits are 0); 0 outside [0, limit) x [0, depth).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static float Load(ArrayView<float> m, int i, int p, int limit, int depth, int stride, int step) =>
        default(Bf16Rounding).Round(i < limit && p < depth ? m[(long)i * stride + (long)p * step] : 0f);

    /// <summary>The bf16 bits of a value already rounded to bf16: its top 16 bits; a NaN as bf16's quiet NaN (a NaN's top half alone may read as infinity).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Half(float v)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(v);
        return (bits & 0x7fffffffu) > 0x7f800000u ? 0x7fc0u : bits >> 16;
    }

    /// <summary>acc += A (16x16, fragments a0..a3) . B (16x8, fragments b0, b1): on the tensor cores, or emulated (<typeparamref name="TMma"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Mma<TMma>(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) where TMma : struct, IMmaBf16 =>
        default(TMma).Mma(ref acc, a0, a1, a2, a3, b0, b1);

    /// <summary>Launch shape for C[rows, cols].</summary>
    public static KernelConfig Config(int rows, int cols) =>
        new(new Index2D((cols + Block - 1) / Block, (rows + Block - 1) / Block), new Index2D(Threads, 1));
}
