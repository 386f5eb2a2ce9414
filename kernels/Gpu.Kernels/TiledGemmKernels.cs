using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Kernels;

/// <summary>
/// Tile shape of <see cref="TiledGemmKernels"/>, a compile-time specialisation: a kernel instantiated
/// for a tile struct sees its sizes as constants (shared-memory sizes, unrolled loops).
/// A group of <see cref="ThreadsX"/> x <see cref="ThreadsY"/> threads computes a (4*ThreadsY) x (4*ThreadsX)
/// block of C, each thread a 4x4 register block, stepping through the contraction <see cref="Depth"/> at a time.
/// </summary>
internal interface ITile
{
    int ThreadsX { get; }
    int ThreadsY { get; }
    int Depth { get; }
}

/// <summary>GPU tile: 16 x 16 threads, 64 x 64 outputs per group, 16-deep slices (8 KB of shared memory).</summary>
internal struct Tile64 : ITile
{
    public int ThreadsX => 16;
    public int ThreadsY => 16;
    public int Depth => 16;
}

/// <summary>Small tile: 2 x 2 threads, 8 x 8 outputs, 4-deep slices. Fits the CPU accelerator's 4-thread groups, so tests can run the tiled code there.</summary>
internal struct Tile8 : ITile
{
    public int ThreadsX => 2;
    public int ThreadsY => 2;
    public int Depth => 4;
}

/// <summary>What the tiled GEMM does with each output after the product (with an <see cref="Activations"/> code).</summary>
internal static class Epilogue
{
    public const int None = 0;          // C = A.B
    public const int BiasAct = 1;       // C = act(A.B + aux[col])             (aux: bias)
    public const int ActBackprop = 2;   // C = (A.B) * act'(from aux[row,col]) (aux: the activation's output H)
    public const int RowSums = 3;       // C = A.B and aux[row] = sum_p A(row, p)   (aux: the bias gradient, with the weight gradient)

    // C[i,j] from its sum v through the epilogue (BiasAct, ActBackprop; None and RowSums: v itself), C [rows, cols] row-major. Not
    // inlined: the many stores of a thread of the blocked or tensor-core kernels would each carry a copy of every activation (exp,
    // the tanh polynomial), 13-17k lines of PTX per tile that cost the driver's (and POCL's) compiler seconds each; a call runs
    // once per output, after the products.
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static float Apply(float v, ArrayView<float> aux, int i, int j, int cols, int epilogue, int act)
    {
        if (epilogue == BiasAct) return Activations.Apply(v + aux[j], act);
        if (epilogue == ActBackprop) return Activations.Backprop(v, aux[(long)i * cols + j], act);
        return v;
    }
}

