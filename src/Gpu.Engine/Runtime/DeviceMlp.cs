using Gpu.Engine.Model;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Engine.Runtime;

/// <summary>
/// An MLP living on one accelerator: the flat parameter, gradient and momentum vectors (each one
/// buffer, with per-layer sub-views), activation and gradient buffers for up to <see cref="MaxBatch"/>
/// rows, and the loss/correct accumulators that stay on the device until read. Every copy and launch goes to
/// the kernel set's stream; what changes per step (the step number for dropout, the learning rate and Adam's
/// corrections) is read from a <see cref="StepValues"/> view: a training step's (<see cref="TrainingStep"/>), or the
/// model's own, which <see cref="SetStep"/> writes for a single step outside a training loop.
/// </summary>
internal sealed class DeviceMlp : IDisposable
{
    public MlpSpec Spec { get; }
    public int MaxBatch { get; }
    readonly KernelSet k;
    readonly Accelerator acc;
    readonly MemoryBuffer1D<float, Stride1D.Dense> parameters, gradients, velocity, second;   // velocity: momentum or Adam's m; second: Adam's v
    readonly MemoryBuffer1D<float, Stride1D.Dense>[] acts;   // acts[l+1] = output of layer l, [MaxBatch, Out(l)]
    readonly MemoryBuffer1D<float, Stride1D.Dense> dzA, dzB; // ping-pong layer gradients, [MaxBatch, max width]
    readonly MemoryBuffer1D<float, Stride1D.Dense> rowLoss, rowCorrect;
    readonly MemoryBuffer1D<double, Stride1D.Dense> metrics;  // [loss sum, correct count]
    readonly MemoryBuffer1D<long, Stride1D.Dense> firstBad;   // first training step whose running loss was NaN/Inf, or -1
    readonly StepSlot ownStep;                                // the step values of calls given none
    readonly LossWorkspace lossWorkspace;                     // the loss kernels' per-group sums
    readonly List<MemoryBuffer> owned = new();

    public ArrayView<float> Parameters => parameters.View;

    /// <summary>The output layer of the last forward pass, [rows, classes]: logits (softmax-ce) or sigmoid outputs (sigmoid-sse).</summary>
    public ArrayView<float> Outputs => acts[Spec.Layers].View;

    public DeviceMlp(KernelSet kernels, MlpSpec spec, int maxBatch)
    {
        k = kernels; acc = kernels.Accelerator; Spec = spec; MaxBatch = maxBatch;
        long needed = BytesNeeded(spec, maxBatch);
        long available = kernels.Profile.MemoryBytes;
        UserError TooLarge() => new($"out of device memory on {acc.Name}: the network {spec} at batch {maxBatch} needs about {needed / 1e6:N1} MB " +
            $"and the device has {available / 1e6:N1} MB; use a smaller --batch-size or --layers" + (kernels.Profile.IsHost ? "" : ", or --device cpu"));
        if (needed > available) throw TooLarge();   // a clean refusal before the allocator (or the OS) fails half-way
        try
        {
            parameters = Own(acc.Allocate1D<float>(spec.ParameterCount));
            gradients = Own(acc.Allocate1D<float>(spec.ParameterCount));
            velocity = Own(acc.Allocate1D<float>(spec.ParameterCount));
            second = Own(acc.Allocate1D<float>(spec.ParameterCount));
            acts = new MemoryBuffer1D<float, Stride1D.Dense>[spec.Layers + 1];
            for (int l = 0; l < spec.Layers; l++) acts[l + 1] = Own(acc.Allocate1D<float>((long)maxBatch * spec.Out(l)));
            int widest = spec.Sizes.Max();
            dzA = Own(acc.Allocate1D<float>((long)maxBatch * widest));
            dzB = Own(acc.Allocate1D<float>((long)maxBatch * widest));
            rowLoss = Own(acc.Allocate1D<float>(maxBatch));
            rowCorrect = Own(acc.Allocate1D<float>(maxBatch));
            metrics = Own(acc.Allocate1D<double>(2));
            firstBad = Own(acc.Allocate1D<long>(1));
            lossWorkspace = kernels.AllocateLossWorkspace(maxBatch);
        }
        catch (Exception e) when (e is OutOfMemoryException || e is AcceleratorException)
        {
            Dispose();
            throw TooLarge();
        }
        ownStep = kernels.NewStepSlot();
        var s = k.Stream;
        velocity.View.MemSetToZero(s);
        second.View.MemSetToZero(s);
        metrics.View.MemSetToZero(s);
        firstBad.View.CopyFromCPU(s, [-1L]);
    }

    /// <summary>Bytes of the device buffers of <paramref name="spec"/> at up to <paramref name="maxBatch"/> rows: parameters, gradients, two optimizer vectors, activations, two layer gradients, per-row loss and correctness.</summary>
    public static long BytesNeeded(MlpSpec spec, int maxBatch) =>
        4L * (4L * spec.ParameterCount + (long)maxBatch * (spec.Sizes.Skip(1).Sum() + 2L * spec.Sizes.Max() + 2)) + 16;

