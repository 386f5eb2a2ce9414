using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Every kernel the engine launches, compiled once per accelerator and kept as delegates
/// (launches go to the accelerator's default stream). Each wrapper takes the logical shapes and
/// computes the launch size, so callers never do index arithmetic.
/// </summary>
public sealed class KernelSet
{
    public Accelerator Accelerator { get; }

    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> denseForward;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> denseForward4;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> weightGrad;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> weightGrad4;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> inputGrad4;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int> inputGrad;
    readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int> softmaxCe;
    readonly Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int> sigmoidSse;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, int, int> biasGrad;
    readonly Action<Index1D, ArrayView<float>, float, long, long, int, int, int> dropoutForward;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, float, long, long, int, int, int, int> dropoutBackward;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<double>, int> accumulate;
    readonly Action<Index1D, ArrayView<double>, ArrayView<long>, long> markNonFinite;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int, int> sgd;
    readonly Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamSettings, int, int, int> adam;
    readonly Action<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int> gather;
    readonly Action<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, int, int, long, long> gatherShifted;

    readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>> tiled;

    static readonly Dictionary<Accelerator, KernelSet> cache = new();

    /// <summary>Kernel sets compiled in this process so far (tests check that a search over many trials compiles once).</summary>
    internal static int Compilations { get; private set; }

