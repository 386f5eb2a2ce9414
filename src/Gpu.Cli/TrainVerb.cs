using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("train", HelpText = "Train an MLP (default: W1, 784-256-128-10 on Fashion-MNIST) and report test accuracy.")]
[Settings]
public sealed class TrainVerb : TrainingRunOptions
{
    [Option("train-images", HelpText = "Training images: IDX, .npy ([N, features] or [N, h, w]; uint8 or float) or .csv (label,pixel0,...). Overrides --data; needs --test-images.")]
    public string? TrainImages { get; set; }

    [Option("train-labels", HelpText = "Training labels: IDX or .npy (not for .csv images).")]
    public string? TrainLabels { get; set; }

    [Option("test-images", HelpText = "Test images, as --train-images.")]
    public string? TestImages { get; set; }

    [Option("test-labels", HelpText = "Test labels, as --train-labels.")]
    public string? TestLabels { get; set; }

    [Option("output", HelpText = "Folder for model.npy + model.json (the trained model, at the end), history.csv + curves.png (every epoch) and checkpoint/ (every epoch and on Ctrl-C), created if missing.")]
    public string? Output { get; set; }

    [Option("config", HelpText = "YAML experiment file (like config_exp.yaml): a Train: section (batch_size, learning_rate, reg, epochs, momentum, and any other option under its flag's name) and a Model: section (hidden_size: widths, activation, ...). Flags given on the command line override it.")]
    public string? Config { get; set; }

    [Option("verbose", HelpText = "Also print the kernel launches per training step: at small batches a GPU step costs about one launch overhead per kernel.")]
    public bool Verbose { get; set; }

    [Option("resume", HelpText = "Continue the run whose --output folder (or checkpoint folder) is DIR, with its settings; only --epochs, --device and --verbose may be given too.")]
    public string? Resume { get; set; }

    /// <summary>Flags that may accompany --resume: the rest come from the checkpoint.</summary>
    static readonly string[] ResumeOverrides = ["--resume", "--epochs", "--device", "--verbose"];

