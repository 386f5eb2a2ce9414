using System.Runtime.CompilerServices;
using ILGPU;

namespace Gpu.Kernels;

/// <summary>
/// Block tile of <see cref="BlockedGemmKernels"/>, a compile-time specialisation (a kernel instantiated for a tile struct
/// sees its sizes as constants): a group computes a <see cref="BM"/> x <see cref="BN"/> block of C, stepping through the
/// contraction <see cref="BK"/> at a time, each thread an 8 x 8 register tile (<see cref="BlockedGemmKernels.ThreadRows"/> x
/// <see cref="BlockedGemmKernels.ThreadCols"/>), so a group has (BM/8) * (BN/8) threads.
/// Sizes the kernel relies on (checked by a test over every tile): BM and BN multiples of 8, BK 4 or 8, and each operand's
/// slice (BM x BK or BN x BK floats) split into 1, 2 or 4 four-float cells per thread.
/// </summary>
internal interface IBlockedTile
{
    int BM { get; }
    int BN { get; }
    int BK { get; }
}

/// <summary>128 x 128 outputs, 8-deep slices, 256 threads: the big products.</summary>
internal struct Blocked128x128 : IBlockedTile
{
    public int BM => 128;
    public int BN => 128;
    public int BK => 8;
}

/// <summary>128 x 64 outputs, 8-deep slices, 128 threads.</summary>
internal struct Blocked128x64 : IBlockedTile
{
    public int BM => 128;
    public int BN => 64;
    public int BK => 8;
}

/// <summary>64 x 64 outputs, 8-deep slices, 64 threads.</summary>
internal struct Blocked64x64 : IBlockedTile
{
    public int BM => 64;
    public int BN => 64;
    public int BK => 8;
}

/// <summary>64 x 32 outputs, 8-deep slices, 32 threads (one warp): small products.</summary>
internal struct Blocked64x32 : IBlockedTile
{
    public int BM => 64;
    public int BN => 32;
    public int BK => 8;
}

/// <summary>16 x 16 outputs, 4-deep slices, 4 threads: fits the CPU accelerator's 4-thread groups, so tests run the blocked code there.</summary>
internal struct Blocked16x16 : IBlockedTile
{
    public int BM => 16;
    public int BN => 16;
    public int BK => 4;
}

/// <summary>
/// Register-blocked SIMT GEMM for GPUs, in the strided form of <see cref="TiledGemmKernels"/> that serves the three
/// dense-layer products: C[i,j] = epilogue(sum over p of A(i,p) * B(j,p)), A(i,p) = a[i*aRow + p*aCol],
/// B(j,p) = b[j*bRow + p*bCol], C [rows, cols] row-major.
///   forward   Y = X . W^T:   a = X[m,k] (aRow k, aCol 1),  b = W[n,k] (bRow k, bCol 1)  BiasAct
///   weight    dW = dZ^T . H: a = dZ[m,n] (aRow 1, aCol n), b = H[m,k] (bRow 1, bCol k)  None or RowSums (db)
///   input     dX = dZ . W:   a = dZ[m,n] (aRow n, aCol 1), b = W[n,k] (bRow 1, bCol k)  ActBackprop
/// A group computes a BM x BN block of C; thread (tx, ty) owns rows ty*4 + {0..3} and BM/2 + ty*4 + {0..3} and columns
/// tx*4 + {0..3} and BN/2 + tx*4 + {0..3} (2 x 2 sub-blocks of 4 x 4), so the 16-byte shared-memory reads of a warp are
/// contiguous or broadcast. Both operands sit in shared memory p-major (As[BK][BM + 4], Bs[BK][BN + 4]; the padding keeps the
/// transposing stores of an operand contiguous along p free of bank conflicts), double-buffered: the next slice is read from
/// global memory into registers while the current one is multiplied, then stored, one barrier per slice. Global reads are
/// coalesced, 16 bytes per thread where the contiguous dimension is a multiple of 4 and the view starts on a 16-byte
/// boundary (a uniform branch; 4 scalar reads otherwise). Any shape: reads outside the matrix give 0, writes are skipped.
/// Split-K (Splits &gt; 1): split s = Grid.IdxY / ceil(rows/BM) writes its raw partial sums to c = a workspace
/// [Splits, rows, cols], and <see cref="SplitKKernels.ReduceSplits"/> adds them in order and applies the epilogue. No atomics: one
/// result per device and plan.
/// Launch Gemm with a grid of (ceil(cols/BN), ceil(rows/BM) * Splits) groups of (BM/8) * (BN/8) threads.
/// </summary>
internal static class BlockedGemmKernels
{
    /// <summary>Rows and columns of C per thread (two 4-row halves, two 4-column halves).</summary>
    public const int ThreadRows = 8, ThreadCols = 8;

