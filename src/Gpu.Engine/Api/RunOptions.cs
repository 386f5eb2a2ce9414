using Gpu.Engine.Training;

namespace Gpu;

/// <summary>
/// How a training run is kept and watched (<see cref="Network.Train(Device, ImageData, Gpu.Engine.Settings.TrainOptions, RunOptions)"/>,
/// <see cref="Network.Resume"/>): the folder it writes (a checkpoint every epoch, the model at the end), the lines it says,
/// its progress, and when it stops. All optional: by default a run writes nothing and says nothing.
/// </summary>
public sealed class RunOptions
{
    /// <summary>
    /// The run's folder (<c>gpu train --output</c>): checkpoint/ every epoch and on a stop, history.csv and curves.png, and
    /// model.npy + model.json at the end. Created if missing; one run writes to a folder at a time. Null: nothing is written.
    /// </summary>
    public string? Output { get; init; }

    /// <summary>Replace an earlier run in <see cref="Output"/>: it is moved aside, and deleted when the new run checkpoints its first epoch (restored if it fails before that). Without it such a folder is refused.</summary>
    public bool Overwrite { get; init; }

    /// <summary>Start from these weights instead of the seeded initialisation: a model.npy of the network's length, or a safetensors file of its shapes.</summary>
    public string? InitFrom { get; init; }

    /// <summary>Each line <c>gpu train</c> prints: the device, network, settings and data, notes, every epoch, the result and what was written.</summary>
    public Action<string>? Say { get; init; }

    /// <summary>Called after every epoch with its losses and accuracies.</summary>
    public Action<TrainingProgress>? Progress { get; init; }

    /// <summary>Called after every training step with where the run stands (host counters only: it never waits for the device).</summary>
    public Action<StepReport>? Step { get; init; }

    /// <summary>Stops the run after the current step, with a checkpoint when there is an <see cref="Output"/>; the call then throws <see cref="OperationCanceledException"/>, whose message says where it stopped.</summary>
    public CancellationToken Cancel { get; init; }

    /// <summary>Also say the kernels launched per step, how (direct or CUDA graph) and the GEMM plans.</summary>
    public bool Verbose { get; init; }

    /// <summary>How messages name the program in the commands they suggest ("gpu train --resume DIR").</summary>
    public string Command { get; init; } = "gpu";
}

/// <summary>
/// What a resumed run (<see cref="Network.Resume"/>) may change; everything else comes from its checkpoint, so that it
/// continues exactly as it was set up.
/// </summary>
public sealed class ResumeOptions
{
    /// <summary>The device to continue on (as <see cref="Device.Open"/> takes it); null: the one it trained on, or auto when that one is not here.</summary>
    public string? Device { get; init; }

    /// <summary>Train to this many epochs in all (more than the checkpoint has done); null: the run's own.</summary>
    public int? Epochs { get; init; }

    /// <summary>Where the run's data is now, when it moved (it must be the same data: checked); its pixel range is the run's. Null: where it was.</summary>
    public DataFiles? Data { get; init; }

    /// <summary>A lower learning rate; only for a run that stopped on divergence (its last good checkpoint), recorded in the history.</summary>
    public float? LearningRate { get; init; }

    /// <summary>Another momentum; only after a divergence, as <see cref="LearningRate"/>.</summary>
    public float? Momentum { get; init; }

    /// <summary>Another L2 penalty; only after a divergence, as <see cref="LearningRate"/>.</summary>
    public float? L2 { get; init; }
}

/// <summary>Where a run stands after a step, from the host's own counters.</summary>
/// <param name="Epoch">The epoch (1-based).</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="Step">Steps of the epoch done.</param>
/// <param name="StepsPerEpoch">Steps in an epoch.</param>
/// <param name="GlobalStep">Steps of the run done.</param>
/// <param name="TotalSteps">Steps in the run.</param>
/// <param name="BatchSize">Images per step.</param>
public readonly record struct StepReport(int Epoch, int Epochs, int Step, int StepsPerEpoch, long GlobalStep, long TotalSteps, int BatchSize)
{
    internal StepReport(StepProgress p) : this(p.Epoch, p.Epochs, p.Step, p.StepsPerEpoch, p.GlobalStep, p.TotalSteps, p.BatchSize) { }
}
