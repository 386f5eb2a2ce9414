using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Settings;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// The options shared by train, landscape and gradcheck besides their setting flags (which come from the
/// setting table, see <see cref="SettingFlags"/>): the device.
/// </summary>
internal abstract class NetworkOptions : SettingsVerb
{
    [Option("device", Default = "auto", HelpText = "auto (CUDA, then OpenCL, then CPU), cpu, cuda[:N] or opencl[:N].")]
    public string Device { get; set; } = "auto";

    /// <summary>The settings the flags give; the rest keep <see cref="Gpu.Engine.Settings.TrainOptions"/>'s defaults.</summary>
    public TrainOptions TrainOptions() => Settings.ApplyTo(new TrainOptions());

    /// <summary>The network the flags describe, for data with <paramref name="inputs"/> features and <paramref name="classes"/> classes.</summary>
    public MlpSpec Network(int inputs, int classes)
    {
        var o = TrainOptions();
        return MlpSpec.FromHidden(inputs, o.Hidden, classes, o.Activation, o.Loss);
    }
}

/// <summary>The options of a training run that train and landscape share.</summary>
internal abstract class TrainingRunOptions : NetworkOptions
{
    [Option("data", Default = DataLocator.DefaultFolder, HelpText = "Folder with the four IDX files (train-/t10k- images and labels, .gz or plain), or train/test .npy or .csv files; data/mnist-10k also ships.")]
    public string Data { get; set; } = DataLocator.DefaultFolder;

    [Option("limit", Default = 0, HelpText = "Use only the first N training images (0: all). For quick experiments.")]
    public int Limit { get; set; }

    /// <summary>"batch 128, lr 0.05, sgd momentum 0.9, l2 0.0001, cosine schedule, seed 1"</summary>
    public static string Describe(TrainOptions o) =>
        $"batch {o.BatchSize}, lr {o.LearningRate}, " +
        $"{Words.Name(o.Optimizer)}{(o.Optimizer == OptimizerKind.Sgd ? $" momentum {o.Momentum}" : "")}, l2 {o.L2}, " +
        $"{Words.Name(o.Schedule)} schedule{(o.WarmupEpochs > 0 ? $" after {o.WarmupEpochs} warm-up epochs" : "")}, seed {o.Seed}";
}
