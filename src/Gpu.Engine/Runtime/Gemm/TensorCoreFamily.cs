using System.Reflection;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// TF32 products on the tensor cores of NVIDIA GPUs from compute capability 8.0 (kernels/Gpu.Kernels/TensorCoreGemmKernels.cs:
/// mma.sync m16n8k8 through ILGPU's inline PTX, 128 x 128 blocks staged through shared memory, one strided kernel for the three
/// products, as the tiled family's). It computes --precision tf32 only, so CUDA devices of 8.0 and later take it for tf32
/// (<see cref="GemmFamilies.For"/>) and never for fp32. Before a device uses it, it runs one product and compares it with the
/// scalar kernels' TF32 emulation on the same device (<see cref="Unavailable"/>): a device where it disagrees emulates
/// instead, saying why.
/// </summary>
internal sealed record TensorCoreFamily : GemmFamily
{
    public override string Name => "tensor-tf32";
    public override string Meaning => "TF32 tensor cores (mma.sync m16n8k8), CUDA compute capability 8.0 and later, --precision tf32 only";
    public override bool RunsOn(DeviceKind kind) => kind == DeviceKind.Cuda;
    public override int Preference(DeviceProfile profile) => 4;
    public override bool Computes(Precision precision) => precision == Precision.Tf32;
    public override bool TensorCores(Precision precision) => precision == Precision.Tf32;
    public override string[] Kernels(GemmProduct product) => ["TensorCoreGemmKernels.Gemm"];

    /// <summary>Compute capability 8.0 or later (mma.sync with TF32 operands); the 256-thread groups.</summary>
    public override bool Fits(DeviceProfile profile) =>
        profile.ComputeCapability is var (major, _) && major >= 8 && profile.MaxGroupSize >= TensorCoreGemmKernels.Threads;

    /// <summary>
    /// Null where one forward product agrees with the scalar kernels' TF32 emulation on this device (<see cref="TensorCoreSelfTest"/>);
    /// else why not (each accelerator tests once).
    /// </summary>
    public override string? Unavailable(Accelerator accelerator) =>
        SelfTests.For(accelerator, a => new SelfTestResult(TensorCoreSelfTest.Run(a, new TensorCoreProducts(Compiled.For(a, Load), a.DefaultStream), Precision.Tf32, 20))).Failure;

    static readonly PerAccelerator<SelfTestResult> SelfTests = new();

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        Precision == Precision.Tf32
            ? new TensorCoreProducts(Compiled.For(accelerator, Load), stream)
            : throw new ArgumentException($"the {Name} family computes tf32 only, not {Words.Name(Precision)}");

    static readonly PerAccelerator<TensorCoreKernel> Compiled = new();

    static TensorCoreKernel Load(Accelerator a) => TensorCoreKernel.Load<TensorCoreWarpMma>(a);

    /// <summary>
    /// The specialisation the kernel is loaded (and PTX-checked) with, every instance (TF32 and bf16): groups of 256 threads, two resident per multiprocessor
    /// (.maxntid 256, .minnctapersm 2: ptxas keeps it within 128 registers a thread; ptxas 11.8 gives it 122-124 either way).
    /// </summary>
    public static KernelSpecialization Specialization => new(TensorCoreGemmKernels.Threads, 2);

    /// <summary>Whether <paramref name="method"/> is the staged kernel, any instance (TF32 or bf16; what <see cref="KernelEntry.Specialization"/> asks).</summary>
    public static bool IsKernel(MethodInfo method) =>
        method.IsGenericMethod && method.GetGenericMethodDefinition() == GemmDefinition;

    static readonly MethodInfo GemmDefinition = typeof(TensorCoreGemmKernels).GetMethod(nameof(TensorCoreGemmKernels.Gemm))!;

    /// <summary>A product's scalar arguments, with whether each input view starts on a 16-byte boundary (its element offset a multiple of 4).</summary>
    internal static GemmArgs Args(ArrayView<float> a, ArrayView<float> b, int rows, int cols, int depth, int aRow, int aCol, int bRow, int bCol, int epilogue, int act) => new()
    {
        Rows = rows, Cols = cols, Depth = depth, ARow = aRow, ACol = aCol, BRow = bRow, BCol = bCol, Epilogue = epilogue, Act = act,
        Aligned = (StartsOn16Bytes(a) ? 1 : 0) | (StartsOn16Bytes(b) ? 2 : 0), Splits = 1, SplitDepth = depth,
    };

    static bool StartsOn16Bytes(ArrayView<float> v) => ((IContiguousArrayView<float>)v).Index % 4 == 0;

    /// <summary>
    /// Splits of the contraction for C[rows, cols] (a model, not measured): the fewest that give each of
    /// <paramref name="multiprocessors"/> two groups (the two that stay resident, <see cref="Specialization"/>), each split at
    /// least 8 tiles (128) deep; 1 where the blocks alone do. Each split covers the same whole number of 16-deep tiles, and the
    /// splits returned are those actually made (every one non-empty). Pure: the same inputs give the same splits.
    /// </summary>
    public static (int Splits, int SplitDepth) Split(int rows, int cols, int depth, int multiprocessors)
    {
        const int tile = TensorCoreGemmKernels.TileDepth, minTiles = 8;
        long blocks = (long)((rows + TensorCoreGemmKernels.Block - 1) / TensorCoreGemmKernels.Block) * ((cols + TensorCoreGemmKernels.Block - 1) / TensorCoreGemmKernels.Block);
        int tiles = SplitK.Steps(depth, tile);
        if (tiles == 0 || blocks == 0) return (1, tile);
        long wanted = Math.Min(Math.Max(1, tiles / minTiles), Math.Max(1, (2L * multiprocessors + blocks - 1) / blocks));
        return SplitK.Cut(depth, tile, (int)wanted);
    }
}

/// <summary>A self-test's outcome, kept per accelerator: null where it passed, else why not.</summary>
internal sealed record SelfTestResult(string? Failure);
