namespace Gpu.Kernels;

/// <summary>
/// Element-wise activations used in the GEMM epilogues. Codes are plain ints so kernels can take
/// them as arguments. Each derivative is written in terms of the activation's output h, which is
/// what the backward pass keeps: relu' = (h &gt; 0), sigmoid' = h (1 - h), tanh' = 1 - h^2,
/// leaky relu' = 1 if h &gt; 0 else 0.01.
/// tanh is <see cref="TanhF"/>, not XMath.Tanh: on CUDA (sm_75 and newer) XMath.Tanh becomes the PTX
/// instruction tanh.approx.f32, whose relative error (about 5e-4) is 50 times the kernel checks' 1e-5. Every exp is
/// <see cref="ExactMath.Exp"/>, not XMath.Exp (ex2.approx.f32 on CUDA): no kernel holds an approximate instruction.
/// </summary>
internal static class Activations
{
    public const int Identity = 0, Relu = 1, Sigmoid = 2, Tanh = 3, LeakyRelu = 4;
    public const float LeakySlope = 0.01f;

    // h = act(z). NaN passes through every branch (so a diverging run is seen, not hidden).
    public static float Apply(float z, int act)
    {
        if (act == Relu) return z < 0f ? 0f : z;
        if (act == Sigmoid) return 1f / (1f + ExactMath.Exp(-z));
        if (act == Tanh) return TanhF(z);
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

    /// <summary>Above this |z| tanh is computed from exp(2|z|); below it from an odd polynomial.</summary>
    public const float TanhSplit = 0.625f;

    /// <summary>
    /// tanh(z) to about 3 ulp (relative error below 2e-7 against float64, tests/Gpu.Tests/Kernels/TanhTests.cs) from plain arithmetic and
    /// one exp (<see cref="ExactMath.Exp"/>), the same code on every device (Cephes' tanhf): for |z| &gt; 0.625, 1 - 2 / (exp(2|z|) + 1)
    /// with z's sign, which keeps exp's relative error d to at most 0.62 d in the result; below, z + z^3 P(z^2) with a degree-4
    /// minimax P (no exp, no cancellation near 0).
    /// Saturates to +-1 for large |z|; NaN stays NaN.
    /// </summary>
    public static float TanhF(float z)
    {
        float a = z < 0f ? -z : z;
        if (a > TanhSplit)
        {
            float t = TanhFromExp(ExactMath.Exp(a + a));
            return z < 0f ? -t : t;
        }
        float s = z * z;
        float p = (((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) * s - 3.33332819422e-1f;
        return p * s * z + z;
    }

    /// <summary>tanh(a) for a &gt; <see cref="TanhSplit"/> from e = exp(2a) (public so a test can feed it exp values with a given error).</summary>
    public static float TanhFromExp(float e) => 1f - 2f / (e + 1f);
}