    public int Execute(TextWriter stdout, TextWriter stderr, string[]? args = null, CancellationToken stop = default, bool terminal = false)
    {
        var given = (args ?? []).Where(a => a.StartsWith("--")).Select(a => a.Split('=')[0]).ToHashSet();
        TrainOptions options;
        string dataFolder;
        int limit;
        string? outDir;
        CheckpointRun? resumedRun = null;
        TrainState? resume = null;
        if (Resume != null)
        {
            var extra = given.Except(ResumeOverrides).FirstOrDefault();
            if (extra != null)
                throw new UserError($"{extra} cannot be changed when resuming: --resume takes its settings from the checkpoint; only --epochs, --device and --verbose may be given");
            (resumedRun, resume) = Checkpoint.Read(Resume);
            options = Settings.Given("epochs") ? resumedRun.Options with { Epochs = TrainOptions().Epochs } : resumedRun.Options;
            if (resume.EpochsDone >= options.Epochs)
                throw new UserError($"the run in {Resume} has done {resume.EpochsDone} of {options.Epochs} epochs; give --epochs N with N > {resume.EpochsDone} to train further");
            dataFolder = resumedRun.DataFolder;
            limit = resumedRun.Limit;
            outDir = AtomicFile.EnsureFolder(File.Exists(Path.Combine(Resume, "state.json")) ? Path.GetDirectoryName(Path.GetFullPath(Resume))! : Resume);
        }
        else
        {
            options = new TrainOptions();
            if (Config != null) options = ExperimentConfig.Read(Config, grid: false).ApplyTo(options, given.Contains);
            options = Settings.ApplyTo(options);
            dataFolder = TrainImages != null || TestImages != null
                ? DataSource.Files(TrainImages ?? throw new UserError("--test-images needs --train-images too"), TrainLabels,
                    TestImages ?? throw new UserError("--train-images needs --test-images too"), TestLabels)
                : Data;
            limit = Limit;
            outDir = null;
        }
        options.Validate();
        if (limit < 0) throw new UserError($"--limit {limit}: give a whole number >= 0");
        if (Resume == null && Output != null) outDir = AtomicFile.EnsureFolder(Output);

        var data = DataSource.Load(dataFolder);
        if (limit > 0) data = data with { Train = data.Train.Take(limit) };
        if (resumedRun != null)
        {
            if (data.Train.Features != resumedRun.Sizes[0] || data.Train.Classes != resumedRun.Sizes[^1])
                throw new UserError($"the checkpoint in {Resume} was trained on {resumedRun.Sizes[0]} inputs and {resumedRun.Sizes[^1]} classes, " +
                    $"but {data.Folder} has {data.Train.Features} inputs and {data.Train.Classes} classes; use the data it was trained on");
            if (data.Train.Count != resumedRun.TrainImages)
                throw new UserError($"the checkpoint in {Resume} was trained on {resumedRun.TrainImages:N0} images, but {data.Folder} now gives {data.Train.Count:N0}: the data changed");
        }
        using var device = OpenDevice(resumedRun, given.Contains("--device"), stdout);
        var spec = MlpSpec.FromHidden(data.Train.Features, options.Hidden, data.Train.Classes, options.Activation, options.Loss);
        stdout.WriteLine($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters)");
        stdout.WriteLine($"training: {Describe(options)}");
        options = options with { DataPath = Trainer.ChooseDataPath(options.DataPath, device, data) };
        stdout.WriteLine($"data: {data.Folder}, {data.Train.Count:N0} training images ({options.ValFraction * 100:0.#}% held out for validation), " +
            $"{data.Test.Count:N0} test images; {Words.Name(options.DataPath)} data path");
        if (resume != null)
        {
            stdout.WriteLine($"resuming {Path.Combine(outDir!, Checkpoint.FolderName)}: {resume.EpochsDone} epochs and {resume.StepInEpoch} steps done, " +
                $"continuing to epoch {options.Epochs}");
            if (options.Epochs != resumedRun!.Options.Epochs && options.Schedule == LrSchedule.Cosine)
                stdout.WriteLine($"note: the cosine schedule now spans {options.Epochs} epochs instead of {resumedRun.Options.Epochs}");
        }

        var run = new CheckpointRun(spec.Sizes, options, Path.GetFullPath(data.Folder), limit, data.Train.Count, $"{device.Id} ({device.Name})");
        var display = ProgressDisplay.For(stdout, terminal, options.BatchSize);
        var history = new List<EpochStats>(resume?.History ?? []);
        var control = new TrainControl
        {
            Resume = resume,
            Stop = stop,
            OnStep = display.Step,
            OnCheckpoint = outDir == null ? null : state => Checkpoint.Write(outDir, run, state),
            FaultAdvice = outDir == null ? "no checkpoint (no --output); retry with --device cpu"
                : $"resume from the last checkpoint with --resume {outDir} --device cpu",
        };
        TrainResult result;
        try
        {
            result = display.Run(() => Trainer.Run(device, data, options, e =>
            {
                history.Add(e);
                display.Line(RunFiles.EpochLine(e, options.Epochs));
                if (outDir != null) RunFiles.WriteHistory(outDir, history, RunFiles.CurvesTitle(spec, data, options));
            }, control));
        }
        catch (TrainingInterrupted stopped)
        {
            var s = stopped.State;
            string where = s.MidEpoch ? $"epoch {s.EpochsDone + 1}, step {s.StepInEpoch} of {s.StepsPerEpoch}" : $"the end of epoch {s.EpochsDone}";
            stderr.WriteLine(outDir == null
                ? $"interrupted at {where}; no checkpoint written (give --output DIR to be able to resume)"
                : $"interrupted at {where}; checkpoint written to {Path.Combine(outDir, Checkpoint.FolderName)}; continue with: gpu train --resume {outDir}");
            return 130;
        }
        if (result.StoppedEarlyAtBestEpoch is int bestEpoch)
            display.Line($"early stopping: no better validation {Words.Name(options.StopOn)} for {options.Patience} epochs; restored the weights of epoch {bestEpoch}");
        display.Line($"test accuracy {result.Test.Accuracy:F4}, test loss {result.Test.Loss:F4} ({result.Test.Count:N0} images); " +
            $"{result.TrainCount:N0} train / {result.ValCount:N0} validation images, {result.Seconds:F1} s in all");
        if (Verbose)
            stdout.WriteLine($"kernel launches: {result.LaunchesPerStep:0.##} per training step on {device.Id} ({Words.Name(device.Profile.Gemm)} products; evaluation not counted)");
        if (outDir != null)
        {
            RunFiles.WriteModel(outDir, device, data, dataFolder, limit, options, result);
            stdout.WriteLine($"wrote {Path.Combine(outDir, SavedModel.NpyName)}, {SavedModel.JsonName}, {RunFiles.HistoryName}, {RunFiles.CurvesName} and {Checkpoint.FolderName}/ in {outDir}");
        }
        return 0;
    }

    /// <summary>
    /// The device to train on: --device; when resuming without it, the device the run was trained on (each
    /// device's kernels round differently, so only the same device continues the run bit for bit), or, when
    /// that device is not here, auto, saying so.
    /// </summary>
    ComputeDevice OpenDevice(CheckpointRun? resumed, bool deviceGiven, TextWriter stdout)
    {
        if (resumed == null || deviceGiven)
        {
            var chosen = ComputeDevice.Open(Device);
            stdout.WriteLine($"device: {chosen.Describe()}");
            return chosen;
        }
        string id = resumed.Device.Split(' ')[0];
        try
        {
            var same = ComputeDevice.Open(id);
            stdout.WriteLine($"device: {same.Id} ({same.Name}), the device the run was trained on (--device chooses another)");
            return same;
        }
        catch (UserError e)
        {
            var other = ComputeDevice.Open("auto");
            stdout.WriteLine($"device: {other.Describe()}; the run was trained on {resumed.Device}, which is not here ({e.Message}), so it continues close to, not bit for bit like, an uninterrupted run");
            return other;
        }
    }
}