    /// <summary>The kernel set of an accelerator, compiled on first use.</summary>
    public static KernelSet For(Accelerator accelerator)
    {
        lock (cache)
        {
            if (!cache.TryGetValue(accelerator, out var set))
            {
                set = new KernelSet(accelerator);
                Compilations++;
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
        denseForward4 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.DenseForward);
        weightGrad4 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(VectorGemmKernels.WeightGrad);
        // GPU: 16x16 threads, 64x64 tiles. The CPU accelerator allows only 4-thread groups, so it gets the
        // 8x8 tile (correct there but slow: every Group.Barrier is an OS barrier); tests use it to check the code.
        tiled = new(() => IsCpu
            ? a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TiledGemmKernels.Gemm<Tile8>)
            : a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TiledGemmKernels.Gemm<Tile64>));
        inputGrad4 = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.InputGrad);
        inputGrad = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.InputGrad);
        softmaxCe = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int>(LayerKernels.SoftmaxCrossEntropy);
        sigmoidSse = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int>(LayerKernels.SigmoidSquaredError);
        dropoutForward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, float, long, long, int, int, int>(DropoutKernels.Forward);
        dropoutBackward = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, long, long, int, int, int, int>(DropoutKernels.Backward);
        biasGrad = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(LayerKernels.BiasGrad);
        accumulate = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<double>, int>(LayerKernels.AccumulateMetrics);
        markNonFinite = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<long>, long>(LayerKernels.MarkNonFinite);
        sgd = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, float, float, float, int, int, int, int>(OptimizerKernels.SgdMomentum);
        adam = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamSettings, int, int, int>(OptimizerKernels.Adam);
        gather = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int>(DataKernels.GatherBatch);
        gatherShifted = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<byte>, ArrayView<int>, ArrayView<int>, ArrayView<float>, ArrayView<int>, int, int, int, int, int, int, long, long>(DataKernels.GatherBatchShifted);
    }

    /// <summary>
    /// Which GEMM kernels to use. <see cref="GemmVariant.Auto"/>: on the CPU accelerator the Float4
    /// kernels where the shapes allow them, else the scalar 4x4 kernels; on a GPU the shared-memory
    /// tiled kernels. Tests force each variant.
    /// </summary>
    public GemmVariant Gemm { get; set; } = GemmVariant.Auto;

    bool UseTiled => Gemm == GemmVariant.Tiled || (Gemm == GemmVariant.Auto && !IsCpu);

    void Tiled(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> aux, int rows, int cols, int depth,
        int aRow, int aCol, int bRow, int bCol, int epilogue, Activation act)
    {
        var config = IsCpu ? TiledGemmKernels.Config<Tile8>(rows, cols) : TiledGemmKernels.Config<Tile64>(rows, cols);
        tiled.Value(config, a, b, c, aux, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, (int)act);
    }

    /// <summary>Whether the Float4 kernels run a product loading <paramref name="a"/> along dimension <paramref name="dimA"/> and <paramref name="b"/> along <paramref name="dimB"/> (called per product: no allocation).</summary>
    bool UseVector(int dimA, ArrayView<float> a, int dimB, ArrayView<float> b)
    {
        if (Gemm is GemmVariant.Scalar or GemmVariant.Tiled || (Gemm == GemmVariant.Auto && !IsCpu)) return false;
        bool fits = dimA % 4 == 0 && ViewIndex(a) % 4 == 0 && dimB % 4 == 0 && ViewIndex(b) % 4 == 0;
        if (Gemm == GemmVariant.Vector4 && !fits) throw new ArgumentException("the Float4 GEMM needs its load dimensions and view offsets to be multiples of 4");
        return fits;
    }

    static long ViewIndex(ArrayView<float> v) => ((IContiguousArrayView<float>)v).Index;

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    public void DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act)
    {
        if (UseTiled) Tiled(x, w, y, b, m, n, k, k, 1, k, 1, Epilogue.BiasAct, act);
        else if (UseVector(k, x, k, w)) denseForward4(VectorGemmKernels.Threads(m, n), x, w, b, y, m, n, k, (int)act);
        else denseForward(GemmKernels.Threads(m, n), x, w, b, y, m, n, k, (int)act);
    }

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k].</summary>
    public void WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, int m, int n, int k)
    {
        if (UseTiled) Tiled(dz, h, dw, dw, n, k, m, 1, n, 1, k, Epilogue.None, Activation.Identity);
        else if (UseVector(n, dz, k, h)) weightGrad4(VectorGemmKernels.Threads(n, k), dz, h, dw, m, n, k);
        else weightGrad(GemmKernels.Threads(n, k), dz, h, dw, m, n, k);
    }

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]); Identity: no factor.</summary>
    public void InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act)
    {
        if (UseTiled) Tiled(dz, w, dx, h, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, act);
        else if (UseVector(n, dz, k, w)) inputGrad4(VectorGemmKernels.Threads(m, k), dz, w, h, dx, m, n, k, (int)act);
        else inputGrad(GemmKernels.Threads(m, k), dz, w, h, dx, m, n, k, (int)act);
    }

    /// <summary>Row-wise softmax cross-entropy over Z[m,c]; writes per-row loss/correct and, when grad, dZ = (P - onehot) * scale.</summary>
    public void SoftmaxCrossEntropy(ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        int m, int c, float scale, bool grad) =>
        softmaxCe(m, z, y, dz, rowLoss, rowCorrect, c, scale, grad ? 1 : 0);

    /// <summary>Row-wise sum-of-squares cost over sigmoid outputs A[m,c]; writes per-row loss/correct and, when grad, dZ = (A - onehot) A (1 - A) * scale.</summary>
    public void SigmoidSquaredError(ArrayView<float> a, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        int m, int c, float scale, bool grad) =>
        sigmoidSse(m, a, y, dz, rowLoss, rowCorrect, c, scale, grad ? 1 : 0);

    /// <summary>Inverted dropout in place on the first n elements of H (mask from seed, step, layer, index).</summary>
    public void DropoutForward(ArrayView<float> h, int n, float rate, long seed, long step, int layer)
    {
        int chunk = Chunk(n);
        dropoutForward((n + chunk - 1) / chunk, h, rate, seed, step, layer, n, chunk);
    }

    /// <summary>In place on G = dL/dH': the same mask, the 1/(1-rate) scale, and act' from the undropped output.</summary>
    public void DropoutBackward(ArrayView<float> g, ArrayView<float> hDropped, int n, float rate, long seed, long step, int layer, Activation act)
    {
        int chunk = Chunk(n);
        dropoutBackward((n + chunk - 1) / chunk, g, hDropped, rate, seed, step, layer, (int)act, n, chunk);
    }

    /// <summary>db[n] = column sums of dZ[m,n].</summary>
    public void BiasGrad(ArrayView<float> dz, ArrayView<float> db, int m, int n) => biasGrad(n, dz, db, m, n);

    /// <summary>acc[0] += sum rowLoss, acc[1] += sum rowCorrect (first m rows).</summary>
    public void AccumulateMetrics(ArrayView<float> rowLoss, ArrayView<float> rowCorrect, ArrayView<double> acc, int m) =>
        accumulate(1, rowLoss, rowCorrect, acc, m);

    /// <summary>firstBad[0] = step if it is still negative and acc[0] is NaN or infinite (one thread, no host wait).</summary>
    public void MarkNonFinite(ArrayView<double> acc, ArrayView<long> firstBad, long step) => markNonFinite(1, acc, firstBad, step);

    /// <summary>Fused SGD + momentum (classical or Nesterov) + L2 (weights only) over the whole flat vector.</summary>
    public void SgdMomentum(ArrayView<float> p, ArrayView<float> grad, ArrayView<float> v, float lr, float momentum, float l2, int weightCount,
        bool nesterov = false)
    {
        int n = (int)p.Length, chunk = Chunk(n);
        sgd((n + chunk - 1) / chunk, p, grad, v, lr, momentum, l2, weightCount, n, chunk, nesterov ? 1 : 0);
    }

    /// <summary>Fused Adam (L2 in the gradient) or AdamW (decoupled weight decay) over the whole flat vector; <paramref name="step"/> is 1-based.</summary>
    public void Adam(ArrayView<float> p, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, float lr, float beta1, float beta2,
        float eps, long step, float l2, bool decoupled, int weightCount)
    {
        int n = (int)p.Length, chunk = Chunk(n);
        var s = new AdamSettings
        {
            Lr = lr, Beta1 = beta1, Beta2 = beta2, Eps = eps, L2 = l2, Decoupled = decoupled ? 1 : 0,
            C1 = (float)(1 - Math.Pow(beta1, step)), C2 = (float)(1 - Math.Pow(beta2, step)),
        };
        adam((n + chunk - 1) / chunk, p, grad, m, v, s, weightCount, n, chunk);
    }

    /// <summary>X[b,d] = pixels[order[offset + row]] / 255 - 0.5 and y[b] = labels[order[offset + row]].</summary>
    public void GatherBatch(ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order, ArrayView<float> x, ArrayView<int> y, int offset, int b, int d)
    {
        int n = b * d, chunk = Chunk(n);
        gather((n + chunk - 1) / chunk, pixels, labels, order, x, y, offset, b, d, chunk);
    }

    /// <summary>As <see cref="GatherBatch"/>, each image (width <paramref name="width"/>) shifted by up to <paramref name="maxShift"/> pixels per axis, drawn from (seed, pass, image).</summary>
    public void GatherBatchShifted(ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order, ArrayView<float> x, ArrayView<int> y,
        int offset, int b, int d, int width, int maxShift, long seed, long pass)
    {
        int n = b * d, chunk = Chunk(n);
        gatherShifted((n + chunk - 1) / chunk, pixels, labels, order, x, y, offset, b, d, chunk, width, maxShift, seed, pass);
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

/// <summary>GEMM kernel family: Auto picks per accelerator and shape.</summary>
public enum GemmVariant { Auto, Scalar, Vector4, Tiled }
