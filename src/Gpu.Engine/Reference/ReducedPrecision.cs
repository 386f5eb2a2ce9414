using Gpu.Engine.Settings;

namespace Gpu.Engine.Reference;

/// <summary>
/// The float64 reference of TF32 and bf16 products: each input rounded as the hardware rounds it, then the products and
/// their sums in float64 (<see cref="ReferenceMlp"/>). The rounding is computed arithmetically (the value's unit in the
/// last kept place, and a rounding of the quotient with the hardware's tie rule), not with the kernels' bit operations,
/// so the two are independent: TF32 keeps 10 mantissa bits, to nearest, ties away from zero (PTX cvt.rna.tf32.f32);
/// bf16 keeps 7, to nearest, ties to even (cvt.rn.bf16.f32). Zeros, infinities and NaN stay as they are; subnormals
/// keep the same places as the smallest normals; a value that rounds past float's largest becomes infinite.
/// </summary>
internal static class ReducedPrecision
{
    /// <summary>x rounded to TF32.</summary>
    public static float Tf32(float x) => Round(x, 10, MidpointRounding.AwayFromZero);

    /// <summary>x rounded to bf16 (as a float).</summary>
    public static float Bf16(float x) => Round(x, 7, MidpointRounding.ToEven);

    /// <summary>x as the multiplier of a <paramref name="precision"/> product sees it (fp32: x).</summary>
    public static float Round(float x, Precision precision) => precision switch
    {
        Precision.Tf32 => Tf32(x),
        Precision.Bf16 => Bf16(x),
        _ => x,
    };

    /// <summary>Every value rounded to <paramref name="precision"/>, as float64.</summary>
    public static double[] Rounded(float[] values, Precision precision) => Array.ConvertAll(values, v => (double)Round(v, precision));

    /// <summary>x rounded to <paramref name="bits"/> mantissa bits after the leading one, with <paramref name="ties"/>.</summary>
    static float Round(float x, int bits, MidpointRounding ties)
    {
        if (x == 0 || !float.IsFinite(x)) return x;
        int exponent = Math.Max(Math.ILogB((double)x), -126);   // float's subnormals have the places of 2^-126's
        double unit = Math.ScaleB(1.0, exponent - bits);          // the last kept place
        return (float)(Math.Round(x / unit, ties) * unit);         // exact in double; past float's range it becomes infinite
    }
}
