using ILGPU;

namespace Gpu.Kernels;

/// <summary>Device-side minibatch assembly from a dataset resident on the device as bytes.</summary>
public static class DataKernels
{
    // Gather and normalise one batch: X[r,c] = pixels[order[offset + r], c] / 255 - 0.5 for X [b,d] row-major,
    // pixels [count,d] bytes row-major, and y[r] = labels[order[offset + r]]. Thread t does elements
    // [t*chunk, (t+1)*chunk) of X (chunk 1 on a GPU for coalescing; large on the CPU to amortise launch cost).
    public static void GatherBatch(Index1D t, ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order,
        ArrayView<float> x, ArrayView<int> y, int offset, int b, int d, int chunk)
    {
        int total = b * d;
        int start = t * chunk, end = Math.Min(start + chunk, total);
        for (int e = start; e < end; e++)
        {
            int row = e / d, col = e % d;
            x[e] = pixels[(long)order[offset + row] * d + col] * (1f / 255f) - 0.5f;
            if (col == 0) y[row] = labels[order[offset + row]];
        }
    }
}
