using System.Runtime.CompilerServices;
using ILGPU;

namespace Gpu.Kernels;

/// <summary>Four consecutive floats, loaded with one access (a 16-byte view element).</summary>
internal struct Float4(float x, float y, float z, float w)
{
    public float X = x, Y = y, Z = z, W = w;

    /// <summary>acc + s * v, element-wise.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Float4 Madd(Float4 acc, float s, Float4 v) => new(acc.X + s * v.X, acc.Y + s * v.Y, acc.Z + s * v.Z, acc.W + s * v.W);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Dot(Float4 a, Float4 b) => a.X * b.X + a.Y * b.Y + a.Z * b.Z + a.W * b.W;
}

/// <summary>
/// The dense-layer products for ILGPU's CPU accelerator: barrier-free, each thread computes a 4 x 8
/// block of the output, and every load fetches four consecutive floats of a row (a <see cref="Float4"/>),
/// which cuts the per-access overhead of the CPU accelerator's generated code (measured: 2.1x the
/// scalar 4x4 kernel, see benchmarks/RESULTS.md). They need the dimensions they load along to be
/// multiples of 4 (checked by the caller, which falls back to <see cref="GemmKernels"/>); the other
/// dimensions may be anything: loads are clamped and stores guarded at the edges.
/// Row-major float32 throughout; launch with ceil(rows/4) * ceil(cols/8) threads. Each product's inputs pass through
/// the kernel's <see cref="IInputRounding"/> as they are loaded (<see cref="NoRounding"/>: fp32; TF32 or bf16 emulated);
/// the sums stay fp32, and the bias, the activation and the bias gradient read unrounded values.
/// </summary>
internal static class VectorGemmKernels
{
    public const int Rows = 4, Cols = 8;

    public static int Threads(int rows, int cols) => ((rows + Rows - 1) / Rows) * ((cols + Cols - 1) / Cols);

    /// <summary>The four values as the multiplier sees them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Float4 Round<TRound>(Float4 v) where TRound : struct, IInputRounding
    {
        TRound rd = default;
        return new Float4(rd.Round(v.X), rd.Round(v.Y), rd.Round(v.Z), rd.Round(v.W));
    }

    // Forward dense layer: Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]), act an Activations code; X and W rounded by TRound. Needs k % 4 == 0.
    public static void DenseForward<TRound>(Index1D t, ArrayView<float> xs, ArrayView<float> ws, ArrayView<float> b,
        ArrayView<float> y, int m, int n, int k, int act)
        where TRound : struct, IInputRounding
    {
        var x = xs.Cast<Float4>();
        var w = ws.Cast<Float4>();
        int k4 = k / 4, nb = (n + Cols - 1) / Cols;
        int i0 = (t / nb) * Rows, j0 = (t % nb) * Cols;
        int x0 = Math.Min(i0, m - 1) * k4, x1 = Math.Min(i0 + 1, m - 1) * k4, x2 = Math.Min(i0 + 2, m - 1) * k4, x3 = Math.Min(i0 + 3, m - 1) * k4;
        int w0 = Math.Min(j0, n - 1) * k4, w1 = Math.Min(j0 + 1, n - 1) * k4, w2 = Math.Min(j0 + 2, n - 1) * k4, w3 = Math.Min(j0 + 3, n - 1) * k4;
        int w4 = Math.Min(j0 + 4, n - 1) * k4, w5 = Math.Min(j0 + 5, n - 1) * k4, w6 = Math.Min(j0 + 6, n - 1) * k4, w7 = Math.Min(j0 + 7, n - 1) * k4;
        Float4 c0 = default, c1 = default, c2 = default, c3 = default;   // row i0+r, columns j0..j0+3
        Float4 d0 = default, d1 = default, d2 = default, d3 = default;   // row i0+r, columns j0+4..j0+7
        for (int p = 0; p < k4; p++)
        {
            Float4 a0 = Round<TRound>(x[x0 + p]), a1 = Round<TRound>(x[x1 + p]), a2 = Round<TRound>(x[x2 + p]), a3 = Round<TRound>(x[x3 + p]);
            Float4 b0 = Round<TRound>(w[w0 + p]), b1 = Round<TRound>(w[w1 + p]), b2 = Round<TRound>(w[w2 + p]), b3 = Round<TRound>(w[w3 + p]);
            c0.X += Float4.Dot(a0, b0); c0.Y += Float4.Dot(a0, b1); c0.Z += Float4.Dot(a0, b2); c0.W += Float4.Dot(a0, b3);
            c1.X += Float4.Dot(a1, b0); c1.Y += Float4.Dot(a1, b1); c1.Z += Float4.Dot(a1, b2); c1.W += Float4.Dot(a1, b3);
            c2.X += Float4.Dot(a2, b0); c2.Y += Float4.Dot(a2, b1); c2.Z += Float4.Dot(a2, b2); c2.W += Float4.Dot(a2, b3);
            c3.X += Float4.Dot(a3, b0); c3.Y += Float4.Dot(a3, b1); c3.Z += Float4.Dot(a3, b2); c3.W += Float4.Dot(a3, b3);
            b0 = Round<TRound>(w[w4 + p]); b1 = Round<TRound>(w[w5 + p]); b2 = Round<TRound>(w[w6 + p]); b3 = Round<TRound>(w[w7 + p]);
            d0.X += Float4.Dot(a0, b0); d0.Y += Float4.Dot(a0, b1); d0.Z += Float4.Dot(a0, b2); d0.W += Float4.Dot(a0, b3);
            d1.X += Float4.Dot(a1, b0); d1.Y += Float4.Dot(a1, b1); d1.Z += Float4.Dot(a1, b2); d1.W += Float4.Dot(a1, b3);
            d2.X += Float4.Dot(a2, b0); d2.Y += Float4.Dot(a2, b1); d2.Z += Float4.Dot(a2, b2); d2.W += Float4.Dot(a2, b3);
            d3.X += Float4.Dot(a3, b0); d3.Y += Float4.Dot(a3, b1); d3.Z += Float4.Dot(a3, b2); d3.W += Float4.Dot(a3, b3);
        }
        StoreBiasAct(y, b, i0, j0, m, n, act, c0, d0);
        StoreBiasAct(y, b, i0 + 1, j0, m, n, act, c1, d1);
        StoreBiasAct(y, b, i0 + 2, j0, m, n, act, c2, d2);
        StoreBiasAct(y, b, i0 + 3, j0, m, n, act, c3, d3);
    }

