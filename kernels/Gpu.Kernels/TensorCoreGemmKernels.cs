using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Gpu.Kernels;

/// <summary>
/// The 16x8 accumulator fragment of one m16n8k8 mma, as one lane holds it: (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1)
/// with g = lane / 4, t = lane % 4.
/// </summary>
internal struct MmaAccumulator
{
    public float C0, C1, C2, C3;
}

/// <summary>One warp-wide m16n8k8 TF32 mma: acc += A (16x8, this lane's fragments a0..a3) . B (8x8, fragments b0, b1), every lane of the warp together.</summary>
internal interface IMmaTf32
{
    void Mma(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1);
}

/// <summary>The mma on the tensor cores: PTX mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 through ILGPU's inline PTX (CUDA only).</summary>
internal struct TensorCoreMma : IMmaTf32
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mma(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        Output<float> d0 = default, d1 = default, d2 = default, d3 = default;
        Input<uint> x0 = a0, x1 = a1, x2 = a2, x3 = a3, y0 = b0, y1 = b1;
        Input<float> z0 = acc.C0, z1 = acc.C1, z2 = acc.C2, z3 = acc.C3;
        CudaAsm.EmitRef("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};",
            ref d0, ref d1, ref d2, ref d3, ref x0, ref x1, ref x2, ref x3, ref y0, ref y1, ref z0, ref z1, ref z2, ref z3);
        acc.C0 = d0.Value; acc.C1 = d1.Value; acc.C2 = d2.Value; acc.C3 = d3.Value;
    }
}

/// <summary>
/// The same mma emulated with warp shuffles, for a 32-lane warp on any device (the CPU accelerator with 32 threads per warp in
/// the tests): each lane gathers the A and B elements of its four outputs from the lanes that hold them, as PTX's fragment
/// layout places them (A: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4); B: b0 (k=t, n=g), b1 (k=t+4, n=g)), and adds
/// their products to its accumulators in k order, in fp32. It checks the kernel's tiling, fragments and epilogues without a GPU;
/// the tensor cores' own summation order may differ by rounding.
/// </summary>
internal struct ShuffleMma : IMmaTf32
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mma(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        for (int k = 0; k < 8; k++)
        {
            int q = k & 3;
            // every lane shuffles every register, so all 32 take part in each shuffle; each keeps the one its k needs
            float top0 = Bits(Warp.Shuffle(a0, g * 4 + q)), top2 = Bits(Warp.Shuffle(a2, g * 4 + q));
            float low1 = Bits(Warp.Shuffle(a1, g * 4 + q)), low3 = Bits(Warp.Shuffle(a3, g * 4 + q));
            float left0 = Bits(Warp.Shuffle(b0, 2 * t * 4 + q)), left1 = Bits(Warp.Shuffle(b1, 2 * t * 4 + q));
            float right0 = Bits(Warp.Shuffle(b0, (2 * t + 1) * 4 + q)), right1 = Bits(Warp.Shuffle(b1, (2 * t + 1) * 4 + q));
            float aTop = k < 4 ? top0 : top2, aLow = k < 4 ? low1 : low3;   // A(g, k), A(g + 8, k)
            float bLeft = k < 4 ? left0 : left1, bRight = k < 4 ? right0 : right1;   // B(k, 2t), B(k, 2t + 1)
            acc.C0 += aTop * bLeft; acc.C1 += aTop * bRight;
            acc.C2 += aLow * bLeft; acc.C3 += aLow * bRight;
        }
    }

    static float Bits(uint v) => BitConverter.Int32BitsToSingle((int)v);
}

/// <summary>
/// TF32 products on NVIDIA tensor cores (compute capability 8.0 and later) through ILGPU's inline PTX, in the strided form of
/// <see cref="TiledGemmKernels"/>: C[i,j] = epilogue(sum_p tf32(A(i,p)) tf32(B(j,p))), A(i,p) = a[i*aRow + p*aCol],
/// B(j,p) = b[j*bRow + p*bCol], C [rows, cols] row-major, sums in fp32, the <see cref="Epilogue"/>s of the tiled kernel
/// (the row sums over unrounded A). Each input is rounded as cvt.rna.tf32.f32 rounds it (<see cref="Tf32Rounding"/>) and
/// handed to mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (<see cref="TensorCoreMma"/>), or to its warp-shuffle emulation
/// (<see cref="ShuffleMma"/>), which runs the same kernel on a CPU accelerator with 32-lane warps. A group of 4 warps computes a 64x64 block of C, each warp
/// 32x32 (2 x 4 mma tiles, 8 mma per 8-deep step), its fragments loaded straight from global memory (no shared-memory
/// staging yet: a first tensor-core family, correct before fast). Any shape: loads outside the matrices read 0, stores
/// outside are skipped. Launch with a grid of (ceil(cols / 64), ceil(rows / 64)) groups of 128 threads.
/// </summary>
internal static class TensorCoreGemmKernels
{
    /// <summary>Rows and columns of C per group; threads per group (4 warps of 32).</summary>
    public const int Block = 64, Threads = 128;

