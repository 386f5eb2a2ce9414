using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// The flags several verbs share, stated once: their help texts and defaults (which CommandLineParser's attributes take as
/// constants) and the rules their values must meet, which <see cref="SettingFlags.CheckWords"/> applies to every verb's
/// command line before the verb runs (a rule's answer is the error line).
/// </summary>
internal static class SharedFlags
{
    public const string DeviceDefault = "auto";
    public const string DeviceHelp = "auto (CUDA, then OpenCL, then CPU), cpu, cuda[:N] or opencl[:N].";
    public const string PixelRangeDefault = "auto";
    public const string PixelRangeHelp = "Range of the values in .npy and .csv images: 0-255 (as they are), 0-1 (times 255), or auto (integers 0-255; floats 0-1 unless a value is above 1). IDX files hold uint8 0-255.";
    public const string LimitHelp = "Use only the first N training images (0: all).";

    /// <summary>Flag to the problem with a value, or null when it is good: the one place these values are validated.</summary>
    public static readonly IReadOnlyDictionary<string, Func<string, string?>> Rules = new Dictionary<string, Func<string, string?>>
    {
        ["--limit"] = v => int.TryParse(v, out int n) && n >= 0 ? null : $"--limit {v}: give a whole number >= 0 (0: all)",
        ["--pixel-range"] = v => { PixelRanges.Parse(v); return null; },   // throws the line itself
    };
}

/// <summary>
/// What train and search do when a run started with --overwrite fails before its first result (a checkpointed epoch, a
/// trial row): the earlier run moved aside comes back, and the error says so.
/// </summary>
internal static class OverwrittenRun
{
    /// <summary>
    /// Restores the earlier run in <paramref name="folder"/> after <paramref name="failed"/>; returns the error to throw
    /// instead (a user error, with <paramref name="back"/> added to its line), or null when <paramref name="failed"/> is
    /// to be rethrown as it is (then <paramref name="back"/> is written to <paramref name="stderr"/> first).
    /// </summary>
    public static UserError? Restore(RunFolder folder, Exception failed, string back, TextWriter stderr)
    {
        folder.RestoreAside();
        if (failed is UserError e) return new UserError($"{e.Message}; {back}", e.ExitCode);
        stderr.WriteLine(back);
        return null;
    }
}

/// <summary>
/// The options shared by train, landscape and gradcheck besides their setting flags (which come from the
/// setting table, see <see cref="SettingFlags"/>): the device.
/// </summary>
internal abstract class NetworkOptions : SettingsVerb
{
    [Option("device", Default = SharedFlags.DeviceDefault, HelpText = SharedFlags.DeviceHelp)]
    public string Device { get; set; } = SharedFlags.DeviceDefault;

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

    [Option("limit", Default = 0, HelpText = SharedFlags.LimitHelp + " For quick experiments.")]
    public int Limit { get; set; }

    /// <summary>"batch 128, lr 0.05, sgd momentum 0.9, l2 0.0001, cosine schedule, seed 1" (", tf32 products" when not fp32)</summary>
    public static string Describe(TrainOptions o) =>
        $"batch {o.BatchSize}, lr {o.LearningRate}, " +
        $"{Words.Name(o.Optimizer)}{(o.Optimizer == OptimizerKind.Sgd ? $" momentum {o.Momentum}" : "")}, l2 {o.L2}, " +
        $"{Words.Name(o.Schedule)} schedule{(o.WarmupEpochs > 0 ? $" after {o.WarmupEpochs} warm-up epochs" : "")}, seed {o.Seed}" +
        (o.Precision == Precision.Fp32 ? "" : $", {Words.Name(o.Precision)} products");
}
