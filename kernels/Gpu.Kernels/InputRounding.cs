using System.Runtime.CompilerServices;

namespace Gpu.Kernels;

/// <summary>
/// What a GEMM kernel does to each input element before it multiplies it, a compile-time specialisation (ILGPU and
/// .NET instantiate a kernel per struct, so <see cref="NoRounding"/> compiles to the fp32 kernel itself): the
/// emulation of a tensor core's input precision on a device without one. Only the products' inputs are rounded; the
/// products are accumulated in fp32, and the epilogues (bias, activation, the bias gradient's column sums) read the
/// unrounded values.
/// </summary>
internal interface IInputRounding
{
    /// <summary>The input as the multiplier sees it.</summary>
    float Round(float x);
}

/// <summary>fp32: the input as it is.</summary>
internal struct NoRounding : IInputRounding
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x) => x;
}

/// <summary>TF32 as PTX <c>cvt.rna.tf32.f32</c> rounds: 10 mantissa bits, to nearest, ties away from zero; NaN and infinities as they are.</summary>
internal struct Tf32Rounding : IInputRounding
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(x);
        if ((bits & 0x7f800000u) == 0x7f800000u) return x;   // NaN or infinity
        return BitConverter.Int32BitsToSingle((int)((bits + 0x1000u) & 0xffffe000u));
    }
}

/// <summary>
/// bf16 as PTX <c>cvt.rn.bf16.f32</c> rounds: 7 mantissa bits, to nearest, ties to even; NaN stays NaN, made quiet, so that the
/// top 16 bits of every result are its bf16 bits (a NaN's top half alone could read as infinity).
/// </summary>
internal struct Bf16Rounding : IInputRounding
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Round(float x)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(x);
        if ((bits & 0x7fffffffu) > 0x7f800000u) return BitConverter.Int32BitsToSingle((int)(bits | 0x00400000u));   // NaN, quiet (infinities round to themselves)
        return BitConverter.Int32BitsToSingle((int)((bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u));
    }
}