    MemoryBuffer1D<T, Stride1D.Dense> Own<T>(MemoryBuffer1D<T, Stride1D.Dense> b) where T : unmanaged { owned.Add(b); return b; }

    /// <summary>The dense-layer products one training step of <paramref name="spec"/> runs at a batch of <paramref name="batch"/> rows (layer l: m = batch, n = its outputs, k = its inputs).</summary>
    public static IEnumerable<(GemmProduct Product, int M, int N, int K)> Products(MlpSpec spec, int batch)
    {
        for (int l = 0; l < spec.Layers; l++)
        {
            yield return (GemmProduct.Forward, batch, spec.Out(l), spec.In(l));
            yield return (GemmProduct.WeightAndBiasGrad, batch, spec.Out(l), spec.In(l));
            if (l > 0) yield return (GemmProduct.InputGrad, batch, spec.Out(l), spec.In(l));
        }
    }

    ArrayView<float> W(ArrayView<float> flat, int l) => flat.SubView(Spec.WeightOffset(l), (long)Spec.Out(l) * Spec.In(l));
    ArrayView<float> B(ArrayView<float> flat, int l) => flat.SubView(Spec.BiasOffset(l), Spec.Out(l));

    public void SetParameters(float[] p)
    {
        if (p.Length != Spec.ParameterCount) throw new ArgumentException($"expected {Spec.ParameterCount} parameters, got {p.Length}");
        parameters.View.CopyFromCPU(k.Stream, p);
    }

    public float[] GetParameters()
    {
        var p = new float[Spec.ParameterCount];
        parameters.View.CopyToCPU(k.Stream, p);
        return p;
    }

    public float[] GetGradients()
    {
        var g = new float[Spec.ParameterCount];
        gradients.View.CopyToCPU(k.Stream, g);
        return g;
    }

    /// <summary>
    /// The optimiser state for checkpoints: 2 x ParameterCount values, the momentum (or Adam's first
    /// moment) vector, then Adam's second-moment vector (zeros for SGD and Nesterov).
    /// </summary>
    public float[] GetVelocity()
    {
        int n = Spec.ParameterCount;
        var v = new float[2 * n];
        velocity.View.CopyToCPU(k.Stream, v.AsSpan(0, n));   // straight into the halves: no third copy of a large vector on the host
        second.View.CopyToCPU(k.Stream, v.AsSpan(n, n));
        return v;
    }

    public void SetVelocity(float[] v)
    {
        int n = Spec.ParameterCount;
        if (v.Length != 2 * n) throw new ArgumentException($"expected {2 * n} optimizer-state values, got {v.Length}");
        velocity.View.CopyFromCPU(k.Stream, v.AsSpan(0, n));
        second.View.CopyFromCPU(k.Stream, v.AsSpan(n));
    }

    /// <summary>The first training step whose loss made the running loss sum NaN or infinite (recorded by the loss kernel of an <see cref="Evaluate"/> given its step), or null. Synchronises.</summary>
    public long? FirstNonFiniteStep()
    {
        var b = new long[1];
        firstBad.View.CopyToCPU(k.Stream, b);
        return b[0] < 0 ? null : b[0];
    }

    /// <summary>The accumulators as they stand (loss sum, correct count), without clearing. Synchronises.</summary>
    public (double LossSum, double Correct) PeekMetrics()
    {
        var m = new double[2];
        metrics.View.CopyToCPU(k.Stream, m);
        return (m[0], m[1]);
    }

    /// <summary>Restores the accumulators (a resumed epoch continues its sums exactly).</summary>
    public void SetMetrics(double lossSum, double correct) => metrics.View.CopyFromCPU(k.Stream, [lossSum, correct]);

    /// <summary>Inverted dropout on the hidden layers' outputs while training (rate 0: none), with its seed; the mask also depends on the step number read from the step values.</summary>
    public (float Rate, long Seed) Dropout { get; set; }

    bool Dropping(bool training) => training && Dropout.Rate > 0f;

    /// <summary>Writes the model's own step values (waits): what <see cref="Forward"/>, <see cref="Evaluate"/> and <see cref="Step(Optimizer, ArrayView{StepValues})"/> read when given no step values.</summary>
    public void SetStep(StepValues values) => ownStep.Set(values);

    ArrayView<StepValues> Or(ArrayView<StepValues> step) => step.IsValid ? step : ownStep.Current;