    /// <summary>Floats of padding after each BM (or BN) row of a shared-memory slice.</summary>
    public const int Pad = 4;

    /// <summary>Threads per group of a tile.</summary>
    public static int Threads<TTile>() where TTile : struct, IBlockedTile => default(TTile).BM / ThreadRows * (default(TTile).BN / ThreadCols);

    // C[rows,cols] = epilogue(sum_p A(i,p) B(j,p)) (or split s's raw partial sums into c[s, rows, cols]); strides in g, see the class comment.
    public static void Gemm<TTile>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux, GemmArgs g)
        where TTile : struct, IBlockedTile
    {
        TTile tile = default;
        int bm = tile.BM, bn = tile.BN, bk = tile.BK;
        int threads = bm / ThreadRows * (bn / ThreadCols);
        int lda = bm + Pad, ldb = bn + Pad;
        int tid = Group.IdxX;
        int tx = Cells.Mod(tid, bn / ThreadCols), ty = Cells.Div(tid, bn / ThreadCols);
        int rowBlocks = (g.Rows + bm - 1) / bm;
        int split = Grid.IdxY / rowBlocks;
        int row0 = (Grid.IdxY - split * rowBlocks) * bm, col0 = Grid.IdxX * bn;
        int pBegin = split * g.SplitDepth, pEnd = Math.Min(g.Depth, pBegin + g.SplitDepth);
        int slices = pEnd > pBegin ? (pEnd - pBegin + bk - 1) / bk : 0;

        // two buffers of [bk][bm + Pad] and [bk][bn + Pad] floats, as Float4 so that they start on 16-byte boundaries
        ArrayView<Float4> sa4 = SharedMemory.Allocate1D<Float4>(default(TTile).BK * (default(TTile).BM + Pad) / 2);
        ArrayView<Float4> sb4 = SharedMemory.Allocate1D<Float4>(default(TTile).BK * (default(TTile).BN + Pad) / 2);
        var sa = sa4.Cast<float>();
        var sb = sb4.Cast<float>();

        // an operand contiguous along p (stride 1) is transposed into shared memory; one contiguous along i or j is copied
        bool aAlongP = g.ACol == 1, bAlongP = g.BCol == 1;
        bool aVector = (g.Aligned & 1) != 0 && (aAlongP ? g.ARow % 4 == 0 && g.Depth % 4 == 0 : g.ARow == 1 && g.ACol % 4 == 0 && g.Rows % 4 == 0);
        bool bVector = (g.Aligned & 2) != 0 && (bAlongP ? g.BRow % 4 == 0 && g.Depth % 4 == 0 : g.BRow == 1 && g.BCol % 4 == 0 && g.Cols % 4 == 0);
        var opA = new Operand(a, a.Cast<Float4>(), aAlongP, aVector, row0, g.Rows, g.ARow, g.ACol);
        var opB = new Operand(b, b.Cast<Float4>(), bAlongP, bVector, col0, g.Cols, g.BRow, g.BCol);
        int cellsA = bm * bk / 4 / threads, cellsB = bn * bk / 4 / threads;

        bool rowSums = g.Epilogue == Epilogue.RowSums && g.Splits == 1 && Grid.IdxX == 0;
        // RowSums: the sums over p of A(row0 + r, p), r < bm, in p order, kept in shared memory (not in registers, which the
        // products need), each by the thread that owns r (r = tid, tid + threads, ...): no barrier needed
        ArrayView<float> sums = SharedMemory.Allocate1D<float>(default(TTile).BM);
        if (rowSums)
            for (int r = tid; r < bm; r += threads) sums[r] = 0f;

        // iteration t: store slice t (read into registers during iteration t - 1) into buffer t & 1; barrier; read slice t + 1
        // from global memory into registers (its latency hidden behind the products); multiply slice t. Buffer t & 1 was last
        // read in iteration t - 2, before the barrier of iteration t - 1, so one barrier per slice suffices. The products come
        // last in the body: ILGPU places values next to their uses, and with anything after them it would move them there,
        // keeping all of the slice's shared-memory reads alive at once.
        Cells stageA = default, stageB = default;
        if (slices > 0)
        {
            stageA.Load(opA, tid, threads, cellsA, pBegin, pEnd, bk, bm);
            stageB.Load(opB, tid, threads, cellsB, pBegin, pEnd, bk, bn);
        }
        Block8x8 acc = default;
        for (int t = 0; t < slices; t++)
        {
            int cur = t & 1;
            stageA.Store(sa, sa4, opA.AlongP, tid, threads, cellsA, cur * bk * lda, lda, bk, bm);
            stageB.Store(sb, sb4, opB.AlongP, tid, threads, cellsB, cur * bk * ldb, ldb, bk, bn);
            Group.Barrier();
            if (rowSums) SumRows(sums, sa, cur * bk * lda, lda, tid, threads, bm, bk);
            int p0 = pBegin + (t + 1) * bk;   // past pEnd in the last iteration: the reads give zeros, never stored
            stageA.Load(opA, tid, threads, cellsA, p0, pEnd, bk, bm);
            stageB.Load(opB, tid, threads, cellsB, p0, pEnd, bk, bn);

            // the slice's bk steps written out (ILGPU does not unroll loops), read through views that start at this thread's
            // first Float4 so that every read is the view's start plus a constant offset
            var at = sa4.SubView(cur * bk * lda / 4 + ty, bk * lda / 4 - ty);
            var bt = sb4.SubView(cur * bk * ldb / 4 + tx, bk * ldb / 4 - tx);
            acc.Step(at, bt, 0, 0, bm / 8, bn / 8);
            acc.Step(at, bt, lda / 4, ldb / 4, bm / 8, bn / 8);
            acc.Step(at, bt, 2 * lda / 4, 2 * ldb / 4, bm / 8, bn / 8);
            acc.Step(at, bt, 3 * lda / 4, 3 * ldb / 4, bm / 8, bn / 8);
            if (bk == 8)
            {
                acc.Step(at, bt, 4 * lda / 4, 4 * ldb / 4, bm / 8, bn / 8);
                acc.Step(at, bt, 5 * lda / 4, 5 * ldb / 4, bm / 8, bn / 8);
                acc.Step(at, bt, 6 * lda / 4, 6 * ldb / 4, bm / 8, bn / 8);
                acc.Step(at, bt, 7 * lda / 4, 7 * ldb / 4, bm / 8, bn / 8);
            }
        }

        int epilogue = g.Splits > 1 ? Epilogue.None : g.Epilogue;
        long cBase = g.Splits > 1 ? (long)split * g.Rows * g.Cols : 0;
        int i0 = row0 + ty * 4, i1 = row0 + bm / 2 + ty * 4, j0 = col0 + tx * 4, j1 = col0 + bn / 2 + tx * 4;
        StoreRow(c, aux, cBase, i0, j0, j1, acc.R0L, acc.R0H, g, epilogue);
        StoreRow(c, aux, cBase, i0 + 1, j0, j1, acc.R1L, acc.R1H, g, epilogue);
        StoreRow(c, aux, cBase, i0 + 2, j0, j1, acc.R2L, acc.R2H, g, epilogue);
        StoreRow(c, aux, cBase, i0 + 3, j0, j1, acc.R3L, acc.R3H, g, epilogue);
        StoreRow(c, aux, cBase, i1, j0, j1, acc.R4L, acc.R4H, g, epilogue);
        StoreRow(c, aux, cBase, i1 + 1, j0, j1, acc.R5L, acc.R5H, g, epilogue);
        StoreRow(c, aux, cBase, i1 + 2, j0, j1, acc.R6L, acc.R6H, g, epilogue);
        StoreRow(c, aux, cBase, i1 + 3, j0, j1, acc.R7L, acc.R7H, g, epilogue);
        if (rowSums)
            for (int r = tid; r < bm; r += threads)
                if (row0 + r < g.Rows) aux[row0 + r] = sums[r];
    }

    /// <summary>sums[r] += the slice's values of A's row r, q = 0 .. bk - 1 in order, for this thread's rows r = tid, tid + threads, ... &lt; bm.</summary>
    static void SumRows(ArrayView<float> sums, ArrayView<float> sa, int first, int lda, int tid, int threads, int bm, int bk)
    {
        for (int r = tid; r < bm; r += threads)
        {
            float sum = sums[r];
            for (int q = 0; q < bk; q++) sum += sa[first + q * lda + r];
            sums[r] = sum;
        }
    }

    /// <summary>Row i of C at columns j0 .. j0 + 3 (from lo) and j1 .. j1 + 3 (from hi), through the epilogue, inside the matrix only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRow(ArrayView<float> c, ArrayView<float> aux, long cBase, int i, int j0, int j1, Float4 lo, Float4 hi, GemmArgs g, int epilogue)
    {
        if (i >= g.Rows) return;
        StoreFour(c, aux, cBase, i, j0, lo, g, epilogue);
        StoreFour(c, aux, cBase, i, j1, hi, g, epilogue);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreFour(ArrayView<float> c, ArrayView<float> aux, long cBase, int i, int j, Float4 v, GemmArgs g, int epilogue)
    {
        long r = cBase + (long)i * g.Cols;
        if (j < g.Cols) c[r + j] = Epilogue.Apply(v.X, aux, i, j, g.Cols, epilogue, g.Act);
        if (j + 1 < g.Cols) c[r + j + 1] = Epilogue.Apply(v.Y, aux, i, j + 1, g.Cols, epilogue, g.Act);
        if (j + 2 < g.Cols) c[r + j + 2] = Epilogue.Apply(v.Z, aux, i, j + 2, g.Cols, epilogue, g.Act);
        if (j + 3 < g.Cols) c[r + j + 3] = Epilogue.Apply(v.W, aux, i, j + 3, g.Cols, epilogue, g.Act);
    }

}