    // C[rows,cols] = epilogue(sum_p tf32(A(i,p)) tf32(B(j,p))) over p < depth on tensor cores; see the class comment for the strides and layout.
    public static void Gemm<TMma>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux,
        int rows, int cols, int depth, int aRow, int aCol, int bRow, int bCol, int epilogue, int act) where TMma : struct, IMmaTf32
    {
        int lane = Group.IdxX & 31, warp = Group.IdxX >> 5;
        int g = lane >> 2, t = lane & 3;
        int r0 = Grid.IdxY * Block + (warp >> 1) * 32 + g;   // this lane's first A row: m tile 0 rows r0, r0 + 8; tile 1 r0 + 16, r0 + 24
        int n0 = Grid.IdxX * Block + (warp & 1) * 32 + g;    // this lane's first B row (C column): n tile u at n0 + 8u
        MmaAccumulator c00 = default, c01 = default, c02 = default, c03 = default, c10 = default, c11 = default, c12 = default, c13 = default;
        for (int p = t; p < depth + t; p += 8)   // p: this lane's k index in the step (k0 + t); its second is p + 4
        {
            uint a00 = Load(a, r0, p, rows, depth, aRow, aCol), a01 = Load(a, r0 + 8, p, rows, depth, aRow, aCol);
            uint a02 = Load(a, r0, p + 4, rows, depth, aRow, aCol), a03 = Load(a, r0 + 8, p + 4, rows, depth, aRow, aCol);
            uint a10 = Load(a, r0 + 16, p, rows, depth, aRow, aCol), a11 = Load(a, r0 + 24, p, rows, depth, aRow, aCol);
            uint a12 = Load(a, r0 + 16, p + 4, rows, depth, aRow, aCol), a13 = Load(a, r0 + 24, p + 4, rows, depth, aRow, aCol);
            uint b00 = Load(b, n0, p, cols, depth, bRow, bCol), b01 = Load(b, n0, p + 4, cols, depth, bRow, bCol);
            uint b10 = Load(b, n0 + 8, p, cols, depth, bRow, bCol), b11 = Load(b, n0 + 8, p + 4, cols, depth, bRow, bCol);
            uint b20 = Load(b, n0 + 16, p, cols, depth, bRow, bCol), b21 = Load(b, n0 + 16, p + 4, cols, depth, bRow, bCol);
            uint b30 = Load(b, n0 + 24, p, cols, depth, bRow, bCol), b31 = Load(b, n0 + 24, p + 4, cols, depth, bRow, bCol);
            Mma<TMma>(ref c00, a00, a01, a02, a03, b00, b01); Mma<TMma>(ref c01, a00, a01, a02, a03, b10, b11);
            Mma<TMma>(ref c02, a00, a01, a02, a03, b20, b21); Mma<TMma>(ref c03, a00, a01, a02, a03, b30, b31);
            Mma<TMma>(ref c10, a10, a11, a12, a13, b00, b01); Mma<TMma>(ref c11, a10, a11, a12, a13, b10, b11);
            Mma<TMma>(ref c12, a10, a11, a12, a13, b20, b21); Mma<TMma>(ref c13, a10, a11, a12, a13, b30, b31);
        }
        int i0 = r0, j0 = n0 - g + 2 * t;   // accumulator rows i0 (+8) of m tile 0, i0 + 16 (+8) of tile 1; columns j0, j0 + 1 of n tile 0, + 8u of tile u
        Store(c, aux, c00, i0, j0, rows, cols, epilogue, act); Store(c, aux, c01, i0, j0 + 8, rows, cols, epilogue, act);
        Store(c, aux, c02, i0, j0 + 16, rows, cols, epilogue, act); Store(c, aux, c03, i0, j0 + 24, rows, cols, epilogue, act);
        Store(c, aux, c10, i0 + 16, j0, rows, cols, epilogue, act); Store(c, aux, c11, i0 + 16, j0 + 8, rows, cols, epilogue, act);
        Store(c, aux, c12, i0 + 16, j0 + 16, rows, cols, epilogue, act); Store(c, aux, c13, i0 + 16, j0 + 24, rows, cols, epilogue, act);
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

    /// <summary>A(i, p) rounded to TF32, as the bits the mma takes; 0 outside [0, limit) x [0, depth).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Load(ArrayView<float> m, int i, int p, int limit, int depth, int stride, int step)
    {
        float v = i < limit && p < depth ? m[(long)i * stride + (long)p * step] : 0f;
        return (uint)BitConverter.SingleToInt32Bits(default(Tf32Rounding).Round(v));
    }

    /// <summary>acc += A (16x8, fragments a0..a3) . B (8x8, fragments b0, b1): on the tensor cores, or emulated (<typeparamref name="TMma"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Mma<TMma>(ref MmaAccumulator acc, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) where TMma : struct, IMmaTf32 =>
        default(TMma).Mma(ref acc, a0, a1, a2, a3, b0, b1);

    /// <summary>The lane's four outputs of one accumulator: (i, j), (i, j + 1), (i + 8, j), (i + 8, j + 1), each through the epilogue.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store(ArrayView<float> c, ArrayView<float> aux, MmaAccumulator v, int i, int j, int rows, int cols, int epilogue, int act)
    {
        Put(c, aux, v.C0, i, j, rows, cols, epilogue, act);
        Put(c, aux, v.C1, i, j + 1, rows, cols, epilogue, act);
        Put(c, aux, v.C2, i + 8, j, rows, cols, epilogue, act);
        Put(c, aux, v.C3, i + 8, j + 1, rows, cols, epilogue, act);
    }

    static void Put(ArrayView<float> c, ArrayView<float> aux, float v, int i, int j, int rows, int cols, int epilogue, int act)
    {
        if (i >= rows || j >= cols) return;
        long e = (long)i * cols + j;
        if (epilogue == Epilogue.BiasAct) c[e] = Activations.Apply(v + aux[j], act);
        else if (epilogue == Epilogue.ActBackprop) c[e] = Activations.Backprop(v, aux[e], act);
        else c[e] = v;
    }

    /// <summary>Launch shape for C[rows, cols].</summary>
    public static KernelConfig Config(int rows, int cols) =>
        new(new Index2D((cols + Block - 1) / Block, (rows + Block - 1) / Block), new Index2D(Threads, 1));
}
