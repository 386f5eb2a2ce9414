using ILGPU;

namespace Gpu.Kernels;

/// <summary>Device-side minibatch assembly from a dataset resident on the device as bytes.</summary>
internal static class DataKernels
{
    // Gather and normalise one batch: X[r,c] = pixels[order[offset + r], c] / 255 - 0.5 for X [b,d] row-major,
    // pixels [count,d] bytes row-major, and y[r] = labels[order[offset + r]], offset = step[0].Offset. Thread t does elements
    // [t*chunk, (t+1)*chunk) of X (chunk 1 on a GPU for coalescing; large on the CPU to amortise launch cost),
    // a row's stretch at a time, so the inner copy is contiguous (a CPU compiler vectorises it).
    public static void GatherBatch(Index1D t, ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order,
        ArrayView<float> x, ArrayView<int> y, ArrayView<StepValues> step, int b, int d, int chunk)
    {
        int total = b * d, offset = step[0].Offset;
        int start = t * chunk, end = Math.Min(start + chunk, total);
        for (int e = start; e < end;)
        {
            int row = e / d, col = e % d;
            int src = order[offset + row];
            if (col == 0) y[row] = labels[src];
            int stop = Math.Min(end, (row + 1) * d);
            long shift = (long)src * d - (long)row * d;   // pixels[shift + e] is X[e]'s pixel
            for (; e < stop; e++) x[e] = Normalize(pixels[shift + e]);
        }
    }

    // Gather with random shifts (augmentation): like GatherBatch for images of width w (d = w * h), but image
    // row r is moved by (sx, sy) in [-maxShift, maxShift]^2, drawn from CounterRng(seed, pass, source index, 0/1) with
    // offset = step[0].Offset and pass = step[0].Pass; pixels shifted in from outside are 0 (normalised: -0.5).
    public static void GatherBatchShifted(Index1D t, ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order,
        ArrayView<float> x, ArrayView<int> y, ArrayView<StepValues> step, int b, int d, int chunk, int w, int maxShift, long seed)
    {
        int total = b * d, h = d / w, offset = step[0].Offset;
        long pass = step[0].Pass;
        int start = t * chunk, end = Math.Min(start + chunk, total);
        for (int e = start; e < end; e++)
        {
            int row = e / d, col = e % d;
            int src = order[offset + row];
            int sx = Shift(seed, pass, src, 0, maxShift), sy = Shift(seed, pass, src, 1, maxShift);
            int p = ShiftedSource(col, w, h, sx, sy);
            x[e] = Normalize(p < d ? pixels[(long)src * d + p] : (byte)0);
            if (col == 0) y[row] = labels[src];
        }
    }

    /// <summary>The preprocessing of the NumPy code (README): x / 255 - 0.5 (the host's streamed path calls it too).</summary>
    public static float Normalize(byte pixel) => pixel * (1f / 255f) - 0.5f;

    /// <summary>
    /// Where pixel <paramref name="col"/> of a w x h image shifted by (sx, sy) comes from, or w * h (one past the
    /// image) when it is shifted in from outside. (Not -1: ILGPU's OpenCL C spells an int -1 as 4294967295, which
    /// the driver's compiler warns about on stderr.)
    /// </summary>
    public static int ShiftedSource(int col, int w, int h, int sx, int sy)
    {
        int pr = col / w - sy, pc = col % w - sx;
        return pr >= 0 && pr < h && pc >= 0 && pc < w ? pr * w + pc : w * h;
    }

    /// <summary>The shift of image <paramref name="src"/> along axis 0 (x) or 1 (y) in pass <paramref name="pass"/>: an integer in [-maxShift, maxShift].</summary>
    public static int Shift(long seed, long pass, int src, int axis, int maxShift) =>
        Math.Min(2 * maxShift, (int)(CounterRng.Uniform(seed ^ 0x5EED5A17L, pass, axis, src) * (2 * maxShift + 1))) - maxShift;
}