/// <summary>One operand of a blocked product as a group reads it: its view (also as Float4), orientation, read path and the rows (of A) or columns (of B) the group covers.</summary>
internal readonly struct Operand(ArrayView<float> x, ArrayView<Float4> x4, bool alongP, bool vector, int first, int extent, int rowStride, int pStride)
{
    public readonly ArrayView<float> X = x;
    public readonly ArrayView<Float4> X4 = x4;
    /// <summary>Contiguous along p (pStride 1): cells run along p and are transposed into shared memory; else they run along the rows.</summary>
    public readonly bool AlongP = alongP;
    /// <summary>Each cell one 16-byte read (its four values are all inside the matrix or all outside).</summary>
    public readonly bool Vector = vector;
    public readonly int First = first, Extent = extent, RowStride = rowStride, PStride = pStride;

    /// <summary>
    /// Cell <paramref name="cell"/> of the slice starting at p0: four consecutive values of the operand along its contiguous
    /// dimension (along p: row cell / (bk/4), p0 + 4 (cell % (bk/4)) .. + 3; else: p0 + cell / (bmn/4), rows 4 (cell % (bmn/4)) .. + 3), 0 outside.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float4 Load(int cell, int p0, int pEnd, int bk, int bmn)
    {
        int i, p;
        if (AlongP) { i = First + Cells.Div(cell, bk / 4); p = p0 + 4 * Cells.Mod(cell, bk / 4); }
        else { p = p0 + Cells.Div(cell, bmn / 4); i = First + 4 * Cells.Mod(cell, bmn / 4); }
        return Read(i, p, pEnd);
    }

    /// <summary>
    /// The four consecutive values from row i (of A; column of C for B), depth p along the contiguous dimension (p .. p + 3 along
    /// p, else rows i .. i + 3), 0 outside [0, Extent) x [0, pEnd): one 16-byte read where <see cref="Vector"/>, else four.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Float4 Read(int i, int p, int pEnd)
    {
        // branch-free: every read is made at an address clamped into the matrix (and the split), and a read outside gives 0
        if (Vector)
        {
            bool inside = i < Extent && p < pEnd;
            long at = AlongP ? (long)Math.Min(i, Extent - 1) * RowStride + Math.Min(p, pEnd - 4) : (long)Math.Min(p, pEnd - 1) * PStride + Math.Min(i, Extent - 4);
            Float4 v = X4[at >> 2];
            return inside ? v : default;
        }
        if (AlongP) return new Float4(Get(i, p, pEnd), Get(i, p + 1, pEnd), Get(i, p + 2, pEnd), Get(i, p + 3, pEnd));
        return new Float4(Get(i, p, pEnd), Get(i + 1, p, pEnd), Get(i + 2, p, pEnd), Get(i + 3, p, pEnd));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    float Get(int i, int p, int pEnd)
    {
        float v = X[(long)Math.Min(i, Extent - 1) * RowStride + (long)Math.Min(p, pEnd - 1) * PStride];
        return i < Extent && p < pEnd ? v : 0f;
    }
}

/// <summary>A thread's cells of one operand's slice (1, 2 or 4 of them), held in registers between the global read and the shared-memory store.</summary>
internal struct Cells
{
    public Float4 C0, C1, C2, C3;

    /// <summary>Reads cells tid + k * threads, k &lt; count, of the slice starting at p0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Load(Operand op, int tid, int threads, int count, int p0, int pEnd, int bk, int bmn)
    {
        C0 = op.Load(tid, p0, pEnd, bk, bmn);
        if (count > 1) C1 = op.Load(tid + threads, p0, pEnd, bk, bmn);
        if (count > 2)
        {
            C2 = op.Load(tid + 2 * threads, p0, pEnd, bk, bmn);
            C3 = op.Load(tid + 3 * threads, p0, pEnd, bk, bmn);
        }
    }

    /// <summary>Writes the cells into a p-major shared slice [bk][ld] starting at float offset <paramref name="first"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Store(ArrayView<float> s, ArrayView<Float4> s4, bool alongP, int tid, int threads, int count, int first, int ld, int bk, int bmn)
    {
        StoreCell(s, s4, alongP, tid, first, ld, bk, bmn, C0);
        if (count > 1) StoreCell(s, s4, alongP, tid + threads, first, ld, bk, bmn, C1);
        if (count > 2)
        {
            StoreCell(s, s4, alongP, tid + 2 * threads, first, ld, bk, bmn, C2);
            StoreCell(s, s4, alongP, tid + 3 * threads, first, ld, bk, bmn, C3);
        }
    }

    // along p: the cell's four values go down a column of the slice (four scalar stores, ld apart); else: one 16-byte store along a row
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreCell(ArrayView<float> s, ArrayView<Float4> s4, bool alongP, int cell, int first, int ld, int bk, int bmn, Float4 v)
    {
        if (alongP)
        {
            int o = first + 4 * Mod(cell, bk / 4) * ld + Div(cell, bk / 4);
            s[o] = v.X;
            s[o + ld] = v.Y;
            s[o + 2 * ld] = v.Z;
            s[o + 3 * ld] = v.W;
        }
        else s4[(first + Div(cell, bmn / 4) * ld + 4 * Mod(cell, bmn / 4)) >> 2] = v;
    }

    // x / d and x % d for x >= 0 and a constant d, as unsigned operations (which the compiler turns into shifts and masks)
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Div(int x, int d) => (int)((uint)x / (uint)d);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Mod(int x, int d) => (int)((uint)x % (uint)d);
}

/// <summary>
/// The 8 x 8 register tile of a blocked-GEMM thread: rows 0..3 and 4..7 (the two row halves), each as columns 0..3 (L) and
/// 4..7 (H, the second column half), grown by the outer product of two Float4s of A and two of B.
/// </summary>
internal struct Block8x8
{
    public Float4 R0L, R0H, R1L, R1H, R2L, R2H, R3L, R3H, R4L, R4H, R5L, R5H, R6L, R6H, R7L, R7H;

    // one step q: the thread's two Float4s of A's row q (at.. at[qa] and at[qa + halfA]) and of B's (bt[qb], bt[qb + halfB]) in shared memory
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Step(ArrayView<Float4> at, ArrayView<Float4> bt, int qa, int qb, int halfA, int halfB) =>
        Add(at[qa], at[qa + halfA], bt[qb], bt[qb + halfB]);

    // C[r, c] += a_r * b_c for the 8 rows a = (a0, a1) and the 8 columns b = (b0, b1), each sum as acc + a * b.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(Float4 a0, Float4 a1, Float4 b0, Float4 b1)
    {
        R0L = Float4.Madd(R0L, a0.X, b0); R0H = Float4.Madd(R0H, a0.X, b1);
        R1L = Float4.Madd(R1L, a0.Y, b0); R1H = Float4.Madd(R1H, a0.Y, b1);
        R2L = Float4.Madd(R2L, a0.Z, b0); R2H = Float4.Madd(R2H, a0.Z, b1);
        R3L = Float4.Madd(R3L, a0.W, b0); R3H = Float4.Madd(R3H, a0.W, b1);
        R4L = Float4.Madd(R4L, a1.X, b0); R4H = Float4.Madd(R4H, a1.X, b1);
        R5L = Float4.Madd(R5L, a1.Y, b0); R5H = Float4.Madd(R5H, a1.Y, b1);
        R6L = Float4.Madd(R6L, a1.Z, b0); R6H = Float4.Madd(R6H, a1.Z, b1);
        R7L = Float4.Madd(R7L, a1.W, b0); R7H = Float4.Madd(R7H, a1.W, b1);
    }
}
