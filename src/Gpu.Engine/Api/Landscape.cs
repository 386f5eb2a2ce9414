using Gpu.Engine.Experiments;

namespace Gpu;

/// <summary>
/// The loss landscape of a training run (Li et al. 2018; <c>gpu landscape</c>): train while recording the flat parameter
/// vector, take the trajectory's first two principal components, and evaluate the training loss over that plane with the
/// SGD path on it. Writes landscape.csv (kind,step,a,b,loss: grid points, then path points) and landscape.png.
/// </summary>
public static class Landscape
{
    /// <summary>Trains on <paramref name="data"/>'s training images (no validation split) with <paramref name="options"/> and draws the landscape into <paramref name="run"/>'s folder.</summary>
    /// <param name="device">The device to train and evaluate on.</param>
    /// <param name="data">The images (<see cref="ImageData.Open"/>'s, with its limit).</param>
    /// <param name="options">The training settings; its validation share is set to 0.</param>
    /// <param name="run">Where, how densely and what is said.</param>
    /// <returns>The folder written.</returns>
    /// <exception cref="Gpu.Engine.UserError">A setting out of range, a folder another command holds, a device failure.</exception>
    public static string Draw(Device device, ImageData data, Gpu.Engine.Settings.TrainOptions options, LandscapeOptions run) =>
        LossLandscape.Make(device.Compute, data.Source, data.Limit, data.IsLoaded ? data.Pair : null, options, run.Output, run.RecordEvery, run.Grid, run.EvalImages,
            run.Say ?? (_ => { }), run.Step == null ? null : p => run.Step(new StepReport(p)), run.GridProgress).Folder;
}

/// <summary>What <see cref="Landscape.Draw"/> records, evaluates and says.</summary>
public sealed class LandscapeOptions
{
    /// <summary>The folder for landscape.csv and landscape.png (created if missing).</summary>
    public string Output { get; init; } = "landscape";
    /// <summary>Record the parameters every N steps (plus the start); 0: about 10 points per epoch.</summary>
    public int RecordEvery { get; init; }
    /// <summary>The loss is evaluated on a Grid x Grid lattice of the plane.</summary>
    public int Grid { get; init; } = 50;
    /// <summary>The first N training images the loss is evaluated on.</summary>
    public int EvalImages { get; init; } = 2000;
    /// <summary>Each line <c>gpu landscape</c> prints.</summary>
    public Action<string>? Say { get; init; }
    /// <summary>Called after every training step.</summary>
    public Action<StepReport>? Step { get; init; }
    /// <summary>Called with (done, total) as the grid points are evaluated.</summary>
    public Action<int, int>? GridProgress { get; init; }
}
