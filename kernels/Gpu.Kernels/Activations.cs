using ILGPU.Algorithms;

namespace Gpu.Kernels;

/// <summary>
/// Element-wise activations used in the GEMM epilogues. Codes are plain ints so kernels can take
/// them as arguments. Each derivative is written in terms of the activation's output h, which is
/// what the backward pass keeps: relu' = (h &gt; 0), sigmoid' = h (1 - h), tanh' = 1 - h^2,
/// leaky relu' = 1 if h &gt; 0 else 0.01.
/// </summary>
public static class Activations
{
    public const int Identity = 0, Relu = 1, Sigmoid = 2, Tanh = 3, LeakyRelu = 4;
    public const float LeakySlope = 0.01f;

    // h = act(z). NaN passes through every branch (so a diverging run is seen, not hidden).
    public static float Apply(float z, int act)
    {
        if (act == Relu) return z < 0f ? 0f : z;
        if (act == Sigmoid) return 1f / (1f + XMath.Exp(-z));
        if (act == Tanh) return XMath.Tanh(z);
        if (act == LeakyRelu) return z < 0f ? LeakySlope * z : z;
        return z;
    }

    // g * act'(z), with act'(z) written from the output h = act(z).
    public static float Backprop(float g, float h, int act)
    {
        if (act == Relu) return h > 0f ? g : 0f;
        if (act == Sigmoid) return g * h * (1f - h);
        if (act == Tanh) return g * (1f - h * h);
        if (act == LeakyRelu) return h > 0f ? g : LeakySlope * g;
        return g;
    }
}
