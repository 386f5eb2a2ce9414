using System.Reflection;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// The ILGPU kernels of one accelerator, loaded once and kept as delegates: loading compiles (for a
/// driver, also builds) every kernel, which takes seconds, so a grid search or a test fixture reuses
/// them. <see cref="KernelSet"/> decides which of them a launch uses.
/// </summary>
sealed class CompiledKernels
{
    public readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>> denseForward;
    public readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>> denseForward4;
    public readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>> weightGrad;
    public readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>> weightGrad4;
    public readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>> inputGrad4;
    public readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>> inputGrad;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int> softmaxCeOneGroup, sigmoidSseOneGroup;
    /// <summary>The grid loss kernels: loaded on first use (a device without <see cref="DeviceProfile.LossAtomics"/> never builds them).</summary>
    public readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>> softmaxCe, sigmoidSse;
    public readonly Action<Index1D, ArrayView<float>, float, long, long, int, int, int> dropoutForward;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, long, long, int, int, int, int> dropoutBackward;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int, int> sgd;
    public readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamSettings, int, int, int> adam;
    public readonly Action<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int> gather;
    public readonly Action<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, int, int, long, long> gatherShifted;

    public readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>> tiled8, tiled64;

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
        denseForward = new(() => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.DenseForward));
        weightGrad = new(() => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.WeightGrad));
        denseForward4 = new(() => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.DenseForward));
        weightGrad4 = new(() => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.WeightGrad));
        tiled8 = new(() => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TiledGemmKernels.Gemm<Tile8>));
        tiled64 = new(() => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TiledGemmKernels.Gemm<Tile64>));
        inputGrad4 = new(() => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.InputGrad));
        inputGrad = new(() => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.InputGrad));
        softmaxCeOneGroup = a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.SoftmaxCrossEntropyOneGroup);
        sigmoidSseOneGroup = a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.SigmoidSquaredErrorOneGroup);
        softmaxCe = new(() => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.SoftmaxCrossEntropy));
        sigmoidSse = new(() => a.LoadStreamKernel<ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LossSums, ArrayView<StepValues>, int, int, float, int, int>(LayerKernels.SigmoidSquaredError));
        dropoutForward = groupSize > 0 ? a.LoadImplicitlyGroupedStreamKernel<Index1D, ArrayView<float>, float, long, long, int, int, int>(DropoutKernels.Forward, groupSize)
            : a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float, long, long, int, int, int>(DropoutKernels.Forward);
        dropoutBackward = groupSize > 0 ? a.LoadImplicitlyGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, long, long, int, int, int, int>(DropoutKernels.Backward, groupSize)
            : a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, long, long, int, int, int, int>(DropoutKernels.Backward);
        sgd = groupSize > 0 ? a.LoadImplicitlyGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int, int>(OptimizerKernels.SgdMomentum, groupSize)
            : a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int, int>(OptimizerKernels.SgdMomentum);
        adam = groupSize > 0 ? a.LoadImplicitlyGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamSettings, int, int, int>(OptimizerKernels.Adam, groupSize)
            : a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamSettings, int, int, int>(OptimizerKernels.Adam);
        gather = groupSize > 0 ? a.LoadImplicitlyGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int>(DataKernels.GatherBatch, groupSize)
            : a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int>(DataKernels.GatherBatch);
        gatherShifted = groupSize > 0 ? a.LoadImplicitlyGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, int, int, long, long>(DataKernels.GatherBatchShifted, groupSize)
            : a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, int, int, long, long>(DataKernels.GatherBatchShifted);
    }
}