    // Weight gradient: dW[n,k] = dZ[m,n]^T . H[m,k] (outer products summed over the m batch rows). Needs n % 4 == 0 and k % 4 == 0.
    // With bias != 0 also db[n] = column sums of dZ, by the threads of the first column block (GemmKernels.ColumnSums), of dZ
    // as it is; the product's dZ and H rounded by TRound.
    public static void WeightGrad<TRound>(Index1D t, ArrayView<float> dzs, ArrayView<float> hs, ArrayView<float> dw, ArrayView<float> db,
        int m, int n, int k, int bias)
        where TRound : struct, IInputRounding
    {
        var dz = dzs.Cast<Float4>();
        var h = hs.Cast<Float4>();
        int n4 = n / 4, k4 = k / 4, kb = (k + Cols - 1) / Cols;
        int i0 = (t / kb) * Rows, j0 = (t % kb) * Cols;      // i0 < n always (n % 4 == 0)
        int zi = i0 / 4, ha = j0 / 4, hb = Math.Min(j0 / 4 + 1, k4 - 1);
        Float4 c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        for (int r = 0; r < m; r++)
        {
            Float4 a = Round<TRound>(dz[r * n4 + zi]);
            Float4 u = Round<TRound>(h[r * k4 + ha]), v = Round<TRound>(h[r * k4 + hb]);
            c0 = Float4.Madd(c0, a.X, u); c1 = Float4.Madd(c1, a.Y, u); c2 = Float4.Madd(c2, a.Z, u); c3 = Float4.Madd(c3, a.W, u);
            d0 = Float4.Madd(d0, a.X, v); d1 = Float4.Madd(d1, a.Y, v); d2 = Float4.Madd(d2, a.Z, v); d3 = Float4.Madd(d3, a.W, v);
        }
        Store(dw, i0, j0, n, k, c0, d0);
        Store(dw, i0 + 1, j0, n, k, c1, d1);
        Store(dw, i0 + 2, j0, n, k, c2, d2);
        Store(dw, i0 + 3, j0, n, k, c3, d3);
        if (bias != 0 && j0 == 0) GemmKernels.ColumnSums(dzs, db, i0, m, n);
    }

