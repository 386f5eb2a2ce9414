namespace Gpu.Engine.Settings;

/// <summary>
/// A family of dense-layer product kernels (forward, weight gradient, input gradient). The device
/// profile picks one per device; <c>gpu check</c> and the kernel tests run every family a device can run.
/// </summary>
public enum GemmFamily
{
    /// <summary>Barrier-free 4x4 register blocks, any shape, any device (kernels/Gpu.Kernels/GemmKernels.cs).</summary>
    Scalar,
    /// <summary>4x8 blocks with four-float loads, for ILGPU's CPU accelerator; falls back to Scalar where a loaded dimension is not a multiple of 4 (VectorGemmKernels.cs).</summary>
    Vector4,
    /// <summary>Shared-memory tiles with barriers, for GPUs (TiledGemmKernels.cs).</summary>
    Tiled,
    /// <summary>OpenCL C with 16-wide vectors and fma, for OpenCL CPU devices (OpenCl/dense_layers.cl).</summary>
    ClVector,
}

/// <summary>The words users read for <see cref="GemmFamily"/> (gpu check, gpu devices, benchmarks).</summary>
public static class GemmFamilyWords
{
    public static string Name(GemmFamily f) => f switch
    {
        GemmFamily.Scalar => "scalar",
        GemmFamily.Vector4 => "vector4",
        GemmFamily.Tiled => "tiled",
        _ => "cl-vector",
    };

    public static GemmFamily Parse(string text) =>
        Enum.GetValues<GemmFamily>().FirstOrDefault(f => Name(f) == text.Trim().ToLowerInvariant(), (GemmFamily)(-1)) is var f && Enum.IsDefined(f)
            ? f : throw new UserError($"unknown kernel family '{text}': use scalar, vector4, tiled or cl-vector");
}
