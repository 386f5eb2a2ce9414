using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// bf16 products on the tensor cores of NVIDIA GPUs from compute capability 8.0: the staged kernel of the tensor-tf32 family
/// (kernels/Gpu.Kernels/TensorCoreGemmKernels.cs, 128 x 128 blocks staged through shared memory, split-K) instanced with
/// <see cref="TensorCoreWarpMmaBf16"/> (values rounded to bf16 once as they are staged, mma.sync m16n8k16 bf16 through ILGPU's
/// inline PTX; kernels/Gpu.Kernels/TensorCoreBf16Mma.cs), the same products (<see cref="TensorCoreProducts"/>), splits and
/// specialisation. It computes --precision bf16 only, so CUDA devices of 8.0 and later take it for bf16
/// (<see cref="GemmFamilies.For"/>) and never for fp32 or tf32. Before a device uses it, it runs the tensor-tf32 family's
/// self-test product against the scalar kernels' bf16 emulation on the same device (<see cref="Unavailable"/>): a device where
/// it disagrees emulates instead, saying why.
/// </summary>
internal sealed record TensorCoreBf16Family : GemmFamily
{
    public override string Name => "tensor-bf16";
    public override string Meaning => "bf16 tensor cores (mma.sync m16n8k16), CUDA compute capability 8.0 and later, --precision bf16 only";
    public override bool RunsOn(DeviceKind kind) => kind == DeviceKind.Cuda;
    public override int Preference(DeviceProfile profile) => 4;
    public override bool Computes(Precision precision) => precision == Precision.Bf16;
    public override bool TensorCores(Precision precision) => precision == Precision.Bf16;
    public override string[] Kernels(GemmProduct product) => ["TensorCoreGemmKernels.Gemm"];

    /// <summary>Compute capability 8.0 or later (mma.sync m16n8k16 with bf16 operands); the 256-thread groups.</summary>
    public override bool Fits(DeviceProfile profile) =>
        profile.ComputeCapability is var (major, _) && major >= 8 && profile.MaxGroupSize >= TensorCoreGemmKernels.Threads;

    /// <summary>
    /// Null where one forward product agrees with the scalar kernels' bf16 emulation on this device (<see cref="TensorCoreSelfTest"/>:
    /// the products of bf16 values are exact in fp32, so only the order of the fp32 sums differs); else why not (each accelerator tests once).
    /// </summary>
    public override string? Unavailable(Accelerator accelerator) =>
        SelfTests.For(accelerator, a => new SelfTestResult(TensorCoreSelfTest.Run(a, new TensorCoreProducts(Compiled.For(a, Load), a.DefaultStream), Precision.Bf16, 21))).Failure;

    static readonly PerAccelerator<SelfTestResult> SelfTests = new();

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        Precision == Precision.Bf16
            ? new TensorCoreProducts(Compiled.For(accelerator, Load), stream)
            : throw new ArgumentException($"the {Name} family computes bf16 only, not {Words.Name(Precision)}");

    static readonly PerAccelerator<TensorCoreKernel> Compiled = new();

    static TensorCoreKernel Load(Accelerator a) => TensorCoreKernel.Load<TensorCoreWarpMmaBf16>(a);
}
