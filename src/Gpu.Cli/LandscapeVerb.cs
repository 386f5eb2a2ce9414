using System.Diagnostics;
using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
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
        var options = TrainOptions() with { ValFraction = 0 };
        options.Validate();
        if (RecordEvery < 0) throw new UserError($"--record-every {RecordEvery}: give a whole number of steps >= 1, or 0 for about 10 points per epoch");
        if (Grid < 2) throw new UserError($"--grid {Grid}: give a whole number >= 2, e.g. 50");
        if (EvalImages < 1) throw new UserError($"--eval-images {EvalImages}: give a whole number >= 1, e.g. 2000");
        using var folder = RunFolder.Take(Output, "gpu landscape");   // one writer per folder
        string outDir = folder.Folder;
        var data = DataSource.OfFolder(Data).Load();
        data = data.Limited(Limit, note => stdout.WriteLine($"note: {note}"));
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        var spec = Network(data.Train.Features, data.Train.Classes);
        stdout.WriteLine($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters)");
        stdout.WriteLine($"training: {TrainingRun.Describe(options)}");
        int every = RecordEvery > 0 ? RecordEvery : LossLandscape.DefaultRecordEvery(data.Train.Count, options.BatchSize);
        int evalImages = Math.Min(EvalImages, data.Train.Count);
        stdout.WriteLine($"data: {data.Folder}, {data.Train.Count:N0} training images (no validation split); recording the parameters {(every == 1 ? "after every step" : $"every {every} steps")}; " +
            $"loss on a {Grid} x {Grid} grid over the first {evalImages:N0} training images");

        var display = ProgressDisplay.For(stdout, terminal);
        var clock = Stopwatch.StartNew();
        var r = display.Run(() => LossLandscape.Run(device, data, options, every, Grid, EvalImages,
            onEpoch: e => display.Line($"epoch {e.Epoch,3}/{options.Epochs} loss {e.TrainLoss:F3} acc {e.TrainAccuracy:F3} | {e.TrainSeconds:F1}s"),
            onStep: p => display.Step(new StepReport(p)),
            gridProgress: ProgressDisplay.Counter(display.Line, "grid points"),
            faultAdvice: "retry with --device cpu"));

        var end = r.Path[^1];
        stdout.WriteLine($"trajectory: {r.Path.Count} points (steps 0 to {end.Step}); PC1 explains {100 * r.Plane.Explained1:F1}% of the variance, PC2 {100 * r.Plane.Explained2:F1}%");
        stdout.WriteLine($"path loss on the {r.EvalImages:N0} images: start {r.Path[0].Loss:F4}, end {end.Loss:F4}; " +
            $"grid loss from {Min(r.Loss):F4} to {Max(r.Loss):F4} over PC1 [{r.A[0]:G3}, {r.A[^1]:G3}] x PC2 [{r.B[0]:G3}, {r.B[^1]:G3}]");
        stdout.WriteLine($"test accuracy of the trained network {r.Training.Test.Accuracy:F4}; {clock.Elapsed.TotalSeconds:F1} s in all");
        r.WriteCsv(Path.Combine(outDir, "landscape.csv"));
        LandscapePlot.Draw(r, Path.Combine(outDir, "landscape.png"),
            $"training loss of {spec} ({data.Train.Name}, {r.EvalImages:N0} images), {options.Epochs} epochs, seed {options.Seed}");
        stdout.WriteLine($"wrote landscape.csv and landscape.png in {outDir}");
        return 0;
    }

    static double Min(double[,] a) => a.Cast<double>().Where(double.IsFinite).DefaultIfEmpty(double.NaN).Min();
    static double Max(double[,] a) => a.Cast<double>().Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
}
