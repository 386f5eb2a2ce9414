using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// The options shared by train, landscape and gradcheck besides their setting flags (which come from the
/// setting table, see <see cref="SettingFlags"/>): the device.
/// </summary>
internal abstract class NetworkOptions : SettingsVerb
{
    [Flag(nameof(Flags.Device))]
    public string Device { get; set; } = "";

    /// <summary>The settings the flags give; the rest keep <see cref="Gpu.Engine.Settings.TrainOptions"/>'s defaults.</summary>
    public TrainOptions TrainOptions() => Settings.ApplyTo(new TrainOptions());
}

/// <summary>The options of a training run that train and landscape share.</summary>
internal abstract class TrainingRunOptions : NetworkOptions
{
    [Flag(nameof(Flags.Data))]
    public string Data { get; set; } = "";

    [Flag(nameof(Flags.Limit))]
    public int Limit { get; set; }
}

