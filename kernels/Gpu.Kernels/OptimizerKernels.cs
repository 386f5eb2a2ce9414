using ILGPU;

namespace Gpu.Kernels;

/// <summary>Optimizer updates over the whole flat parameter vector (all weights first, then all biases).</summary>
public static class OptimizerKernels
{
    // SGD with momentum and L2 on weights only, for each element i of the flat vector (length n):
    // g = grad[i] + (i < weightCount ? l2 * p[i] : 0); v[i] = momentum * v[i] + g; p[i] -= lr * v[i].
    // Thread t updates i in [t*chunk, (t+1)*chunk) (chunk 1 on a GPU; large on the CPU).
    public static void SgdMomentum(Index1D t, ArrayView<float> p, ArrayView<float> grad, ArrayView<float> v,
        float lr, float momentum, float l2, int weightCount, int n, int chunk)
    {
        int start = t * chunk, end = Math.Min(start + chunk, n);
        for (int i = start; i < end; i++)
        {
            float g = grad[i] + (i < weightCount ? l2 * p[i] : 0f);
            float vi = momentum * v[i] + g;
            v[i] = vi;
            p[i] = p[i] - lr * vi;
        }
    }
}
