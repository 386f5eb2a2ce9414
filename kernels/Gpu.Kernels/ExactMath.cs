namespace Gpu.Kernels;

/// <summary>
/// exp, log and log1p in float from plain float arithmetic and bit manipulation, the same code on every device, so no
/// kernel depends on a device's own exp and log (on CUDA, ILGPU lowers XMath.Exp and XMath.Log to ex2.approx.f32 and
/// lg2.approx.f32, whose absolute error near 1 makes a confident softmax row's loss wrong by percents).
/// Each is within about 1 ulp of the exact result over the whole float range (tests/Gpu.Tests/Kernels/ExactMathTests.cs
/// sweeps them against float64 on the host and on every device), with IEEE results at the edges: subnormal inputs and
/// outputs, overflow to +inf, underflow to 0, NaN in NaN out, exp(-inf) = 0, log(0) = -inf, log(negative) = NaN.
/// Written so that a compiler fusing a multiply and an add (ptxas does, on CUDA) only makes them more exact: every
/// product that must be exact (q * <see cref="Ln2Hi"/>) is exact in float, and no result depends on a rounding that a
/// fused multiply-add would skip. Divisions are IEEE divisions (div.rn.f32 on CUDA).
/// </summary>
internal static class ExactMath
{
    /// <summary>log2(e), to round x / ln 2 to the nearest integer.</summary>
    const float Log2E = 1.44269504f;

    /// <summary>ln 2's leading 15 bits (0x3f317200): q * Ln2Hi is exact for every |q| &lt; 512.</summary>
    const float Ln2Hi = 0xb17200 / (float)(1 << 24);

    /// <summary>ln 2 - <see cref="Ln2Hi"/>, rounded to float.</summary>
    const float Ln2Lo = 1.42860677e-6f;

    /// <summary>Above this exp overflows to +inf (exp(88.7228) is float.MaxValue already; 88.8 rounds q to 128, which the scaling turns into inf).</summary>
    const float ExpOverflow = 88.8f;

    /// <summary>Below this exp underflows to +0 (exp(-103.98) is under half the smallest subnormal, 2^-150).</summary>
    const float ExpUnderflow = -104f;