    // Input gradient through the previous layer's activation: dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]); dZ and W rounded by TRound.
    // Needs n % 4 == 0 and k % 4 == 0.
    public static void InputGrad<TRound>(Index1D t, ArrayView<float> dzs, ArrayView<float> ws, ArrayView<float> h, ArrayView<float> dx,
        int m, int n, int k, int act)
        where TRound : struct, IInputRounding
    {
        var dz = dzs.Cast<Float4>();
        var w = ws.Cast<Float4>();
        int n4 = n / 4, k4 = k / 4, kb = (k + Cols - 1) / Cols;
        int i0 = (t / kb) * Rows, j0 = (t % kb) * Cols;
        int z0 = Math.Min(i0, m - 1) * n4, z1 = Math.Min(i0 + 1, m - 1) * n4, z2 = Math.Min(i0 + 2, m - 1) * n4, z3 = Math.Min(i0 + 3, m - 1) * n4;
        int wa = j0 / 4, wb = Math.Min(j0 / 4 + 1, k4 - 1);
        Float4 c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        for (int p = 0; p < n4; p++)
        {
            Float4 a0 = Round<TRound>(dz[z0 + p]), a1 = Round<TRound>(dz[z1 + p]), a2 = Round<TRound>(dz[z2 + p]), a3 = Round<TRound>(dz[z3 + p]);
            int r = 4 * p * k4;
            Float4 u = Round<TRound>(w[r + wa]), v = Round<TRound>(w[r + wb]);   // W row 4p
            c0 = Float4.Madd(c0, a0.X, u); c1 = Float4.Madd(c1, a1.X, u); c2 = Float4.Madd(c2, a2.X, u); c3 = Float4.Madd(c3, a3.X, u);
            d0 = Float4.Madd(d0, a0.X, v); d1 = Float4.Madd(d1, a1.X, v); d2 = Float4.Madd(d2, a2.X, v); d3 = Float4.Madd(d3, a3.X, v);
            r += k4; u = Round<TRound>(w[r + wa]); v = Round<TRound>(w[r + wb]);                      // W row 4p+1
            c0 = Float4.Madd(c0, a0.Y, u); c1 = Float4.Madd(c1, a1.Y, u); c2 = Float4.Madd(c2, a2.Y, u); c3 = Float4.Madd(c3, a3.Y, u);
            d0 = Float4.Madd(d0, a0.Y, v); d1 = Float4.Madd(d1, a1.Y, v); d2 = Float4.Madd(d2, a2.Y, v); d3 = Float4.Madd(d3, a3.Y, v);
            r += k4; u = Round<TRound>(w[r + wa]); v = Round<TRound>(w[r + wb]);                      // W row 4p+2
            c0 = Float4.Madd(c0, a0.Z, u); c1 = Float4.Madd(c1, a1.Z, u); c2 = Float4.Madd(c2, a2.Z, u); c3 = Float4.Madd(c3, a3.Z, u);
            d0 = Float4.Madd(d0, a0.Z, v); d1 = Float4.Madd(d1, a1.Z, v); d2 = Float4.Madd(d2, a2.Z, v); d3 = Float4.Madd(d3, a3.Z, v);
            r += k4; u = Round<TRound>(w[r + wa]); v = Round<TRound>(w[r + wb]);                      // W row 4p+3
            c0 = Float4.Madd(c0, a0.W, u); c1 = Float4.Madd(c1, a1.W, u); c2 = Float4.Madd(c2, a2.W, u); c3 = Float4.Madd(c3, a3.W, u);
            d0 = Float4.Madd(d0, a0.W, v); d1 = Float4.Madd(d1, a1.W, v); d2 = Float4.Madd(d2, a2.W, v); d3 = Float4.Madd(d3, a3.W, v);
        }
        StoreMasked(dx, h, i0, j0, m, k, act, c0, d0);
        StoreMasked(dx, h, i0 + 1, j0, m, k, act, c1, d1);
        StoreMasked(dx, h, i0 + 2, j0, m, k, act, c2, d2);
        StoreMasked(dx, h, i0 + 3, j0, m, k, act, c3, d3);
    }

    static float Get(Float4 lo, Float4 hi, int c) => c switch
    {
        0 => lo.X, 1 => lo.Y, 2 => lo.Z, 3 => lo.W, 4 => hi.X, 5 => hi.Y, 6 => hi.Z, _ => hi.W,
    };

    static void Store(ArrayView<float> c, int i, int j0, int rows, int cols, Float4 lo, Float4 hi)
    {
        if (i >= rows) return;
        int end = Math.Min(Cols, cols - j0);
        for (int q = 0; q < end; q++) c[(long)i * cols + j0 + q] = Get(lo, hi, q);
    }

    static void StoreBiasAct(ArrayView<float> y, ArrayView<float> b, int i, int j0, int rows, int cols, int act, Float4 lo, Float4 hi)
    {
        if (i >= rows) return;
        int end = Math.Min(Cols, cols - j0);
        for (int q = 0; q < end; q++)
        {
            y[(long)i * cols + j0 + q] = Activations.Apply(Get(lo, hi, q) + b[j0 + q], act);
        }
    }

    static void StoreMasked(ArrayView<float> dx, ArrayView<float> h, int i, int j0, int rows, int cols, int act, Float4 lo, Float4 hi)
    {
        if (i >= rows) return;
        int end = Math.Min(Cols, cols - j0);
        for (int q = 0; q < end; q++)
        {
            long e = (long)i * cols + j0 + q;
            dx[e] = Activations.Backprop(Get(lo, hi, q), h[e], act);
        }
    }
}