/// <summary>
/// Shared-memory tiled GEMM with register blocking for GPUs, in one strided form that covers the
/// three dense-layer products: C[i,j] = sum_p A(i,p) * B(j,p), where A(i,p) = a[i*aRow + p*aCol] and
/// B(j,p) = b[j*bRow + p*bCol], C is [rows, cols] row-major, followed by an epilogue.
///   forward   Y = X . W^T:   a = X[m,k] (aRow k, aCol 1),  b = W[n,k] (bRow k, bCol 1)
///   weight    dW = dZ^T . H: a = dZ[m,n] (aRow 1, aCol n), b = H[m,k] (bRow 1, bCol k)
///   input     dX = dZ . W:   a = dZ[m,n] (aRow n, aCol 1), b = W[n,k] (bRow 1, bCol k)
/// Tiles are loaded cooperatively into shared memory (coalesced along whichever index is contiguous),
/// then every thread multiplies a 4x4 register block out of them. Any shape: loads outside the
/// matrix read 0 and stores outside are skipped. Launch with a grid of
/// (ceil(cols / (4*ThreadsX)), ceil(rows / (4*ThreadsY))) groups of (ThreadsX, ThreadsY) threads.
/// </summary>
internal static class TiledGemmKernels
{
    // C[rows,cols] = epilogue(sum_p A(i,p) B(j,p)) over p < depth; see the class comment for the strides.
    public static void Gemm<TTile>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux,
        int rows, int cols, int depth, int aRow, int aCol, int bRow, int bCol, int epilogue, int act)
        where TTile : struct, ITile
    {
        TTile tile = default;
        int tx = Group.IdxX, ty = Group.IdxY;
        int threads = tile.ThreadsX * tile.ThreadsY, tid = ty * tile.ThreadsX + tx;
        int bm = 4 * tile.ThreadsY, bn = 4 * tile.ThreadsX, bk = tile.Depth;
        int row0 = Grid.IdxY * bm, col0 = Grid.IdxX * bn;
        int sa_ = bm + 1, sb_ = bn + 1;   // padded row strides: column-wise stores hit distinct banks
        var sa = SharedMemory.Allocate1D<float>((4 * default(TTile).ThreadsY + 1) * default(TTile).Depth);   // [bk][bm + 1]
        var sb = SharedMemory.Allocate1D<float>((4 * default(TTile).ThreadsX + 1) * default(TTile).Depth);   // [bk][bn + 1]
        bool aAlongP = aCol == 1;   // A contiguous along p: let consecutive threads walk p
        bool bAlongP = bCol == 1;

        Block4x4 acc = default;
        for (int p0 = 0; p0 < depth; p0 += bk)
        {
            for (int e = tid; e < bm * bk; e += threads)
            {
                int r = aAlongP ? e / bk : e % bm, q = aAlongP ? e % bk : e / bm;
                int gi = row0 + r, gp = p0 + q;
                sa[q * sa_ + r] = gi < rows && gp < depth ? a[(long)gi * aRow + (long)gp * aCol] : 0f;
            }
            for (int e = tid; e < bn * bk; e += threads)
            {
                int r = bAlongP ? e / bk : e % bn, q = bAlongP ? e % bk : e / bn;
                int gj = col0 + r, gp = p0 + q;
                sb[q * sb_ + r] = gj < cols && gp < depth ? b[(long)gj * bRow + (long)gp * bCol] : 0f;
            }
            Group.Barrier();
            for (int q = 0; q < bk; q++)
            {
                int ao = q * sa_ + ty * 4, bo = q * sb_ + tx * 4;
                float a0 = sa[ao], a1 = sa[ao + 1], a2 = sa[ao + 2], a3 = sa[ao + 3];
                float b0 = sb[bo], b1 = sb[bo + 1], b2 = sb[bo + 2], b3 = sb[bo + 3];
                acc.Add(a0, a1, a2, a3, new Float4(b0, b1, b2, b3));
            }
            Group.Barrier();
        }
        int i0 = row0 + ty * 4, j0 = col0 + tx * 4;
        Store(c, aux, i0, j0, rows, cols, epilogue, act, acc.R0);
        Store(c, aux, i0 + 1, j0, rows, cols, epilogue, act, acc.R1);
        Store(c, aux, i0 + 2, j0, rows, cols, epilogue, act, acc.R2);
        Store(c, aux, i0 + 3, j0, rows, cols, epilogue, act, acc.R3);
        if (epilogue == Epilogue.RowSums && Grid.IdxX == 0 && tx < 4)
        {
            // the groups of the first column block: a thread's row of threads owns 4 rows of C; its first (at most) 4
            // threads sum one or more of those rows of A over p, in order
            for (int r = tx; r < 4; r += tile.ThreadsX)
            {
                int i = i0 + r;
                if (i >= rows) continue;
                float s = 0f;
                for (int p = 0; p < depth; p++) s += a[(long)i * aRow + (long)p * aCol];
                aux[i] = s;
            }
        }
    }

    static void Store(ArrayView<float> c, ArrayView<float> aux, int i, int j0, int rows, int cols, int epilogue, int act, Float4 v)
    {
        float v0 = v.X, v1 = v.Y, v2 = v.Z, v3 = v.W;
        if (i >= rows) return;
        if (j0 < cols) c[(long)i * cols + j0] = Apply(v0, aux, i, j0, cols, epilogue, act);
        if (j0 + 1 < cols) c[(long)i * cols + j0 + 1] = Apply(v1, aux, i, j0 + 1, cols, epilogue, act);
        if (j0 + 2 < cols) c[(long)i * cols + j0 + 2] = Apply(v2, aux, i, j0 + 2, cols, epilogue, act);
        if (j0 + 3 < cols) c[(long)i * cols + j0 + 3] = Apply(v3, aux, i, j0 + 3, cols, epilogue, act);
    }

    static float Apply(float v, ArrayView<float> aux, int i, int j, int cols, int epilogue, int act)
    {
        if (epilogue == Epilogue.BiasAct) return Activations.Apply(v + aux[j], act);
        if (epilogue == Epilogue.ActBackprop) return Activations.Backprop(v, aux[(long)i * cols + j], act);
        return v;
    }

    /// <summary>Launch shape for C[rows, cols] with tile <typeparamref name="TTile"/>.</summary>
    public static KernelConfig Config<TTile>(int rows, int cols) where TTile : struct, ITile
    {
        TTile t = default;
        int bm = 4 * t.ThreadsY, bn = 4 * t.ThreadsX;
        return new KernelConfig(new Index2D((cols + bn - 1) / bn, (rows + bm - 1) / bm), new Index2D(t.ThreadsX, t.ThreadsY));
    }
}
