using Gpu.Engine.Settings;
using Gpu.Kernels;
using System.Numerics;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Every kernel the engine launches, as the device's <see cref="DeviceProfile"/> chooses them, all enqueued in order on
/// the device's stream (<see cref="ComputeDevice.Stream"/>): the dense-layer products of the profile's GEMM family
/// (<see cref="GemmFamily.Open"/>), and the other ILGPU kernels, compiled once per accelerator and kept as delegates
/// (<see cref="CompiledKernels"/>). Each wrapper takes the logical shapes and computes the launch size, so callers never
/// do index arithmetic. What changes from step to step (learning rate, Adam's corrections, the step number, the batch's
/// offset) the kernels read from device memory, a <see cref="StepSlot"/>'s <c>Current</c>, so the launches of a step are
/// the same every step. A kernel set is cheap: tests make one per GEMM family with <c>profile with { ... }</c>. It counts
/// the launches it enqueues (<see cref="Launches"/>): at small batches a GPU step costs about one launch overhead per kernel.
/// </summary>
internal sealed class KernelSet
{
    public Accelerator Accelerator { get; }
    public AcceleratorStream Stream { get; }
    public DeviceProfile Profile { get; }
    readonly CompiledKernels c_;
    readonly IDenseProducts products;

    KernelSet(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile)
    {
        if (!profile.Runs(profile.Gemm))
            throw new ArgumentException($"the {profile.Gemm.Name} family does not run on this device (it runs {string.Join(", ", profile.RunnableFamilies)})");
        Accelerator = accelerator; Stream = stream; Profile = profile;
        c_ = CompiledKernels.For(accelerator, profile.ElementwiseGroupSize);
        products = profile.Gemm.Open(accelerator, stream, profile);
    }

    /// <summary>The kernel set of a device, with its own profile or a variant of it (another GEMM family, a smaller memory budget).</summary>
    public static KernelSet For(ComputeDevice device, DeviceProfile? profile = null) => new(device.Accelerator, device.Stream, profile ?? device.Profile);

    long launches;

    /// <summary>Kernel launches enqueued through this kernel set so far (every product, packing pass and element-wise kernel counts one; copies do not).</summary>
    public long Launches => Interlocked.Read(ref launches);

    void Launched(int n = 1) => Interlocked.Add(ref launches, n);

    /// <summary>Kernel sets compiled in this process so far (tests check that a search over many trials compiles once).</summary>
    internal static int Compilations => CompiledKernels.Compilations;

