using ILGPU;

namespace Gpu.Kernels;

/// <summary>
/// Inverted dropout with a counter-based random number: whether element i of layer l is kept at
/// training step s depends only on (seed, s, l, i), so the backward pass recomputes the same mask
/// instead of storing it, and a run is reproducible. The step s is read from device memory (step[0].Step).
/// </summary>
internal static class DropoutKernels
{
    // Forward, in place on H[n] (a hidden layer's output, row-major): H[i] = kept(i) ? H[i] / (1 - rate) : 0,
    // kept(i) = CounterRng.Uniform(seed, s, layer, i) >= rate, s = step[0].Step. Thread t does [t*chunk, (t+1)*chunk).
    public static void Forward(Index1D t, ArrayView<float> h, float rate, long seed, ArrayView<StepValues> step, int layer, int n, int chunk)
    {
        int start = t * chunk, end = Math.Min(start + chunk, n);
        float scale = 1f / (1f - rate);
        long s = step[0].Step;
        for (int i = start; i < end; i++)
            h[i] = CounterRng.Uniform(seed, s, layer, i) >= rate ? h[i] * scale : 0f;
    }

    // Backward through dropout and the activation, in place on G[n] = dL/dH' (H' = the dropped, scaled output):
    // G[i] = kept(i) ? G[i] * act'(from H'[i] * (1 - rate)) / (1 - rate) : 0, act an Activations code.
    public static void Backward(Index1D t, ArrayView<float> g, ArrayView<float> hDropped, float rate, long seed, ArrayView<StepValues> step, int layer,
        int act, int n, int chunk)
    {
        int start = t * chunk, end = Math.Min(start + chunk, n);
        float keep = 1f - rate, scale = 1f / keep;
        long s = step[0].Step;
        for (int i = start; i < end; i++)
            g[i] = CounterRng.Uniform(seed, s, layer, i) >= rate ? Activations.Backprop(g[i] * scale, hDropped[i] * keep, act) : 0f;
    }
}
