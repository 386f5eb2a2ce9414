using Gpu.Engine.Model;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Training;

/// <summary>What one epoch measured. Losses are the mean cost per image (cross-entropy or 1/2 sum of squares), without the L2 term.</summary>
internal sealed record EpochStats(int Epoch, double TrainLoss, double TrainAccuracy, double? ValLoss, double? ValAccuracy,
    double TrainSeconds, double SamplesPerSecond, double EvalSeconds);

internal sealed record EvalStats(double Loss, double Accuracy, int Count);

/// <summary>
/// A finished run; <see cref="LaunchesPerStep"/>: kernels per training step (launched directly or replayed in a CUDA graph;
/// evaluation left out), <see cref="ReplaysPerStep"/>: CUDA graph replays per step, <see cref="StepMode"/>: how the steps
/// ran (Runtime/TrainingStep.cs).
/// </summary>
internal sealed record TrainResult(MlpSpec Spec, float[] Parameters, IReadOnlyList<EpochStats> History, EvalStats Test,
    double TrainSamplesPerSecond, double Seconds, int TrainCount, int ValCount, DataPath DataPath, int? StoppedEarlyAtBestEpoch = null,
    double LaunchesPerStep = 0, double ReplaysPerStep = 0, string StepMode = "");
