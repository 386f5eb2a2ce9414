namespace Gpu.Engine.Training;

/// <summary>
/// Optional hooks into <c>Trainer.Run</c>: where to resume from, when to stop, and who is told
/// about progress and checkpoints. None of them makes the host wait for the device inside an epoch.
/// </summary>
internal sealed class TrainControl
{
    /// <summary>Continue from this state (parameters, momentum, position in the run, partial epoch sums) instead of the seeded initialisation.</summary>
    public TrainState? Resume { get; init; }

    /// <summary>Start a fresh run from these parameters (the flat vector of the run's network, e.g. <c>train --init-from</c>) instead of the seeded initialisation; ignored when resuming.</summary>
    public float[]? InitialParameters { get; init; }

    /// <summary>When cancelled, training finishes the current step, reports a checkpoint and throws <see cref="TrainingInterrupted"/>.</summary>
    public CancellationToken Stop { get; init; }

    /// <summary>Called after every step with host-side counters only (no device synchronisation).</summary>
    public Action<StepProgress>? OnStep { get; init; }

    /// <summary>
    /// How often, at most, the host reads the device's divergence record inside an epoch (it is read at
    /// every epoch end too). Each read waits for the device once; the default of 5 s makes that negligible.
    /// </summary>
    public TimeSpan DivergenceCheckInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>False: skip the test set at the end (the result's Test is NaN over 0 images); a grid search scores trials on validation only.</summary>
    public bool EvaluateTest { get; init; } = true;

    /// <summary>Called with the full state at the end of every epoch (the last good checkpoint) and when stopped.</summary>
    public Action<TrainState>? OnCheckpoint { get; init; }

    /// <summary>Called once when the run diverges, just before the <see cref="UserError"/> (exit code 3) that stops it.</summary>
    public Action<Divergence>? OnDiverged { get; init; }

    /// <summary>
    /// Every <see cref="ParametersEvery"/> global steps (and at step 0, before the first step of a fresh
    /// run), <see cref="OnParameters"/> gets (global step, the flat parameter vector). Each call reads the
    /// parameters from the device, so the host waits for the device then: use it sparingly (e.g. for a trajectory).
    /// </summary>
    public int ParametersEvery { get; init; }

    /// <summary>See <see cref="ParametersEvery"/>.</summary>
    public Action<long, float[]>? OnParameters { get; init; }

    /// <summary>
    /// What a device failure's one-line error (exit code 4) ends with: what the user can do next. The
    /// caller knows that (the CLI names its own flags and folders); the engine does not.
    /// </summary>
    public string FaultAdvice { get; init; } = DefaultFaultAdvice;

    /// <summary>The advice of a device-fault message when the caller gives none.</summary>
    public const string DefaultFaultAdvice = "retry on another device";
}

/// <summary>Where a run stands, from the host's own counters: epoch (1-based), steps of it done, steps per epoch, steps of the run done and in all, and the rows of a step.</summary>
internal readonly record struct StepProgress(int Epoch, int Epochs, int Step, int StepsPerEpoch, long GlobalStep, long TotalSteps, int BatchSize);

/// <summary>
/// Everything needed to continue a run exactly: the parameters and momentum vectors, the position
/// (<see cref="EpochsDone"/> whole epochs plus <see cref="StepInEpoch"/> steps of the next one;
/// <see cref="GlobalStep"/> drives the learning-rate schedule), the device's loss and correct sums of
/// the unfinished epoch, and the history of the finished epochs. Shuffles, split and initialisation
/// are derived from the seed, so no generator state needs saving. With early stopping, <see cref="Best"/>
/// holds the parameters of the best epoch so far (<see cref="BestEpoch"/>).
/// </summary>
internal sealed record TrainState(int EpochsDone, int StepInEpoch, int StepsPerEpoch, long GlobalStep,
    float[] Parameters, float[] Velocity, double PartialLossSum, double PartialCorrect, IReadOnlyList<EpochStats> History,
    float[]? Best = null, int BestEpoch = 0)
{
    public bool MidEpoch => StepInEpoch > 0;
}

/// <summary>
/// Where and how a run diverged: the epoch (1-based) and, when the device recorded it, the step in it; what
/// happened, in words; the learning rate it had and the one <c>Trainer.SuggestedRate</c> suggests instead.
/// </summary>
internal sealed record Divergence(int Epoch, long? Step, string What, double LearningRate, double SuggestedRate);

/// <summary>Thrown by <c>Trainer.Run</c> after a requested stop, once the checkpoint hook has been given <see cref="State"/>.</summary>
internal sealed class TrainingInterrupted(TrainState state)
    : Exception($"training interrupted after {state.EpochsDone} epochs and {state.StepInEpoch} steps")
{
    public TrainState State { get; } = state;
}