    /// <summary>Forward pass over X[m, inputs]; returns the output view [m, classes] (logits, or sigmoid outputs). Dropout only when training, with the step number in <paramref name="step"/> (default: the model's own).</summary>
    public ArrayView<float> Forward(ArrayView<float> x, int m, bool training = false, ArrayView<StepValues> step = default)
    {
        CheckBatch(m);
        var input = x;
        for (int l = 0; l < Spec.Layers; l++)
        {
            var y = acts[l + 1].View;
            k.DenseForward(input, W(parameters.View, l), B(parameters.View, l), y, m, Spec.Out(l), Spec.In(l), Spec.LayerActivation(l));
            if (Dropping(training) && l < Spec.Layers - 1)
                k.DropoutForward(y, m * Spec.Out(l), Dropout.Rate, Dropout.Seed, Or(step), l);
            input = y;
        }
        return acts[Spec.Layers].View;
    }

    /// <summary>
    /// Forward pass, the cost (per-row loss and correct count added to the device accumulators)
    /// and, when <paramref name="backward"/>, the gradient of the mean loss over the m rows into the
    /// flat gradient vector (without L2, which the optimizer adds). With <paramref name="watch"/> (a training step) the loss
    /// kernel also records the step number in <paramref name="step"/> if the running loss sum became NaN or infinite and no
    /// earlier step was recorded: no wait, read it with <see cref="FirstNonFiniteStep"/>. Dropout reads the step number from
    /// <paramref name="step"/> too (default: the model's own step values).
    /// </summary>
    public void Evaluate(ArrayView<float> x, ArrayView<int> y, int m, bool backward, bool watch = false, ArrayView<StepValues> step = default)
    {
        step = Or(step);
        var logits = Forward(x, m, training: backward, step);
        int last = Spec.Layers - 1;
        var dz = dzA.View;
        if (Spec.Loss == LossKind.SigmoidSquaredError)
            k.SigmoidSquaredError(logits, y, dz, rowLoss.View, rowCorrect.View, metrics.View, firstBad.View, lossWorkspace, step, m, Spec.Classes, 1f / m, backward, watch);
        else
            k.SoftmaxCrossEntropy(logits, y, dz, rowLoss.View, rowCorrect.View, metrics.View, firstBad.View, lossWorkspace, step, m, Spec.Classes, 1f / m, backward, watch);
        if (!backward) return;
        var other = dzB.View;
        for (int l = last; l >= 0; l--)
        {
            int n = Spec.Out(l), kin = Spec.In(l);
            ArrayView<float> hPrev = l == 0 ? x : acts[l].View.AsContiguous();
            k.WeightAndBiasGrad(dz, hPrev, W(gradients.View, l), B(gradients.View, l), m, n, kin);
            if (l > 0)
            {
                if (Dropping(backward))
                {
                    k.InputGrad(dz, W(parameters.View, l), hPrev, other, m, n, kin, Activation.Identity);
                    k.DropoutBackward(other, hPrev, m * kin, Dropout.Rate, Dropout.Seed, Or(step), l - 1, Spec.LayerActivation(l - 1));
                }
                else
                    k.InputGrad(dz, W(parameters.View, l), hPrev, other, m, n, kin, Spec.LayerActivation(l - 1));
                (dz, other) = (other, dz);
            }
        }
    }

    /// <summary>One fused update with <paramref name="o"/> at the learning rate (and Adam's bias corrections) in <paramref name="step"/>.</summary>
    public void Step(Optimizer o, ArrayView<StepValues> step)
    {
        switch (o.Kind)
        {
            case OptimizerKind.Sgd:
            case OptimizerKind.Nesterov:
                k.SgdMomentum(parameters.View, gradients.View, velocity.View, step, o.Momentum, o.L2, Spec.WeightCount, nesterov: o.Kind == OptimizerKind.Nesterov);
                break;
            default:
                k.Adam(parameters.View, gradients.View, velocity.View, second.View, step, KernelSet.AdamConstants(o.Beta1, o.Beta2, o.Eps, o.L2, o.Kind == OptimizerKind.AdamW),
                    Spec.WeightCount);
                break;
        }
    }

    /// <summary>One update outside a training loop: writes the model's own step values for learning rate <paramref name="lr"/> at 0-based global step <paramref name="step"/>, then <see cref="Step(Optimizer, ArrayView{StepValues})"/>.</summary>
    public void Step(Optimizer o, float lr, long step)
    {
        SetStep(TrainingStep.Values(o, lr, step));
        Step(o, ownStep.Current);
    }

    /// <summary>Reads and clears the accumulators: (sum of per-row losses, number correct). Synchronises.</summary>
    public (double LossSum, long Correct) TakeMetrics()
    {
        var m = new double[2];
        metrics.View.CopyToCPU(k.Stream, m);
        metrics.View.MemSetToZero(k.Stream);
        return (m[0], (long)Math.Round(m[1]));
    }

    void CheckBatch(int m)
    {
        if (m < 1 || m > MaxBatch) throw new ArgumentOutOfRangeException(nameof(m), $"batch of {m} rows; this model holds 1..{MaxBatch}");
    }

    public void Dispose()
    {
        ownStep?.Dispose();
        foreach (var b in owned) b.Dispose();
        owned.Clear();
        lossWorkspace?.Dispose();
    }
}
