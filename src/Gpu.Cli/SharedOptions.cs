using Gpu.Engine.Data;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

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

