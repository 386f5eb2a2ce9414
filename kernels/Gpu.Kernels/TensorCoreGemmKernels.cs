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

/// <summary>
/// One warp-wide m16n8k8 TF32 mma on the tensor cores, acc += A (16x8, this lane's fragments a0..a3) . B (8x8, fragments b0, b1),
/// every lane of the warp together: PTX mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 through ILGPU's inline PTX (CUDA only).
/// </summary>
internal struct TensorCoreMma
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
/// One lane's A fragments of a warp's 8-deep step over its four m16 tiles: tile m's a0..a3 (R0..R3) at rows 16m + g, 16m + g + 8
/// and depths t, t + 4 of the step (g = lane / 4, t = lane % 4), as TF32 bits; for bf16 the same registers hold a 16-deep
/// tile's m16n8k16 a0..a3, two values each (<see cref="Bf16Fragments"/>).
/// </summary>
internal struct AFragments
{
    public uint M0R0, M0R1, M0R2, M0R3, M1R0, M1R1, M1R2, M1R3, M2R0, M2R1, M2R2, M2R3, M3R0, M3R1, M3R2, M3R3;
}

/// <summary>One lane's B fragments of a warp's 8-deep step over its four n8 tiles: tile n's b0, b1 (R0, R1) at column 8n + g, depths t and t + 4 (bf16: m16n8k16's b0, b1, <see cref="Bf16Fragments"/>).</summary>
internal struct BFragments
{
    public uint N0R0, N0R1, N1R0, N1R1, N2R0, N2R1, N3R0, N3R1;
}

/// <summary>A warp's 64 x 32 block of C as 4 x 4 m16n8 accumulators: Cmn is m tile m (rows 16m ..), n tile n (columns 8n ..).</summary>
internal struct WarpTile
{
    public MmaAccumulator C00, C01, C02, C03, C10, C11, C12, C13, C20, C21, C22, C23, C30, C31, C32, C33;
}

/// <summary>
/// What the staged product (<see cref="TensorCoreGemmKernels.Gemm{TMma}"/>) does per precision, one struct per instance: how each
/// value is rounded once as it is staged into shared memory, and a warp's work on one 16-deep shared tile (acc += A (64 x 16) .
/// B (16 x 32), every lane of the warp together). Four instances: TF32 (<see cref="TensorCoreWarpMma"/>, <see cref="ShuffleWarpMma"/>)
/// and bf16 (<see cref="TensorCoreWarpMmaBf16"/>, <see cref="ShuffleWarpMmaBf16"/>), each on the tensor cores or emulated.
/// </summary>
internal interface IStagedMma
{
    /// <summary>A value as it is stored into the shared tile (and multiplied).</summary>
    float Round(float x);

    /// <summary>
    /// acc += the shared tile's A . B, from views starting at this lane's first fragment (A: row g of the warp's 64, depth t;
    /// B: column g of its 32, depth t; rows <see cref="TensorCoreGemmKernels.Ld"/> floats apart), g = lane / 4, t = lane % 4.
    /// </summary>
    void Tile(ref WarpTile acc, ArrayView<float> at, ArrayView<float> bt);
}

