using ILGPU;
using ILGPU.Algorithms;

namespace Gpu.Kernels;

/// <summary>Optimizer updates over the whole flat parameter vector (all weights first, then all biases).</summary>
internal static class OptimizerKernels
{
    // SGD with momentum and L2 on weights only, for each element i of the flat vector (length n):
    // g = grad[i] + (i < weightCount ? l2 * p[i] : 0); v[i] = momentum * v[i] + g;
    // p[i] -= lr * v[i], or with nesterov != 0: p[i] -= lr * (g + momentum * v[i]); lr = step[0].Lr.
    // Thread t updates i in [t*chunk, (t+1)*chunk) (chunk 1 on a GPU; large on the CPU).
    public static void SgdMomentum(Index1D t, ArrayView<float> p, ArrayView<float> grad, ArrayView<float> v,
        ArrayView<StepValues> step, float momentum, float l2, int weightCount, int n, int chunk, int nesterov)
    {
        int start = t * chunk, end = Math.Min(start + chunk, n);
        float lr = step[0].Lr;
        for (int i = start; i < end; i++)
        {
            float g = grad[i] + (i < weightCount ? l2 * p[i] : 0f);
            float vi = momentum * v[i] + g;
            v[i] = vi;
            p[i] = p[i] - lr * (nesterov != 0 ? g + momentum * vi : vi);
        }
    }

    // Adam / AdamW over the flat vector (length n), at learning rate step[0].Lr and step t = step[0].Step + 1 given through
    // step[0].C1 = 1 - beta1^t and step[0].C2 = 1 - beta2^t:
    // Adam:  g = grad + l2 * p (weights only);  AdamW (s.Decoupled != 0): g = grad, and p also decays by lr * l2 * p (weights only).
    // m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  p -= lr * (m / c1) / (sqrt(v / c2) + eps).
    // (XMath.Sqrt and the divisions are IEEE, correctly rounded: sqrt.rn.f32 and div.rn.f32 in CUDA's PTX.)
    public static void Adam(Index1D t, ArrayView<float> p, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v,
        ArrayView<StepValues> step, AdamSettings s, int weightCount, int n, int chunk)
    {
        StepValues now = step[0];
        float lr = now.Lr, c1 = now.C1, c2 = now.C2;
        float beta1 = s.Beta1, beta2 = s.Beta2, oneMinusBeta1 = s.OneMinusBeta1, oneMinusBeta2 = s.OneMinusBeta2, eps = s.Eps, l2 = s.L2;
        int decoupled = s.Decoupled;
        int start = t * chunk, end = Math.Min(start + chunk, n);
        for (int i = start; i < end; i++)
        {
            float pi = p[i];
            float decay = i < weightCount ? l2 * pi : 0f;
            float g = grad[i] + (decoupled != 0 ? 0f : decay);
            float mi = beta1 * m[i] + oneMinusBeta1 * g;
            float vi = beta2 * v[i] + oneMinusBeta2 * g * g;
            m[i] = mi;
            v[i] = vi;
            float update = (mi / c1) / (XMath.Sqrt(vi / c2) + eps) + (decoupled != 0 ? decay : 0f);
            p[i] = pi - lr * update;
        }
    }
}

/// <summary>Adam/AdamW's constants, each computed on the host in double and rounded to float once: the decays, 1 - beta1,
/// 1 - beta2, epsilon and the weight decay (what changes per step, the learning rate and the bias corrections, is in <see cref="StepValues"/>).</summary>
internal struct AdamSettings
{
    public float Beta1, Beta2, OneMinusBeta1, OneMinusBeta2, Eps, L2;
    public int Decoupled;
}