    /// <summary>
    /// e^x. Cody-Waite reduction x = q ln 2 + s (q the integer nearest x / ln 2, |s| &lt;= ln 2 / 2, ln 2 in two parts so
    /// that s carries no error beyond its own rounding), then e^s = 1 + s + s^2 P(s) with Cephes' degree-5 minimax P,
    /// then 2^q in two exact steps (so that subnormal results are rounded once and 2^128 becomes inf).
    /// </summary>
    public static float Exp(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x > ExpOverflow) return float.PositiveInfinity;
        if (x < ExpUnderflow) return 0f;
        int q = (int)(x * Log2E + (x < 0f ? -0.5f : 0.5f));
        float s = x - q * Ln2Hi;
        s -= q * Ln2Lo;
        float p = 1.9875691500e-4f;
        p = p * s + 1.3981999507e-3f;
        p = p * s + 8.3334519073e-3f;
        p = p * s + 4.1665795894e-2f;
        p = p * s + 1.6666665459e-1f;
        p = p * s + 5.0000001201e-1f;
        float e = 1f + (s * s * p + s);
        return ScaleByPowerOfTwo(e, q);
    }

    /// <summary>v 2^q for v near 1 and -150 &lt;= q &lt;= 128: two exact power-of-two factors, the first product exact, the second rounded once.</summary>
    static float ScaleByPowerOfTwo(float v, int q)
    {
        int half = q >> 1;
        return v * PowerOfTwo(half) * PowerOfTwo(q - half);
    }

    /// <summary>2^k for -126 &lt;= k &lt;= 127, built from its exponent bits.</summary>
    static float PowerOfTwo(int k) => BitConverter.Int32BitsToSingle((k + 127) << 23);

    /// <summary>
    /// ln x (fdlibm's logf, as in musl): x = 2^k (1 + f) with 1 + f in [sqrt(2)/2, sqrt(2)) taken from the bits (a subnormal
    /// x scaled by 2^25 first), then ln(1 + f) from s = f / (2 + f) (see <see cref="LogOfReduced"/>).
    /// </summary>
    public static float Log(float x)
    {
        int bits = BitConverter.SingleToInt32Bits(x);
        int k = 0;
        if (bits < 0x00800000)   // zero, subnormal, or the sign bit set
        {
            if ((bits & 0x7fffffff) == 0) return float.NegativeInfinity;
            if (bits < 0) return float.NaN;   // negative numbers, -inf, and NaN with its sign bit set
            k = -25;
            bits = BitConverter.SingleToInt32Bits(x * 33554432f);   // 2^25: the subnormal made normal
        }
        else if (bits >= 0x7f800000) return x;   // +inf, NaN
        bits += 0x3f800000 - 0x3f3504f3;   // move the cut between exponents from 1 to sqrt(2)/2
        k += (bits >> 23) - 127;
        float f = BitConverter.Int32BitsToSingle((bits & 0x007fffff) + 0x3f3504f3) - 1f;
        return LogOfReduced(f, k, 0f);
    }

    /// <summary>
    /// ln(1 + x), exact for tiny x where ln(1 + x) rounds to x (fdlibm's log1pf, as in musl): for 1 + x in
    /// [sqrt(2)/2, sqrt(2)) f = x itself; otherwise u = 1 + x (rounded) is reduced as in <see cref="Log"/> and
    /// c = (1 + x - u) / u corrects for u's rounding.
    /// </summary>
    public static float Log1p(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x <= -1f) return x == -1f ? float.NegativeInfinity : float.NaN;
        if (x == float.PositiveInfinity) return x;
        if (Abs(x) < 5.96046448e-8f) return x;   // |x| < 2^-24: x - x^2/2 rounds to x (and 0, -0 and subnormals stay themselves)
        if (x < 0.41421354f && x > -0.29289323f) return LogOfReduced(x, 0, 0f);   // 1 + x in (1 - (1 - sqrt(2)/2), sqrt(2))
        float u = 1f + x;
        int bits = BitConverter.SingleToInt32Bits(u) + (0x3f800000 - 0x3f3504f3);
        int k = (bits >> 23) - 127;
        float c = k < 25 ? (k >= 2 ? 1f - (u - x) : x - (u - 1f)) / u : 0f;   // past 2^25, 1 + x rounds to x and nothing is lost
        float f = BitConverter.Int32BitsToSingle((bits & 0x007fffff) + 0x3f3504f3) - 1f;
        return LogOfReduced(f, k, c);
    }

    /// <summary>
    /// k ln 2 + ln(1 + f) + c for 1 + f in [sqrt(2)/2, sqrt(2)]: with s = f / (2 + f), ln(1 + f) = 2 atanh(s) =
    /// f - f^2/2 + s (f^2/2 + R(s^2)), R a degree-4 minimax polynomial in s^2 (fdlibm's Lg1..Lg4, error below 2^-34),
    /// summed small terms first so that f and k ln 2 are added last.
    /// </summary>
    static float LogOfReduced(float f, int k, float c)
    {
        const float Lg1 = 0xaaaaaa / (float)(1 << 24), Lg2 = 0xccce13 / (float)(1 << 25);
        const float Lg3 = 0x91e9ee / (float)(1 << 25), Lg4 = 0xf89e26 / (float)(1 << 26);
        float s = f / (2f + f);
        float z = s * s;
        float w = z * z;
        float r = z * (Lg1 + w * Lg3) + w * (Lg2 + w * Lg4);
        float halfSquare = 0.5f * f * f;
        float dk = k;
        return s * (halfSquare + r) + (dk * Ln2Lo + c) - halfSquare + f + dk * Ln2Hi;
    }

    static float Abs(float x) => x < 0f ? -x : x;
}
