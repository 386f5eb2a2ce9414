using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("landscape", HelpText = "Train while recording the parameters, then draw the training loss over the plane of the trajectory's first two principal components with the SGD path on it (Li et al. 2018): landscape.csv and landscape.png.")]
[Settings("layers", "activation", "loss", "init", "seed", "epochs", "batch-size", "lr", "momentum", "l2", "optimizer")]
internal sealed class LandscapeVerb : TrainingRunOptions, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Terminal);

    [Flag(nameof(Flags.RecordEvery))]
    public int RecordEvery { get; set; }

    [Flag(nameof(Flags.Grid))]
    public int Grid { get; set; } = 50;

    [Flag(nameof(Flags.EvalImages))]
    public int EvalImages { get; set; } = 2000;

    [Flag(nameof(Flags.LandscapeOutput))]
    public string Output { get; set; } = "landscape";

    public int Execute(TextWriter stdout, bool terminal)
    {
        var options = TrainOptions();
        options.Validate();
        using var device = Gpu.Device.Open(Device);
        var display = ProgressDisplay.For(stdout, terminal);
        display.Run(() => Landscape.Draw(device, ImageData.Open(new DataFiles { Folder = Data }, Limit), options, new LandscapeOptions
        {
            Output = Output, RecordEvery = RecordEvery, Grid = Grid, EvalImages = EvalImages,
            Say = display.Line, Step = display.Step, GridProgress = ProgressDisplay.Counter(display.Line, "grid points"),
        }));
        return 0;
    }
}
