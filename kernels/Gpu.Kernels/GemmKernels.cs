using ILGPU;

namespace Gpu.Kernels;

/// <summary>
/// Barrier-free, register-blocked matrix products: each thread computes a 4x4 block of the
/// output in registers. No shared memory and no barriers, so they run fast on ILGPU's CPU
/// accelerator (one OS thread per multiprocessor) and correctly on any GPU. All matrices are
/// dense, row-major float32. Edge blocks clamp their loads and guard their stores, so any
/// shape is valid (no tile-multiple requirement). Launch with ceil(rows/4) * ceil(cols/4) threads.
/// Each product's inputs pass through the kernel's <see cref="IInputRounding"/> as they are loaded (<see cref="NoRounding"/>:
/// fp32; TF32 or bf16 emulated); the sums stay fp32, and the bias, the activation and the bias gradient read unrounded values.
/// </summary>
internal static class GemmKernels
{
    /// <summary>Rows and columns of output computed by one thread.</summary>
    public const int Block = 4;

    /// <summary>Number of threads to launch for an output of rows x cols.</summary>
    public static int Threads(int rows, int cols) =>
        ((rows + Block - 1) / Block) * ((cols + Block - 1) / Block);

    // Forward dense layer: Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]), act an Activations code; X and W rounded by TRound.
    public static void DenseForward<TRound>(Index1D t, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b,
        ArrayView<float> y, int m, int n, int k, int act)
        where TRound : struct, IInputRounding
    {
        TRound rd = default;
        int nb = (n + Block - 1) / Block;
        int i0 = (t / nb) * Block;
        int j0 = (t % nb) * Block;
        long xa = (long)Math.Min(i0, m - 1) * k, xb = (long)Math.Min(i0 + 1, m - 1) * k;
        long xc = (long)Math.Min(i0 + 2, m - 1) * k, xd = (long)Math.Min(i0 + 3, m - 1) * k;
        long wa = (long)Math.Min(j0, n - 1) * k, wb = (long)Math.Min(j0 + 1, n - 1) * k;
        long wc = (long)Math.Min(j0 + 2, n - 1) * k, wd = (long)Math.Min(j0 + 3, n - 1) * k;
        Block4x4 c = default;
        for (int p = 0; p < k; p++)
        {
            float a0 = rd.Round(x[xa + p]), a1 = rd.Round(x[xb + p]), a2 = rd.Round(x[xc + p]), a3 = rd.Round(x[xd + p]);
            float b0 = rd.Round(w[wa + p]), b1 = rd.Round(w[wb + p]), b2 = rd.Round(w[wc + p]), b3 = rd.Round(w[wd + p]);
            c.Add(a0, a1, a2, a3, new Float4(b0, b1, b2, b3));
        }
        StoreBiasAct(y, b, i0, j0, m, n, act, c.R0);
        StoreBiasAct(y, b, i0 + 1, j0, m, n, act, c.R1);
        StoreBiasAct(y, b, i0 + 2, j0, m, n, act, c.R2);
        StoreBiasAct(y, b, i0 + 3, j0, m, n, act, c.R3);
    }

    // Weight gradient (outer products summed over the batch): dW[n,k] = dZ[m,n]^T . H[m,k]; with bias != 0 also the bias
    // gradient db[n] = column sums of dZ, by the threads of the first column block, each summing its rows over the batch in order.
    // dZ and H rounded by TRound in the product; the column sums add dZ as it is.
    public static void WeightGrad<TRound>(Index1D t, ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db,
        int m, int n, int k, int bias)
        where TRound : struct, IInputRounding
    {
        TRound rd = default;
        int kb = (k + Block - 1) / Block;
        int i0 = (t / kb) * Block;   // rows of dW (output units)
        int j0 = (t % kb) * Block;   // columns of dW (input units)
        int ia = Math.Min(i0, n - 1), ib = Math.Min(i0 + 1, n - 1), ic = Math.Min(i0 + 2, n - 1), id = Math.Min(i0 + 3, n - 1);
        int ja = Math.Min(j0, k - 1), jb = Math.Min(j0 + 1, k - 1), jc = Math.Min(j0 + 2, k - 1), jd = Math.Min(j0 + 3, k - 1);
        Block4x4 c = default;
        for (int r = 0; r < m; r++)
        {
            long zr = (long)r * n, hr = (long)r * k;
            float a0 = rd.Round(dz[zr + ia]), a1 = rd.Round(dz[zr + ib]), a2 = rd.Round(dz[zr + ic]), a3 = rd.Round(dz[zr + id]);
            float b0 = rd.Round(h[hr + ja]), b1 = rd.Round(h[hr + jb]), b2 = rd.Round(h[hr + jc]), b3 = rd.Round(h[hr + jd]);
            c.Add(a0, a1, a2, a3, new Float4(b0, b1, b2, b3));
        }
        Store(dw, i0, j0, n, k, c.R0);
        Store(dw, i0 + 1, j0, n, k, c.R1);
        Store(dw, i0 + 2, j0, n, k, c.R2);
        Store(dw, i0 + 3, j0, n, k, c.R3);
        if (bias != 0 && j0 == 0) ColumnSums(dz, db, i0, m, n);
    }