    /// <summary>A step slot on this kernel set's device and stream (its owner disposes it).</summary>
    public StepSlot NewStepSlot() => new(Accelerator, Stream);

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    public void DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
        Launched(products.DenseForward(x, w, b, y, m, n, k, act));

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k].</summary>
    public void WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, int m, int n, int k) =>
        Launched(products.WeightGrad(dz, h, dw, dw, m, n, k, withBias: false));

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k] and db[n] = column sums of dZ (each summed over the rows in order), in one launch: the product's first column block sums the columns too.</summary>
    public void WeightAndBiasGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k) =>
        Launched(products.WeightGrad(dz, h, dw, db, m, n, k, withBias: true));

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]); Identity: no factor.</summary>
    public void InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
        Launched(products.InputGrad(dz, w, h, dx, m, n, k, act));

    /// <summary>
    /// The threads per group and the groups of a loss launch over <paramref name="rows"/> rows: the profile's group size, capped
    /// by the device's group limit and rounded down to a power of two, and the profile's number of groups for that size.
    /// </summary>
    public (int GroupSize, int Groups) LossLayout(int rows)
    {
        int size = Math.Min(Profile.LossGroupSize, Accelerator.MaxNumThreadsPerGroup);
        if (size < 1 || Profile.LossGroupSize > LayerKernels.MaxGroupSize)
            throw new ArgumentException($"a loss group size of {Profile.LossGroupSize}: it must be 1 to {LayerKernels.MaxGroupSize} (LayerKernels.MaxGroupSize)");
        size = 1 << BitOperations.Log2((uint)size);
        return (size, Profile.LossGroups(rows, size));
    }

    /// <summary>The workspace of the loss kernels' launches over up to <paramref name="maxRows"/> rows (one launch at a time: the launches of one stream).</summary>
    public LossWorkspace AllocateLossWorkspace(int maxRows) => new(Accelerator, LossLayout(maxRows).Groups);

    /// <summary>The launch of a loss kernel over m rows: its grid and groups (<see cref="LossLayout"/>) and where its sums go.</summary>
    (KernelConfig Config, LossSums Sums) LossLaunch(ArrayView<double> acc, ArrayView<long> firstBad, LossWorkspace workspace, int m)
    {
        var (size, groups) = LossLayout(m);
        if (groups > workspace.Groups)
            throw new ArgumentException($"a loss launch over {m} rows takes {groups} groups; its workspace holds {workspace.Groups}");
        return (new KernelConfig(groups, size), new LossSums { Acc = acc, FirstBad = firstBad, Partials = workspace.Partials, Finished = workspace.Finished });
    }

    /// <summary>
    /// Row-wise softmax cross-entropy over Z[m,c]; writes per-row loss/correct and, when grad, dZ = (P - onehot) * scale; adds the
    /// rows' loss and correct count to acc[0], acc[1] (summed over the grid in a fixed order); for a training step
    /// (<paramref name="watch"/>) records step[0].Step in firstBad[0] if acc[0] is now NaN or infinite and nothing is recorded
    /// yet. One launch, over <see cref="LossLayout"/>'s groups: the one-group kernel when that is one, else the grid kernel.
    /// </summary>
    public void SoftmaxCrossEntropy(ArrayView<float> z, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        ArrayView<double> acc, ArrayView<long> firstBad, LossWorkspace workspace, ArrayView<StepValues> step, int m, int c, float scale, bool grad, bool watch)
    {
        var (config, sums) = LossLaunch(acc, firstBad, workspace, m);
        var kernel = config.GridDim.X == 1 ? c_.softmaxCeOneGroup : c_.softmaxCe.Value;
        Launched();
        kernel(Stream, config, z, y, dz, rowLoss, rowCorrect, sums, step, m, c, scale, grad ? 1 : 0, watch ? 1 : 0);
    }

    /// <summary>As <see cref="SoftmaxCrossEntropy"/> for the sum-of-squares cost over sigmoid outputs A[m,c]; dZ = (A - onehot) A (1 - A) * scale.</summary>
    public void SigmoidSquaredError(ArrayView<float> a, ArrayView<int> y, ArrayView<float> dz, ArrayView<float> rowLoss, ArrayView<float> rowCorrect,
        ArrayView<double> acc, ArrayView<long> firstBad, LossWorkspace workspace, ArrayView<StepValues> step, int m, int c, float scale, bool grad, bool watch)
    {
        var (config, sums) = LossLaunch(acc, firstBad, workspace, m);
        var kernel = config.GridDim.X == 1 ? c_.sigmoidSseOneGroup : c_.sigmoidSse.Value;
        Launched();
        kernel(Stream, config, a, y, dz, rowLoss, rowCorrect, sums, step, m, c, scale, grad ? 1 : 0, watch ? 1 : 0);
    }

    /// <summary>Element-wise launch size: threads for <paramref name="n"/> elements of <paramref name="chunk"/> each.</summary>
    static int Threads(int n, int chunk) => (n + chunk - 1) / chunk;

    /// <summary>Inverted dropout in place on the first n elements of H (mask from seed, the step number in <paramref name="step"/>, layer, index).</summary>
    public void DropoutForward(ArrayView<float> h, int n, float rate, long seed, ArrayView<StepValues> step, int layer)
    {
        int chunk = Profile.Chunk(n);
        Launched();
        c_.dropoutForward(Stream, Threads(n, chunk), h, rate, seed, step, layer, n, chunk);
    }

    /// <summary>In place on G = dL/dH': the same mask, the 1/(1-rate) scale, and act' from the undropped output.</summary>
    public void DropoutBackward(ArrayView<float> g, ArrayView<float> hDropped, int n, float rate, long seed, ArrayView<StepValues> step, int layer, Activation act)
    {
        int chunk = Profile.Chunk(n);
        Launched();
        c_.dropoutBackward(Stream, Threads(n, chunk), g, hDropped, rate, seed, step, layer, (int)act, n, chunk);
    }

    /// <summary>Fused SGD + momentum (classical or Nesterov) + L2 (weights only) over the whole flat vector, at the learning rate in <paramref name="step"/>.</summary>
    public void SgdMomentum(ArrayView<float> p, ArrayView<float> grad, ArrayView<float> v, ArrayView<StepValues> step, float momentum, float l2, int weightCount,
        bool nesterov = false)
    {
        int n = (int)p.Length, chunk = Profile.Chunk(n);
        Launched();
        c_.sgd(Stream, Threads(n, chunk), p, grad, v, step, momentum, l2, weightCount, n, chunk, nesterov ? 1 : 0);
    }

    /// <summary>Adam's constants for the kernel: every one computed in double from the double decays and rounded to float once, here.</summary>
    public static AdamSettings AdamConstants(double beta1, double beta2, double eps, float l2, bool decoupled) => new()
    {
        // (1 - 0.999f in float is 4.7e-5 off 0.001: a systematic scale on every step against PyTorch's double decays)
        Beta1 = (float)beta1, Beta2 = (float)beta2, OneMinusBeta1 = (float)(1 - beta1), OneMinusBeta2 = (float)(1 - beta2),
        Eps = (float)eps, L2 = l2, Decoupled = decoupled ? 1 : 0,
    };

    /// <summary>Adam's bias corrections for 1-based step <paramref name="t"/>: (1 - beta1^t, 1 - beta2^t), in double, rounded to float once.</summary>
    public static (float C1, float C2) AdamCorrections(double beta1, double beta2, long t) =>
        ((float)(1 - Math.Pow(beta1, t)), (float)(1 - Math.Pow(beta2, t)));

    /// <summary>Fused Adam (L2 in the gradient) or AdamW (decoupled weight decay) over the whole flat vector, at the learning rate and bias corrections in <paramref name="step"/>.</summary>
    public void Adam(ArrayView<float> p, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, ArrayView<StepValues> step, AdamSettings constants, int weightCount)
    {
        int n = (int)p.Length, chunk = Profile.Chunk(n);
        Launched();
        c_.adam(Stream, Threads(n, chunk), p, grad, m, v, step, constants, weightCount, n, chunk);
    }

    /// <summary>X[b,d] = pixels[order[offset + row]] / 255 - 0.5 and y[b] = labels[order[offset + row]], offset from <paramref name="step"/>.</summary>
    public void GatherBatch(ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order, ArrayView<float> x, ArrayView<int> y, ArrayView<StepValues> step, int b, int d)
    {
        int n = b * d, chunk = Profile.Chunk(n);
        Launched();
        c_.gather(Stream, Threads(n, chunk), pixels, labels, order, x, y, step, b, d, chunk);
    }

    /// <summary>As <see cref="GatherBatch"/>, each image (width <paramref name="width"/>) shifted by up to <paramref name="maxShift"/> pixels per axis, drawn from (seed, the pass in <paramref name="step"/>, image).</summary>
    public void GatherBatchShifted(ArrayView<byte> pixels, ArrayView<int> labels, ArrayView<int> order, ArrayView<float> x, ArrayView<int> y,
        ArrayView<StepValues> step, int b, int d, int width, int maxShift, long seed)
    {
        int n = b * d, chunk = Profile.Chunk(n);
        Launched();
        c_.gatherShifted(Stream, Threads(n, chunk), pixels, labels, order, x, y, step, b, d, chunk, width, maxShift, seed);
    }
}

/// <summary>
/// The device workspace of the loss kernels (<see cref="KernelSet.AllocateLossWorkspace"/>): two doubles per group of the largest
/// launch it serves, and the count of finished groups, 0 between launches (each launch's last group resets it).
/// </summary>
internal sealed class LossWorkspace : IDisposable
{
    readonly MemoryBuffer1D<double, Stride1D.Dense> partials;
    readonly MemoryBuffer1D<int, Stride1D.Dense> finished;

    /// <summary>The most groups a launch may take.</summary>
    public int Groups { get; }

    public ArrayView<double> Partials => partials.View;
    public ArrayView<int> Finished => finished.View;

    public LossWorkspace(Accelerator accelerator, int groups)
    {
        Groups = groups;
        partials = accelerator.Allocate1D<double>(2L * groups);
        try
        {
            finished = accelerator.Allocate1D<int>(1);
        }
        catch
        {
            partials.Dispose();
            throw;
        }
        finished.MemSetToZero();
    }

    public void Dispose()
    {
        partials.Dispose();
        finished.Dispose();
    }
}