/// <summary>
/// TF32 on the tensor cores (CUDA compute capability 8.0 and later only): values rounded as cvt.rna.tf32.f32 (<see cref="Tf32Rounding"/>),
/// a tile as two 8-deep steps of 16 mma.sync m16n8k8 TF32 (<see cref="TensorCoreMma"/>), one per m16n8 tile of the warp's 4 x 4.
/// </summary>
internal struct TensorCoreWarpMma : IStagedMma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x) => default(Tf32Rounding).Round(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(ref WarpTile acc, ArrayView<float> at, ArrayView<float> bt)
    {
        Step(ref acc, TensorCoreGemmKernels.FragmentsA(at, 0), TensorCoreGemmKernels.FragmentsB(bt, 0));
        Step(ref acc, TensorCoreGemmKernels.FragmentsA(at, 8), TensorCoreGemmKernels.FragmentsB(bt, 8));
    }

    /// <summary>One 8-deep step: acc (4 x 4 m16n8 tiles) += A (64 x 8, fragments a) . B (8 x 32, fragments b).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref WarpTile acc, AFragments a, BFragments b)
    {
        TensorCoreMma m = default;
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
/// TF32 emulated with warp shuffles (values rounded as <see cref="TensorCoreWarpMma"/> rounds them; each 8-deep step), for a 32-lane warp on any device (the CPU accelerator with 32 threads per warp in
/// the tests): for each q &lt; 4 a lane fetches the whole A fragment set of lane 4g + q (A(., q) and A(., q + 4) of its rows) and
/// the B fragment sets of lanes 4(2t) + q and 4(2t + 1) + q (B(q, .) and B(q + 4, .) of its columns 2t, 2t + 1), as PTX's
/// fragment layout places them, and adds the products to its accumulators in fp32 (depth order 0, 4, 1, 5, 2, 6, 3, 7). Three
/// struct shuffles per q, 12 per step of 16 tiles (not per tile): the CPU accelerator's shuffle is a warp barrier. It checks
/// the kernel's staging, tiling, fragments and epilogues without a GPU; the tensor cores' own summation order may differ by rounding.
/// </summary>
internal struct ShuffleWarpMma : IStagedMma
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x) => default(Tf32Rounding).Round(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Tile(ref WarpTile acc, ArrayView<float> at, ArrayView<float> bt)
    {
        Step(ref acc, TensorCoreGemmKernels.FragmentsA(at, 0), TensorCoreGemmKernels.FragmentsB(bt, 0));
        Step(ref acc, TensorCoreGemmKernels.FragmentsA(at, 8), TensorCoreGemmKernels.FragmentsB(bt, 8));
    }

    /// <summary>One 8-deep step, emulated (see the struct).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Step(ref WarpTile acc, AFragments a, BFragments b)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        for (int q = 0; q < 4; q++)
        {
            AFragments x = Warp.Shuffle(a, 4 * g + q);           // A(16m + g, q) = R0, (16m + g + 8, q) = R1, (16m + g, q + 4) = R2, (16m + g + 8, q + 4) = R3
            BFragments l = Warp.Shuffle(b, 4 * (2 * t) + q);     // B(q, 8n + 2t) = R0, B(q + 4, 8n + 2t) = R1
            BFragments r = Warp.Shuffle(b, 4 * (2 * t + 1) + q); // B(q, 8n + 2t + 1), B(q + 4, 8n + 2t + 1)
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

    // depths q, then q + 4, of one m16n8 tile: c0 (g, 2t) += A(g, .) B(., 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Accumulate(ref MmaAccumulator c, uint top, uint low, uint top4, uint low4, uint left, uint left4, uint right, uint right4)
    {
        c.C0 += Bits(top) * Bits(left); c.C1 += Bits(top) * Bits(right);
        c.C2 += Bits(low) * Bits(left); c.C3 += Bits(low) * Bits(right);
        c.C0 += Bits(top4) * Bits(left4); c.C1 += Bits(top4) * Bits(right4);
        c.C2 += Bits(low4) * Bits(left4); c.C3 += Bits(low4) * Bits(right4);
    }

    static float Bits(uint v) => BitConverter.Int32BitsToSingle((int)v);
}

/// <summary>
/// One operand of the staged product as a group reads it: its view (also as Float4), orientation, read path and the rows of
/// A (columns of C for B) the group covers. A tile is 128 rows x 16 depths, read as 512 cells of four consecutive values along
/// the operand's contiguous dimension, two per thread, coalesced: along p (pStride 1: forward X and W, input-grad dZ) cell c is
/// row c / 4, depths 4 (c % 4) .. + 3 (four lanes read a row's 64 bytes); along the rows (rowStride 1: weight-grad dZ and H,
/// input-grad W) cell c is depth c % 16, rows 4 (c / 16) .. + 3 (a warp reads 16 depths' 32-byte runs, every sector whole).
/// </summary>
internal readonly struct StagedOperand(Operand source)
{
    /// <summary>The operand as the blocked kernel reads it (<see cref="Operand.Read"/>): its views, orientation, read path, rows and strides.</summary>
    public readonly Operand Source = source;

    /// <summary>Cell <paramref name="cell"/> of the tile starting at depth p0, unrounded; 0 outside [0, Extent) x [0, depth).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float4 Load(int cell, int p0, int depth)
    {
        int i, p;
        if (Source.AlongP) { i = Source.First + (cell >> 2); p = p0 + 4 * (cell & 3); }
        else { i = Source.First + 4 * (cell >> 4); p = p0 + (cell & 15); }
        return Source.Read(i, p, depth);
    }

    /// <summary>
    /// Cell <paramref name="cell"/>, rounded once as <typeparamref name="TMma"/> rounds it (TF32 or bf16), into the operand's shared tile [128][Ld] (row-major, Ld = 20) starting at
    /// float <paramref name="at"/>: along p one 16-byte store into its row; along the rows four stores down a column, each a
    /// warp-wide store to 32 distinct banks (a half-warp's 16 depths, the other half's rows 4 further: 80 floats, 16 banks on).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Store<TMma>(ArrayView<float> s, ArrayView<Float4> s4, int cell, int at, Float4 v) where TMma : struct, IStagedMma
    {
        TMma r = default;
        if (Source.AlongP) s4[(at + (cell >> 2) * TensorCoreGemmKernels.Ld + 4 * (cell & 3)) >> 2] = new Float4(r.Round(v.X), r.Round(v.Y), r.Round(v.Z), r.Round(v.W));
        else
        {
            int o = at + 4 * (cell >> 4) * TensorCoreGemmKernels.Ld + (cell & 15);
            s[o] = r.Round(v.X);
            s[o + TensorCoreGemmKernels.Ld] = r.Round(v.Y);
            s[o + 2 * TensorCoreGemmKernels.Ld] = r.Round(v.Z);
            s[o + 3 * TensorCoreGemmKernels.Ld] = r.Round(v.W);
        }
    }
}

/// <summary>
/// TF32 and bf16 products on NVIDIA tensor cores (compute capability 8.0 and later) through ILGPU's inline PTX, in the strided form of
/// <see cref="TiledGemmKernels"/>: C[i,j] = epilogue(sum_p r(A(i,p)) r(B(j,p))), r = tf32 or bf16, A(i,p) = a[i*aRow + p*aCol],
/// B(j,p) = b[j*bRow + p*bCol], C [rows, cols] row-major, sums in fp32, the <see cref="Epilogue"/>s of the tiled kernel
/// (the row sums over unrounded A).
///   forward   Y = X . W^T:   a = X[m,k] (aRow k, aCol 1),  b = W[n,k] (bRow k, bCol 1)  BiasAct
///   weight    dW = dZ^T . H: a = dZ[m,n] (aRow 1, aCol n), b = H[m,k] (bRow 1, bCol k)  None or RowSums (db)
///   input     dX = dZ . W:   a = dZ[m,n] (aRow n, aCol 1), b = W[n,k] (bRow 1, bCol k)  ActBackprop
/// A group of 256 threads (8 warps, 2 x 4) computes a 128 x 128 block of C, each warp 64 x 32 (4 x 4 m16n8 tiles), and
/// <typeparamref name="TMma"/> (<see cref="IStagedMma"/>) is the precision: TF32 two 8-deep steps of 16 m16n8k8 mma per tile
/// (<see cref="TensorCoreWarpMma"/>, emulated <see cref="ShuffleWarpMma"/>), bf16 one step of 16 m16n8k16 mma
/// (<see cref="TensorCoreWarpMmaBf16"/>, emulated <see cref="ShuffleWarpMmaBf16"/>). The contraction goes 16 deep at a time
/// through shared memory: the group reads a 128 x 16 tile of A and of B from global memory (coalesced, 16 bytes a read where
/// aligned, <see cref="StagedOperand"/>), rounds each value once (<see cref="Tf32Rounding"/> as cvt.rna, <see cref="Bf16Rounding"/>
/// as cvt.rn.bf16; stored as fp32) and stores it row-major with rows of Ld = 16 + 4 floats: a fragment read (row g, depth t
/// of a lane, both precisions: <see cref="Bf16Fragments"/>) then falls on bank 20g + t mod 32, 32 distinct banks. Two buffers (2 x 2 x 128 x 20 floats,
/// 40960 bytes): the next tile is read into registers while the current one is multiplied, one barrier per tile. Any shape:
/// reads outside the matrices give 0, stores outside are skipped; one summation order per shape (deterministic).
/// Split-K (Splits &gt; 1): split s = Grid.IdxY / ceil(rows/128) writes its raw partial sums to c = a workspace [Splits, rows, cols],
/// and <see cref="SplitKKernels.ReduceSplits"/> adds them in order and applies the epilogue (no atomics).
/// TF32, ptxas 11.8 -O3 on the O2 PTX: 122 registers (124 for sm_90), no stack frame, no spills (2 groups, 16 warps, per SM); per tile a warp's
/// inner block is 48 LDS + 32 HMMA.1688.F32.TF32 and about 20 other instructions.
/// Why not cp.async (benchmarks/RESULTS.md, 2026-12-05): ILGPU 1.5.3 does hand a shared-memory address to inline PTX (pinned by
/// PtxTests), but cp.async lands unrounded values (rounding them after costs the issue slots the register path spends), and its
/// gain, a deeper pipeline, needs more than the 48 KiB of shared memory per group that ILGPU 1.5.3 can ask for.
/// PREDICTION, not measured: per 16-deep tile a group reads 2 x 128 x 16 x 4 = 16 KiB (from L2) for 2 x 128 x 128 x 16 flops,
/// 32 flops per byte, so 150 TFLOP/s needs about 4.7 TB/s from L2 to the SMs; per warp and 8-deep step 24 conflict-free 4-byte
/// shared reads feed 16 mma (192 bytes of shared memory per mma). Expected 110-180 TFLOP/s at 4096^3 on an H200, bound by
/// L2 bandwidth and instruction issue; products of few blocks are split along the contraction (TensorCoreFamily.Split).
/// bf16 (PREDICTION, not measured): the same bytes and shared reads per tile, but 16 mma of twice the depth where TF32 issues 32;
/// the tensor cores' bf16 rate is twice TF32's, so the mma are no longer the bound: L2 and issue bound it as TF32 (the 24 packs
/// per tile add a little issue), expected about as fast as TF32 at 4096^3, not twice.
/// Launch with a grid of (ceil(cols / 128), ceil(rows / 128) * Splits) groups of 256 threads.
/// </summary>
internal static class TensorCoreGemmKernels
{
    /// <summary>Rows and columns of C per group; depths per shared tile; threads per group (8 warps of 32).</summary>
    public const int Block = 128, TileDepth = 16, Threads = 256;

    /// <summary>Floats per row of a shared tile (16 depths and 4 of padding); floats of one operand's tile; of one buffer (A then B).</summary>
    public const int Ld = TileDepth + 4, OperandFloats = Block * Ld, BufferFloats = 2 * OperandFloats;

    // C[rows,cols] = epilogue(sum_p r(A(i,p)) r(B(j,p))) over p < depth (r: TMma's rounding) on tensor cores, staged through shared memory
    // (or split s's raw partial sums into c[s, rows, cols]); see the class comment.
    public static void Gemm<TMma>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux, GemmArgs g)
        where TMma : struct, IStagedMma
    {
        // two buffers of [A: 128 x Ld][B: 128 x Ld] floats, as Float4 so that they start on a 16-byte boundary
        ArrayView<Float4> s4 = SharedMemory.Allocate1D<Float4>(2 * BufferFloats / 4);
        var s = s4.Cast<float>();
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5;
        int rowBlocks = (g.Rows + Block - 1) / Block;
        int split = Grid.IdxY / rowBlocks;
        int row0 = (Grid.IdxY - split * rowBlocks) * Block, col0 = Grid.IdxX * Block;
        int pBegin = split * g.SplitDepth, pEnd = Math.Min(g.Depth, pBegin + g.SplitDepth);
        int wm = (warp >> 2) * 64, wn = (warp & 3) * 32;   // the warp's first row and column inside the block
        int gq = lane >> 2, t = lane & 3;

        bool aAlongP = g.ACol == 1, bAlongP = g.BCol == 1;
        bool aVector = (g.Aligned & 1) != 0 && (aAlongP ? g.ARow % 4 == 0 && g.Depth % 4 == 0 : g.ARow == 1 && g.ACol % 4 == 0 && g.Rows % 4 == 0);
        bool bVector = (g.Aligned & 2) != 0 && (bAlongP ? g.BRow % 4 == 0 && g.Depth % 4 == 0 : g.BRow == 1 && g.BCol % 4 == 0 && g.Cols % 4 == 0);
        var opA = new StagedOperand(new Operand(a, a.Cast<Float4>(), aAlongP, aVector, row0, g.Rows, g.ARow, g.ACol));
        var opB = new StagedOperand(new Operand(b, b.Cast<Float4>(), bAlongP, bVector, col0, g.Cols, g.BRow, g.BCol));
        int tiles = pEnd > pBegin ? (pEnd - pBegin + TileDepth - 1) / TileDepth : 0;

        // iteration k: store tile k (read into registers during iteration k - 1) into buffer k & 1; barrier; read tile k + 1
        // into registers (its latency hidden behind the mma); multiply tile k. Buffer k & 1 was last read in iteration k - 2,
        // before the barrier of iteration k - 1, so one barrier per tile suffices. The mma come last in the body (ILGPU places
        // values next to their uses).
        Float4 a0 = default, a1 = default, b0 = default, b1 = default;
        if (tiles > 0)
        {
            a0 = opA.Load(tid, pBegin, pEnd); a1 = opA.Load(tid + Threads, pBegin, pEnd);
            b0 = opB.Load(tid, pBegin, pEnd); b1 = opB.Load(tid + Threads, pBegin, pEnd);
        }
        WarpTile acc = default;
        for (int k = 0; k < tiles; k++)
        {
            int buffer = (k & 1) * BufferFloats;
            opA.Store<TMma>(s, s4, tid, buffer, a0); opA.Store<TMma>(s, s4, tid + Threads, buffer, a1);
            opB.Store<TMma>(s, s4, tid, buffer + OperandFloats, b0); opB.Store<TMma>(s, s4, tid + Threads, buffer + OperandFloats, b1);
            Group.Barrier();
            int p0 = pBegin + (k + 1) * TileDepth;   // past pEnd in the last iteration: the reads give zeros, never stored
            a0 = opA.Load(tid, p0, pEnd); a1 = opA.Load(tid + Threads, p0, pEnd);
            b0 = opB.Load(tid, p0, pEnd); b1 = opB.Load(tid + Threads, p0, pEnd);
            // views starting at this lane's first fragment (row wm + g, depth t of A; column wn + g, depth t of B), so that
            // every fragment read is the view's start plus a constant
            int fa = buffer + (wm + gq) * Ld + t, fb = buffer + OperandFloats + (wn + gq) * Ld + t;
            var at = s.SubView(fa, 2 * BufferFloats - fa);
            var bt = s.SubView(fb, 2 * BufferFloats - fb);
            default(TMma).Tile(ref acc, at, bt);
        }

        int i0 = row0 + wm + gq, j0 = col0 + wn + 2 * t;   // accumulator rows i0 + 16m (+ 8) of m tile m, columns j0 + 8n (+ 1) of n tile n
        int e = g.Splits > 1 ? Epilogue.None : g.Epilogue;
        var o = c.SubView(g.Splits > 1 ? (long)split * g.Rows * g.Cols : 0, (long)g.Rows * g.Cols);   // C, or split's partial sums
        Store(o, aux, acc.C00, i0, j0, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C01, i0, j0 + 8, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C02, i0, j0 + 16, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C03, i0, j0 + 24, g.Rows, g.Cols, e, g.Act);
        Store(o, aux, acc.C10, i0 + 16, j0, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C11, i0 + 16, j0 + 8, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C12, i0 + 16, j0 + 16, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C13, i0 + 16, j0 + 24, g.Rows, g.Cols, e, g.Act);
        Store(o, aux, acc.C20, i0 + 32, j0, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C21, i0 + 32, j0 + 8, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C22, i0 + 32, j0 + 16, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C23, i0 + 32, j0 + 24, g.Rows, g.Cols, e, g.Act);
        Store(o, aux, acc.C30, i0 + 48, j0, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C31, i0 + 48, j0 + 8, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C32, i0 + 48, j0 + 16, g.Rows, g.Cols, e, g.Act); Store(o, aux, acc.C33, i0 + 48, j0 + 24, g.Rows, g.Cols, e, g.Act);
        if (e == Epilogue.RowSums && Grid.IdxX == 0 && tid < Block)
        {
            // the first column block: thread r sums the block's row r of A over p, in order, unrounded (a reduction: fp32)
            int i = row0 + tid;
            if (i < g.Rows)
            {
                float sum = 0f;
                for (int q = 0; q < g.Depth; q++) sum += a[(long)i * g.ARow + (long)q * g.ACol];
                aux[i] = sum;
            }
        }
    }

    /// <summary>The A fragments of the 8-deep step at depth k of the tile, from a view starting at this lane's row g, depth t.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static AFragments FragmentsA(ArrayView<float> at, int k)
    {
        AFragments f;
        f.M0R0 = Bits(at[k]); f.M0R1 = Bits(at[8 * Ld + k]); f.M0R2 = Bits(at[k + 4]); f.M0R3 = Bits(at[8 * Ld + k + 4]);
        f.M1R0 = Bits(at[16 * Ld + k]); f.M1R1 = Bits(at[24 * Ld + k]); f.M1R2 = Bits(at[16 * Ld + k + 4]); f.M1R3 = Bits(at[24 * Ld + k + 4]);
        f.M2R0 = Bits(at[32 * Ld + k]); f.M2R1 = Bits(at[40 * Ld + k]); f.M2R2 = Bits(at[32 * Ld + k + 4]); f.M2R3 = Bits(at[40 * Ld + k + 4]);
        f.M3R0 = Bits(at[48 * Ld + k]); f.M3R1 = Bits(at[56 * Ld + k]); f.M3R2 = Bits(at[48 * Ld + k + 4]); f.M3R3 = Bits(at[56 * Ld + k + 4]);
        return f;
    }

    /// <summary>The B fragments of the 8-deep step at depth k of the tile, from a view starting at this lane's column g, depth t.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static BFragments FragmentsB(ArrayView<float> bt, int k)
    {
        BFragments f;
        f.N0R0 = Bits(bt[k]); f.N0R1 = Bits(bt[k + 4]);
        f.N1R0 = Bits(bt[8 * Ld + k]); f.N1R1 = Bits(bt[8 * Ld + k + 4]);
        f.N2R0 = Bits(bt[16 * Ld + k]); f.N2R1 = Bits(bt[16 * Ld + k + 4]);
        f.N3R0 = Bits(bt[24 * Ld + k]); f.N3R1 = Bits(bt[24 * Ld + k + 4]);
        return f;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static uint Bits(float v) => (uint)BitConverter.SingleToInt32Bits(v);

    /// <summary>The lane's four outputs of one accumulator (C [rows, cols] row-major): (i, j), (i, j + 1), (i + 8, j), (i + 8, j + 1), each through the epilogue, inside C only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Store(ArrayView<float> c, ArrayView<float> aux, MmaAccumulator v, int i, int j, int rows, int cols, int epilogue, int act)
    {
        if (i < rows)
        {
            if (j < cols) c[(long)i * cols + j] = Epilogue.Apply(v.C0, aux, i, j, cols, epilogue, act);
            if (j + 1 < cols) c[(long)i * cols + j + 1] = Epilogue.Apply(v.C1, aux, i, j + 1, cols, epilogue, act);
        }
        if (i + 8 < rows)
        {
            if (j < cols) c[(long)(i + 8) * cols + j] = Epilogue.Apply(v.C2, aux, i + 8, j, cols, epilogue, act);
            if (j + 1 < cols) c[(long)(i + 8) * cols + j + 1] = Epilogue.Apply(v.C3, aux, i + 8, j + 1, cols, epilogue, act);
        }
    }

    /// <summary>Launch shape for C[rows, cols] in <paramref name="splits"/> splits.</summary>
    public static KernelConfig Config(int rows, int cols, int splits) =>
        new(new Index2D((cols + Block - 1) / Block, (rows + Block - 1) / Block * splits), new Index2D(Threads, 1));
}