    /// <summary>db[j] = sum over rows r of dZ[r, j] (r in order) for the block's columns j0 .. j0 + 3 below n.</summary>
    internal static void ColumnSums(ArrayView<float> dz, ArrayView<float> db, int j0, int m, int n)
    {
        int ja = Math.Min(j0, n - 1), jb = Math.Min(j0 + 1, n - 1), jc = Math.Min(j0 + 2, n - 1), jd = Math.Min(j0 + 3, n - 1);
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        for (int r = 0; r < m; r++)
        {
            long zr = (long)r * n;
            s0 += dz[zr + ja]; s1 += dz[zr + jb]; s2 += dz[zr + jc]; s3 += dz[zr + jd];
        }
        if (j0 < n) db[j0] = s0;
        if (j0 + 1 < n) db[j0 + 1] = s1;
        if (j0 + 2 < n) db[j0 + 2] = s2;
        if (j0 + 3 < n) db[j0 + 3] = s3;
    }

    // Input gradient through the previous layer's activation: dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]), act an Activations code (Identity: none);
    // dZ and W rounded by TRound.
    public static void InputGrad<TRound>(Index1D t, ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h,
        ArrayView<float> dx, int m, int n, int k, int act)
        where TRound : struct, IInputRounding
    {
        TRound rd = default;
        int kb = (k + Block - 1) / Block;
        int i0 = (t / kb) * Block;   // batch rows
        int j0 = (t % kb) * Block;   // input units
        long za = (long)Math.Min(i0, m - 1) * n, zb = (long)Math.Min(i0 + 1, m - 1) * n;
        long zc = (long)Math.Min(i0 + 2, m - 1) * n, zd = (long)Math.Min(i0 + 3, m - 1) * n;
        int ja = Math.Min(j0, k - 1), jb = Math.Min(j0 + 1, k - 1), jc = Math.Min(j0 + 2, k - 1), jd = Math.Min(j0 + 3, k - 1);
        Block4x4 c = default;
        for (int p = 0; p < n; p++)
        {
            long wr = (long)p * k;
            float a0 = rd.Round(dz[za + p]), a1 = rd.Round(dz[zb + p]), a2 = rd.Round(dz[zc + p]), a3 = rd.Round(dz[zd + p]);
            float b0 = rd.Round(w[wr + ja]), b1 = rd.Round(w[wr + jb]), b2 = rd.Round(w[wr + jc]), b3 = rd.Round(w[wr + jd]);
            c.Add(a0, a1, a2, a3, new Float4(b0, b1, b2, b3));
        }
        StoreMasked(dx, h, i0, j0, m, k, act, c.R0);
        StoreMasked(dx, h, i0 + 1, j0, m, k, act, c.R1);
        StoreMasked(dx, h, i0 + 2, j0, m, k, act, c.R2);
        StoreMasked(dx, h, i0 + 3, j0, m, k, act, c.R3);
    }

    static void Store(ArrayView<float> c, int i, int j0, int rows, int cols, Float4 v)
    {
        float v0 = v.X, v1 = v.Y, v2 = v.Z, v3 = v.W;
        if (i >= rows) return;
        long r = (long)i * cols;
        if (j0 < cols) c[r + j0] = v0;
        if (j0 + 1 < cols) c[r + j0 + 1] = v1;
        if (j0 + 2 < cols) c[r + j0 + 2] = v2;
        if (j0 + 3 < cols) c[r + j0 + 3] = v3;
    }

    static void StoreBiasAct(ArrayView<float> y, ArrayView<float> b, int i, int j0, int rows, int cols, int act, Float4 v)
    {
        float v0 = v.X, v1 = v.Y, v2 = v.Z, v3 = v.W;
        if (i >= rows) return;
        long r = (long)i * cols;
        if (j0 < cols) y[r + j0] = Activations.Apply(v0 + b[j0], act);
        if (j0 + 1 < cols) y[r + j0 + 1] = Activations.Apply(v1 + b[j0 + 1], act);
        if (j0 + 2 < cols) y[r + j0 + 2] = Activations.Apply(v2 + b[j0 + 2], act);
        if (j0 + 3 < cols) y[r + j0 + 3] = Activations.Apply(v3 + b[j0 + 3], act);
    }

    static void StoreMasked(ArrayView<float> dx, ArrayView<float> h, int i, int j0, int rows, int cols, int act, Float4 v)
    {
        float v0 = v.X, v1 = v.Y, v2 = v.Z, v3 = v.W;
        if (i >= rows) return;
        long r = (long)i * cols;
        if (j0 < cols) dx[r + j0] = Activations.Backprop(v0, h[r + j0], act);
        if (j0 + 1 < cols) dx[r + j0 + 1] = Activations.Backprop(v1, h[r + j0 + 1], act);
        if (j0 + 2 < cols) dx[r + j0 + 2] = Activations.Backprop(v2, h[r + j0 + 2], act);
        if (j0 + 3 < cols) dx[r + j0 + 3] = Activations.Backprop(v3, h[r + j0 + 3], act);
    }
}

/// <summary>
/// The 4x4 register block of the scalar and tiled products: four rows of output sums, four columns each,
/// grown by outer products of four rows' and four columns' values.
/// </summary>
internal struct Block4x4
{
    public Float4 R0, R1, R2, R3;

    // C[i, j] += a_i * b_j for i, j < 4 (each sum as acc + a * b, in that order).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void Add(float a0, float a1, float a2, float a3, Float4 b)
    {
        R0 = Float4.Madd(R0, a0, b);
        R1 = Float4.Madd(R1, a1, b);
        R2 = Float4.Madd(R2, a2, b);
        R3 = Float4.Madd(R3, a3, b);
    }
}
