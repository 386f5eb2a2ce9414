using Gpu.Engine.Settings;
using Gpu.Kernels;

namespace Gpu.Engine.Runtime;

/// <summary>
/// One training step on the device, the one thing the trainer calls per step: the source stages its batch, the step's
/// values (learning rate, Adam's bias corrections, the step number) are selected on the device from the epoch's table,
/// and then, on the engine's stream, the batch is loaded (the resident gather), the model runs forward, loss (with the
/// metric sums and the divergence watch), backward and the fused update. Everything that changes from step to step
/// is read by the kernels from device memory, so the launches of a step are the same every step, and on a CUDA device
/// whose profile allows it (<see cref="DeviceProfile.StepGraphs"/>) they are recorded once per batch size as a CUDA
/// graph (<see cref="CudaGraph"/>) and replayed: the first step of a size runs directly (it compiles kernels and sizes
/// scratch buffers, which a recording must not do), the second is recorded, every later one replayed. Where a graph
/// cannot be recorded, the steps run as direct launches and <see cref="Mode"/> says why.
/// </summary>
internal sealed class TrainingStep : IDisposable
{
    readonly KernelSet kernels;
    readonly DeviceMlp model;
    readonly Optimizer optimizer;
    readonly StepSlot values;
    readonly Dictionary<int, CudaGraph> graphs = [];   // by batch rows
    readonly HashSet<int> warmed = [];                 // batch sizes run directly once
    string? direct;                                    // why steps run as direct launches (null: graphs are used)
    int epochSteps, next;   // the steps of the epoch begun, and the next one

    public TrainingStep(KernelSet kernels, DeviceMlp model, IBatchSource source, TrainOptions options)
    {
        this.kernels = kernels; this.model = model; Source = source;
        optimizer = options.OptimizerSettings;
        model.Dropout = (options.Dropout, (long)options.Seed);
        values = kernels.NewStepSlot();
        direct = kernels.Profile.StepGraphs ? null : kernels.Profile.Kind == DeviceKind.Cuda ? "CUDA graphs are off in this device profile" : "CUDA graphs need a CUDA device";
    }

    /// <summary>Where the steps' batches come from (its passes are begun by the trainer, one per epoch).</summary>
    public IBatchSource Source { get; }

    /// <summary>Steps run so far.</summary>
    public long Steps { get; private set; }

    /// <summary>Kernels the steps ran so far: launched directly, or replayed in a graph (a graph's nodes count each replay).</summary>
    public long Kernels { get; private set; }

    /// <summary>Graph replays so far (one per replayed step).</summary>
    public long Replays { get; private set; }

    /// <summary>"one CUDA graph per step (recorded for batches of 128, 96 rows)" or "direct launches: why".</summary>
    public string Mode => direct == null
        ? $"one CUDA graph per step{(graphs.Count > 0 ? $" (recorded for batches of {string.Join(", ", graphs.Keys)} rows)" : "")}"
        : $"direct launches: {direct}";

    /// <summary>The values of one step: learning rate <paramref name="lr"/> at 0-based global step <paramref name="step"/>, with Adam's bias corrections for t = step + 1 when <paramref name="o"/> is Adam or AdamW.</summary>
    public static StepValues Values(Optimizer o, float lr, long step)
    {
        var (c1, c2) = o.Kind is OptimizerKind.Adam or OptimizerKind.AdamW ? KernelSet.AdamCorrections(o.Beta1, o.Beta2, step + 1) : (0f, 0f);
        return new StepValues { Lr = lr, C1 = c1, C2 = c2, Step = step };
    }

    /// <summary>Starts a pass of the source (begun by the caller) with one entry per step, in order: uploads them (waits for the copy).</summary>
    public void BeginEpoch(StepValues[] steps)
    {
        values.BeginPass(steps);
        epochSteps = steps.Length;
        next = 0;
    }

    /// <summary>Waits until the device has run every step enqueued so far.</summary>
    public void WaitForDevice() => kernels.Stream.Synchronize();

    /// <summary>Enqueues the epoch's next step (no wait).</summary>
    public void Run()
    {
        if (next >= epochSteps) throw new InvalidOperationException("the epoch's steps are done");
        var (x, y, rows) = Source.Stage();
        values.Select(next);
        next++;
        Steps++;
        if (direct == null && graphs.TryGetValue(rows, out var graph))
        {
            graph.Launch();
            Replays++;
            Kernels += graph.Nodes;
            return;
        }
        if (direct == null && warmed.Contains(rows))
        {
            var (recorded, why) = CudaGraph.Record(kernels.Stream, () => Launch(x, y, rows));
            if (recorded != null)
            {
                graphs[rows] = recorded;
                recorded.Launch();   // recording ran nothing: this step runs now
                Replays++;
                Kernels += recorded.Nodes;
                return;
            }
            direct = why;   // nothing the failed recording enqueued ran: this step and the rest run directly
        }
        long launched = kernels.Launches;
        Launch(x, y, rows);
        Kernels += kernels.Launches - launched;
        warmed.Add(rows);
    }

    /// <summary>The launches of one step, on the engine's stream.</summary>
    void Launch(ILGPU.ArrayView<float> x, ILGPU.ArrayView<int> y, int rows)
    {
        Source.Load();
        model.Evaluate(x, y, rows, backward: true, watch: true, values.Current);   // the loss kernel records the first step whose loss is NaN/Inf, no wait
        model.Step(optimizer, values.Current);
    }

    public void Dispose()
    {
        foreach (var g in graphs.Values) g.Dispose();
        graphs.Clear();
        values.Dispose();
    }
}
