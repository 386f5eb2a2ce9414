using System.Reflection;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// The ILGPU kernels of one accelerator other than the dense-layer products (each GEMM family loads its own:
/// Gemm/), loaded once and kept as delegates that take the stream to launch on: loading compiles (for a driver, also
/// builds) every kernel, which takes seconds, so a grid search or a test fixture reuses them.
/// </summary>
sealed class CompiledKernels
{
    public readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int> softmaxCeOneGroup, sigmoidSseOneGroup;
    /// <summary>The grid loss kernels: loaded on first use (a device without <see cref="DeviceProfile.LossAtomics"/> never builds them).</summary>
    public readonly Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>> softmaxCe, sigmoidSse;
    public readonly Action<AcceleratorStream, Index1D, ArrayView<float>, float, long, ArrayView<StepValues>, int, int, int> dropoutForward;
    public readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, float, long, ArrayView<StepValues>, int, int, int, int> dropoutBackward;
    public readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<StepValues>, float, float, int, int, int, int> sgd;
    public readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<StepValues>, AdamSettings, int, int, int> adam;
    public readonly Action<AcceleratorStream, Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<StepValues>, int, int, int> gather;
    public readonly Action<AcceleratorStream, Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<StepValues>, int, int, int, int, int, long> gatherShifted;


    /// <summary>The element-wise kernels: loaded in groups of the profile's ElementwiseGroupSize when it is set (the constructor's loads below), auto-grouped otherwise.</summary>
    public static readonly MethodInfo[] GroupSized =
    [
        typeof(DropoutKernels).GetMethod(nameof(DropoutKernels.Forward))!, typeof(DropoutKernels).GetMethod(nameof(DropoutKernels.Backward))!,
        typeof(OptimizerKernels).GetMethod(nameof(OptimizerKernels.SgdMomentum))!, typeof(OptimizerKernels).GetMethod(nameof(OptimizerKernels.Adam))!,
        typeof(DataKernels).GetMethod(nameof(DataKernels.GatherBatch))!, typeof(DataKernels).GetMethod(nameof(DataKernels.GatherBatchShifted))!,
    ];

    static readonly Dictionary<Accelerator, CompiledKernels> cache = new();

    /// <summary>Accelerators whose kernels were compiled in this process so far.</summary>
    public static int Compilations { get; private set; }

    /// <summary>The kernels of an accelerator, compiled on first use, with element-wise groups of <paramref name="elementwiseGroupSize"/> (0: ILGPU picks; fixed per device).</summary>
    public static CompiledKernels For(Accelerator accelerator, int elementwiseGroupSize)
    {
        lock (cache)
        {
            if (!cache.TryGetValue(accelerator, out var set))
            {
                set = new CompiledKernels(accelerator, elementwiseGroupSize);
                Compilations++;
                cache[accelerator] = set;
                accelerator.Disposed += (_, _) => { lock (cache) cache.Remove(accelerator); };
            }
            return set;
        }
    }

    CompiledKernels(Accelerator a, int groupSize)
    {
        // element-wise kernels: auto-grouped, or in groups of groupSize (see DeviceProfile.ElementwiseGroupSize)
        // the products are compiled on first use: a device runs one family (gpu check and the tests run the others)
        softmaxCeOneGroup = a.LoadKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.LossOneGroup<SoftmaxCrossEntropyRow>);
        sigmoidSseOneGroup = a.LoadKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.LossOneGroup<SigmoidSquaredErrorRow>);
        softmaxCe = new(() => a.LoadKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.Loss<SoftmaxCrossEntropyRow>));
        sigmoidSse = new(() => a.LoadKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.Loss<SigmoidSquaredErrorRow>));
        dropoutForward = groupSize > 0 ? a.LoadImplicitlyGroupedKernel<Index1D, ArrayView<float>, float, long, ArrayView<StepValues>, int, int, int>(DropoutKernels.Forward, groupSize)
            : a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, float, long, ArrayView<StepValues>, int, int, int>(DropoutKernels.Forward);
        dropoutBackward = groupSize > 0 ? a.LoadImplicitlyGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, float, long, ArrayView<StepValues>, int, int, int, int>(DropoutKernels.Backward, groupSize)
            : a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, float, long, ArrayView<StepValues>, int, int, int, int>(DropoutKernels.Backward);
        sgd = groupSize > 0 ? a.LoadImplicitlyGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<StepValues>, float, float, int, int, int, int>(OptimizerKernels.SgdMomentum, groupSize)
            : a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<StepValues>, float, float, int, int, int, int>(OptimizerKernels.SgdMomentum);
        adam = groupSize > 0 ? a.LoadImplicitlyGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<StepValues>, AdamSettings, int, int, int>(OptimizerKernels.Adam, groupSize)
            : a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<StepValues>, AdamSettings, int, int, int>(OptimizerKernels.Adam);
        gather = groupSize > 0 ? a.LoadImplicitlyGroupedKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<StepValues>, int, int, int>(DataKernels.GatherBatch, groupSize)
            : a.LoadAutoGroupedKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<StepValues>, int, int, int>(DataKernels.GatherBatch);
        gatherShifted = groupSize > 0 ? a.LoadImplicitlyGroupedKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<StepValues>, int, int, int, int, int, long>(DataKernels.GatherBatchShifted, groupSize)
            : a.LoadAutoGroupedKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, ArrayView<StepValues>, int, int, int, int, int, long>(DataKernels.GatherBatchShifted);
    }
}
