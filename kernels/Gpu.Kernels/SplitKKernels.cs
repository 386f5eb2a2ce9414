using ILGPU;

namespace Gpu.Kernels;

/// <summary>
/// The scalar arguments of a strided product C[i,j] = epilogue(sum_p A(i,p) B(j,p)), A(i,p) = a[i*ARow + p*ACol],
/// B(j,p) = b[j*BRow + p*BCol] (one struct: ILGPU's loaders take at most 14 kernel parameters), as the blocked and the
/// tensor-core kernels and the split-K reduction take them.
/// </summary>
internal struct GemmArgs
{
    /// <summary>C is [Rows, Cols] row-major; the contraction runs over p &lt; Depth.</summary>
    public int Rows, Cols, Depth;
    /// <summary>A(i,p) = a[i*ARow + p*ACol], B(j,p) = b[j*BRow + p*BCol].</summary>
    public int ARow, ACol, BRow, BCol;
    /// <summary>An <see cref="Epilogue"/> code and an <see cref="Activations"/> code.</summary>
    public int Epilogue, Act;
    /// <summary>Split-K: split s covers p in [s*SplitDepth, min((s+1)*SplitDepth, Depth)); SplitDepth is a multiple of the kernel's k step. Splits == 1: no split.</summary>
    public int Splits, SplitDepth;
    /// <summary>Bit 0: a's view starts on a 16-byte boundary; bit 1: b's (the host knows; the kernel checks the strides itself).</summary>
    public int Aligned;
}

/// <summary>
/// The second pass of a split-K product: a product cut into <see cref="GemmArgs.Splits"/> contiguous ranges of p writes each
/// range's raw partial sums to a workspace [Splits, Rows, Cols]; this adds them in split order and applies the epilogue. No
/// atomics, so a plan gives the same bits on every run.
/// </summary>
internal static class SplitKKernels
{
    // c[i,j] = epilogue(sum over s < Splits of partials[s,i,j], added in order s = 0, 1, ...), one thread per element of c[rows, cols];
    // with RowSums the threads of column 0 also write aux[i] = sum over p of A(i,p) (a read with g's strides), in p order.
    public static void ReduceSplits(Index1D e, ArrayView<float> partials, ArrayView<float> c, ArrayView<float> aux, ArrayView<float> a, GemmArgs g)
    {
        if (e >= (long)g.Rows * g.Cols) return;
        long size = (long)g.Rows * g.Cols;
        float v = partials[e];
        for (int s = 1; s < g.Splits; s++) v += partials[s * size + e];
        int i = e / g.Cols, j = e - i * g.Cols;
        c[e] = Epilogue.Apply(v, aux, i, j, g.Cols, g.Epilogue, g.Act);
        if (g.Epilogue == Epilogue.RowSums && j == 0)
        {
            float sum = 0f;
            for (int p = 0; p < g.Depth; p++) sum += a[(long)i * g.ARow + (long)p * g.ACol];
            aux[i] = sum;
        }
    }
}
