using Gpu.Engine.Model;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Engine.Runtime;

/// <summary>
/// An MLP living on one accelerator: the flat parameter, gradient and momentum vectors (each one
/// buffer, with per-layer sub-views), activation and gradient buffers for up to <see cref="MaxBatch"/>
/// rows, and the loss/correct accumulators that stay on the device until read.
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
    readonly LossWorkspace lossWorkspace;                     // the loss kernels' per-group sums
    readonly MemoryBuffer1D<StepValues, Stride1D.Dense> stepValues;   // StepWindow consecutive steps from stepWindowStart: what the divergence watch records
    long stepWindowStart = -1;
    readonly List<MemoryBuffer> owned = new();

    public ArrayView<float> Parameters => parameters.View;

    /// <summary>The output layer of the last forward pass, [rows, classes]: logits (softmax-ce) or sigmoid outputs (sigmoid-sse).</summary>
    public ArrayView<float> Outputs => acts[Spec.Layers].View;

    public DeviceMlp(KernelSet kernels, MlpSpec spec, int maxBatch)
    {
        k = kernels; acc = kernels.Accelerator; Spec = spec; MaxBatch = maxBatch;
        long needed = 4L * (4L * spec.ParameterCount + (long)maxBatch * (spec.Sizes.Skip(1).Sum() + 2L * spec.Sizes.Max() + 2)) + 16;
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
            stepValues = Own(acc.Allocate1D<StepValues>(StepWindow));
            lossWorkspace = kernels.AllocateLossWorkspace(maxBatch);
        }
        catch (Exception e) when (e is OutOfMemoryException || e is AcceleratorException)
        {
            Dispose();
            throw TooLarge();
        }
        velocity.MemSetToZero();
        second.MemSetToZero();
        metrics.MemSetToZero();
        stepValues.MemSetToZero();
        firstBad.CopyFromCPU([-1L]);
    }

    MemoryBuffer1D<T, Stride1D.Dense> Own<T>(MemoryBuffer1D<T, Stride1D.Dense> b) where T : unmanaged { owned.Add(b); return b; }

    ArrayView<float> W(ArrayView<float> flat, int l) => flat.SubView(Spec.WeightOffset(l), (long)Spec.Out(l) * Spec.In(l));
    ArrayView<float> B(ArrayView<float> flat, int l) => flat.SubView(Spec.BiasOffset(l), Spec.Out(l));

    public void SetParameters(float[] p)
    {
        if (p.Length != Spec.ParameterCount) throw new ArgumentException($"expected {Spec.ParameterCount} parameters, got {p.Length}");
        parameters.CopyFromCPU(p);
    }

    public float[] GetParameters()
    {
        var p = new float[Spec.ParameterCount];
        parameters.CopyToCPU(p);
        return p;
    }

    public float[] GetGradients()
    {
        var g = new float[Spec.ParameterCount];
        gradients.CopyToCPU(g);
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
        var part = new float[n];
        velocity.CopyToCPU(part);
        part.CopyTo(v, 0);
        second.CopyToCPU(part);
        part.CopyTo(v, n);
        return v;
    }

    public void SetVelocity(float[] v)
    {
        int n = Spec.ParameterCount;
        if (v.Length != 2 * n) throw new ArgumentException($"expected {2 * n} optimizer-state values, got {v.Length}");
        velocity.CopyFromCPU(v[..n]);
        second.CopyFromCPU(v[n..]);
    }

    /// <summary>The first training step whose loss made the running loss sum NaN or infinite (recorded by the loss kernel of an <see cref="Evaluate"/> given its step), or null. Synchronises.</summary>
    public long? FirstNonFiniteStep()
    {
        var b = new long[1];
        firstBad.CopyToCPU(b);
        return b[0] < 0 ? null : b[0];
    }

    /// <summary>The accumulators as they stand (loss sum, correct count), without clearing. Synchronises.</summary>
    public (double LossSum, double Correct) PeekMetrics()
    {
        var m = new double[2];
        metrics.CopyToCPU(m);
        return (m[0], m[1]);
    }

    /// <summary>Restores the accumulators (a resumed epoch continues its sums exactly).</summary>
    public void SetMetrics(double lossSum, double correct) => metrics.CopyFromCPU([lossSum, correct]);


    /// <summary>Inverted dropout on the hidden layers' outputs while training (rate 0: none), with its seed and the global step.</summary>
    public (float Rate, long Seed, long Step) Dropout { get; set; }

    bool Dropping(bool training) => training && Dropout.Rate > 0f;

    /// <summary>Forward pass over X[m, inputs]; returns the output view [m, classes] (logits, or sigmoid outputs). Dropout only when training.</summary>
    public ArrayView<float> Forward(ArrayView<float> x, int m, bool training = false)
    {
        CheckBatch(m);
        var input = x;
        for (int l = 0; l < Spec.Layers; l++)
        {
            var y = acts[l + 1].View;
            k.DenseForward(input, W(parameters.View, l), B(parameters.View, l), y, m, Spec.Out(l), Spec.In(l), Spec.LayerActivation(l));
            if (Dropping(training) && l < Spec.Layers - 1)
                k.DropoutForward(y, m * Spec.Out(l), Dropout.Rate, Dropout.Seed, Dropout.Step, l);
            input = y;
        }
        return acts[Spec.Layers].View;
    }

    /// <summary>
    /// Forward pass, the cost (per-row loss and correct count added to the device accumulators)
    /// and, when <paramref name="backward"/>, the gradient of the mean loss over the m rows into the
    /// flat gradient vector (without L2, which the optimizer adds). With <paramref name="watchStep"/> &gt;= 0 (a training
    /// step's number) the loss kernel also records that step if the running loss sum became NaN or infinite and no
    /// earlier step was recorded: no wait, read it with <see cref="FirstNonFiniteStep"/>.
    /// </summary>
    public void Evaluate(ArrayView<float> x, ArrayView<int> y, int m, bool backward, long watchStep = -1)
    {
        var logits = Forward(x, m, training: backward);
        int last = Spec.Layers - 1;
        var dz = dzA.View;
        bool watch = watchStep >= 0;
        ArrayView<StepValues> step = watch ? StepView(watchStep) : stepValues.View.SubView(0, 1);   // an evaluation's is not read
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
                    k.DropoutBackward(other, hPrev, m * kin, Dropout.Rate, Dropout.Seed, Dropout.Step, l - 1, Spec.LayerActivation(l - 1));
                }
                else
                    k.InputGrad(dz, W(parameters.View, l), hPrev, other, m, n, kin, Spec.LayerActivation(l - 1));
                (dz, other) = (other, dz);
            }
        }
    }

    /// <summary>Steps the device holds at a time for the loss kernel's divergence watch (32 bytes each).</summary>
    const int StepWindow = 1024;

    /// <summary>
    /// The one-element view holding <paramref name="step"/> for the loss kernel, which reads the step from device memory. Until
    /// a per-step table of the trainer holds it, the device holds <see cref="StepWindow"/> consecutive steps, rewritten from
    /// the host when a step falls outside them: a copy that waits for the stream once per window, not once per step (which
    /// cost POCL 45% of W1's training speed).
    /// </summary>
    ArrayView<StepValues> StepView(long step)
    {
        if (stepWindowStart < 0 || step < stepWindowStart || step >= stepWindowStart + StepWindow)
        {
            var window = new StepValues[StepWindow];
            for (int i = 0; i < StepWindow; i++) window[i] = new StepValues { Step = step + i };
            stepValues.CopyFromCPU(window);
            stepWindowStart = step;
        }
        return stepValues.View.SubView(step - stepWindowStart, 1).AsContiguous();
    }

    /// <summary>One fused update with <paramref name="o"/> at learning rate <paramref name="lr"/>; <paramref name="step"/> is the 0-based global step (Adam's bias correction).</summary>
    public void Step(Optimizer o, float lr, long step)
    {
        switch (o.Kind)
        {
            case OptimizerKind.Sgd:
            case OptimizerKind.Nesterov:
                k.SgdMomentum(parameters.View, gradients.View, velocity.View, lr, o.Momentum, o.L2, Spec.WeightCount, nesterov: o.Kind == OptimizerKind.Nesterov);
                break;
            default:
                k.Adam(parameters.View, gradients.View, velocity.View, second.View, lr, o.Beta1, o.Beta2, o.Eps, step + 1, o.L2,
                    decoupled: o.Kind == OptimizerKind.AdamW, Spec.WeightCount);
                break;
        }
    }

    /// <summary>Reads and clears the accumulators: (sum of per-row losses, number correct). Synchronises.</summary>
    public (double LossSum, long Correct) TakeMetrics()
    {
        var m = new double[2];
        metrics.CopyToCPU(m);
        metrics.MemSetToZero();
        return (m[0], (long)Math.Round(m[1]));
    }

    void CheckBatch(int m)
    {
        if (m < 1 || m > MaxBatch) throw new ArgumentOutOfRangeException(nameof(m), $"batch of {m} rows; this model holds 1..{MaxBatch}");
    }

    public void Dispose()
    {
        foreach (var b in owned) b.Dispose();
        owned.Clear();
        lossWorkspace?.Dispose();
    }
}
