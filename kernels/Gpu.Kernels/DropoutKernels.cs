using ILGPU;

namespace Gpu.Kernels;

/// <summary>
/// Inverted dropout with a counter-based random number: whether element i of layer l is kept at
/// training step s depends only on (seed, s, l, i), so the backward pass recomputes the same mask
/// instead of storing it, and a run is reproducible.
/// </summary>
public static class DropoutKernels
{
    /// <summary>A uniform number in [0, 1) from (seed, step, layer, index): SplitMix64-style mixing.</summary>
    public static float Uniform(long seed, long step, int layer, int index)
    {
        ulong z = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)step * 0xBF58476D1CE4E5B9UL ^ ((ulong)layer << 32 | (uint)index) * 0x94D049BB133111EBUL;
        z ^= z >> 30; z *= 0xBF58476D1CE4E5B9UL;
        z ^= z >> 27; z *= 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 40) * (1f / (1 << 24));
    }

    // Forward, in place on H[n] (a hidden layer's output, row-major): H[i] = kept(i) ? H[i] / (1 - rate) : 0,
    // kept(i) = Uniform(seed, step, layer, i) >= rate. Thread t does [t*chunk, (t+1)*chunk).
    public static void Forward(Index1D t, ArrayView<float> h, float rate, long seed, long step, int layer, int n, int chunk)
    {
        int start = t * chunk, end = Math.Min(start + chunk, n);
        float scale = 1f / (1f - rate);
        for (int i = start; i < end; i++)
            h[i] = Uniform(seed, step, layer, i) >= rate ? h[i] * scale : 0f;
    }

    // Backward through dropout and the activation, in place on G[n] = dL/dH' (H' = the dropped, scaled output):
    // G[i] = kept(i) ? G[i] * act'(from H'[i] * (1 - rate)) / (1 - rate) : 0, act an Activations code.
    public static void Backward(Index1D t, ArrayView<float> g, ArrayView<float> hDropped, float rate, long seed, long step, int layer,
        int act, int n, int chunk)
    {
        int start = t * chunk, end = Math.Min(start + chunk, n);
        float keep = 1f - rate, scale = 1f / keep;
        for (int i = start; i < end; i++)
            g[i] = Uniform(seed, step, layer, i) >= rate ? Activations.Backprop(g[i] * scale, hDropped[i] * keep, act) : 0f;
    }
}
