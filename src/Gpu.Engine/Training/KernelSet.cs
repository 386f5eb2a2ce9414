using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Training;

/// <summary>
/// Every kernel the engine launches, compiled once per accelerator and kept as delegates
/// (launches go to the accelerator's default stream). Each wrapper takes the logical shapes and
/// computes the launch size, so callers never do index arithmetic.
/// </summary>
public sealed class KernelSet
{
    public Accelerator Accelerator { get; }

    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> denseForward;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> weightGrad;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> inputGrad;
    readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int> softmaxCe;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int> biasGrad;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<double>, int> accumulate;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int> sgd;
    readonly Action<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int> gather;

    static readonly Dictionary<Accelerator, KernelSet> cache = new();

    /// <summary>The kernel set of an accelerator, compiled on first use.</summary>
    public static KernelSet For(Accelerator accelerator)
    {
        lock (cache)
        {
            if (!cache.TryGetValue(accelerator, out var set))
            {
                set = new KernelSet(accelerator);
                cache[accelerator] = set;
                accelerator.Disposed += (_, _) => { lock (cache) cache.Remove(accelerator); };
            }
            return set;
        }
    }

    KernelSet(Accelerator a)
    {
        Accelerator = a;
        denseForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.DenseForward);
        weightGrad = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(GemmKernels.WeightGrad);
        inputGrad = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.InputGrad);
        softmaxCe = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int>(LayerKernels.SoftmaxCrossEntropy);
        biasGrad = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(LayerKernels.BiasGrad);
        accumulate = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<double>, int>(LayerKernels.AccumulateMetrics);
        sgd = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int>(OptimizerKernels.SgdMomentum);
        gather = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int>(DataKernels.GatherBatch);
    }

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    public void DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, bool relu) =>
        denseForward(GemmKernels.Threads(m, n), x, w, b, y, m, n, k, relu ? 1 : 0);

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k].</summary>
    public void WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, int m, int n, int k) =>
        weightGrad(GemmKernels.Threads(n, k), dz, h, dw, m, n, k);

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * (H[m,k] &gt; 0 when masked).</summary>
    public void InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, bool mask) =>
        inputGrad(GemmKernels.Threads(m, k), dz, w, h, dx, m, n, k, mask ? 1 : 0);

    /// <summary>Row-wise softmax cross-entropy over Z[m,c]; writes per-row loss/correct and, when grad, dZ = (P - onehot) * scale.</summary>
    public void SoftmaxCrossEntropy(ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        int m, int c, float scale, bool grad) =>
        softmaxCe(m, z, y, dz, rowLoss, rowCorrect, c, scale, grad ? 1 : 0);

    /// <summary>db[n] = column sums of dZ[m,n].</summary>
    public void BiasGrad(ArrayView<float> dz, ArrayView<float> db, int m, int n) => biasGrad(n, dz, db, m, n);

    /// <summary>acc[0] += sum rowLoss, acc[1] += sum rowCorrect (first m rows).</summary>
    public void AccumulateMetrics(ArrayView<float> rowLoss, ArrayView<float> rowCorrect, ArrayView<double> acc, int m) =>
        accumulate(1, rowLoss, rowCorrect, acc, m);

    /// <summary>Fused SGD + momentum + L2 (weights only) over the whole flat vector.</summary>
    public void SgdMomentum(ArrayView<float> p, ArrayView<float> grad, ArrayView<float> v, float lr, float momentum, float l2, int weightCount)
    {
        int n = (int)p.Length, chunk = Chunk(n);
        sgd((n + chunk - 1) / chunk, p, grad, v, lr, momentum, l2, weightCount, n, chunk);
    }

    /// <summary>X[b,d] = pixels[order[offset + row]] / 255 - 0.5 and y[b] = labels[order[offset + row]].</summary>
    public void GatherBatch(ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order, ArrayView<float> x, ArrayView<int> y, int offset, int b, int d)
    {
        int n = b * d, chunk = Chunk(n);
        gather((n + chunk - 1) / chunk, pixels, labels, order, x, y, offset, b, d, chunk);
    }

    /// <summary>
    /// Elements per thread for element-wise kernels: 1 on a GPU (coalesced); on the CPU accelerator, where
    /// every thread index costs far more than one element's work, about 8 contiguous chunks per core.
    /// </summary>
    public int Chunk(int n) => ChunkOverride ?? (IsCpu ? Math.Max(1, (n + 8 * cores - 1) / (8 * cores)) : 1);

    /// <summary>Forces the element-wise chunk size (tests use it to run the GPU layout on the CPU).</summary>
    public int? ChunkOverride { get; set; }

    bool IsCpu => Accelerator.AcceleratorType == AcceleratorType.CPU;
    readonly int cores = Environment.ProcessorCount;
}
