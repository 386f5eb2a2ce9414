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
    double LaunchesPerStep = 0, double ReplaysPerStep = 0, string StepMode = "")
{
    /// <summary>
    /// Accuracy less than this share of the way from chance (1/classes) to 1 counts as about chance: below 0.19 for ten classes,
    /// 0.55 for two, 0.11 for a hundred. A network that learned anything sits far above it (one epoch on 2,000 Fashion-MNIST images
    /// reaches about 0.75), while one that collapsed, predicting one or two classes for everything, scores about 1/classes give or
    /// take the noise of a small validation split (0.155 for 200 images at --lr 0.5). A fixed multiple of chance (1.5/classes) would
    /// miss that case and would flag a 0.7-accurate two-class network.
    /// </summary>
    public const double ChanceBand = 0.1;

    /// <summary>
    /// One line when the run went wrong: the kept weights' validation accuracy (training accuracy without a validation split)
    /// is within <see cref="ChanceBand"/> of chance, or the training loss of their epoch is above the first epoch's. Such a
    /// run diverged without reaching the divergence guard's 10x loss (e.g. too high a --lr); null for a healthy run.
    /// </summary>
    public string? Warning
    {
        get
        {
            if (History.Count == 0) return null;
            var first = History[0];
            var kept = History[(StoppedEarlyAtBestEpoch ?? History.Count) - 1];   // early stopping keeps the best epoch's weights
            var problems = new List<string>();
            double chance = 1.0 / Spec.Classes, accuracy = kept.ValAccuracy ?? kept.TrainAccuracy;
            if (accuracy < chance + ChanceBand * (1 - chance))
                problems.Add($"{(kept.ValAccuracy != null ? "validation" : "training")} accuracy {accuracy:F4} after epoch {kept.Epoch} is about chance " +
                    $"(1/{Spec.Classes} = {chance:F4})");
            if (kept.Epoch > first.Epoch && kept.TrainLoss > first.TrainLoss)
                problems.Add($"the training loss rose from {first.TrainLoss:F3} in epoch {first.Epoch} to {kept.TrainLoss:F3} in epoch {kept.Epoch}");
            return problems.Count == 0 ? null
                : $"training went wrong: {string.Join(" and ", problems)}; the model is kept, but retrain it with a lower --lr (a tenth, say) or a longer --warmup-epochs";
        }
    }
}
