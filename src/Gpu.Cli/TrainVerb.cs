using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Gpu.Engine.Analysis;
using CommandLine;
using Gpu.Engine;
using Gpu.Engine.Data;
using Gpu.Engine.Devices;
using Gpu.Engine.Model;
using Gpu.Engine.Training;

namespace Gpu.Cli;

[Verb("train", HelpText = "Train an MLP (default: W1, 784-256-128-10 on Fashion-MNIST) and report test accuracy.")]
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

    [Option("beta1", Default = 0.9f, HelpText = "Adam/AdamW first-moment decay.")]
    public float Beta1 { get; set; } = 0.9f;

    [Option("beta2", Default = 0.999f, HelpText = "Adam/AdamW second-moment decay.")]
    public float Beta2 { get; set; } = 0.999f;

    [Option("patience", Default = 0, HelpText = "Early stopping: stop after N epochs without a better validation score and restore the best epoch's weights (0: off).")]
    public int Patience { get; set; }

    [Option("stop-on", Default = EarlyStopMetric.Loss, HelpText = "The validation score early stopping watches: loss or accuracy.")]
    public EarlyStopMetric StopOn { get; set; } = EarlyStopMetric.Loss;

    [Option("shift", Default = 0, HelpText = "Augmentation: shift each training image by up to N pixels per axis (seeded, new every epoch; off at evaluation).")]
    public int Shift { get; set; }

    [Option("dropout", Default = 0f, HelpText = "Inverted dropout rate on hidden-layer outputs while training (seeded; off at evaluation).")]
    public float Dropout { get; set; }

    [Option("bias-init", Default = 0.01f, HelpText = "Initial value of every bias.")]
    public float BiasInit { get; set; } = 0.01f;

    [Option("warmup-epochs", Default = 0.0, HelpText = "Linear learning-rate warm-up over this many epochs (fractions allowed), then the schedule.")]
    public double WarmupEpochs { get; set; }

    [Option("step-every", Default = 10, HelpText = "With --schedule step: multiply the learning rate by --step-gamma every this many epochs.")]
    public int StepEvery { get; set; } = 10;

    [Option("step-gamma", Default = 0.1f, HelpText = "With --schedule step: the factor.")]
    public float StepGamma { get; set; } = 0.1f;

    [Option("schedule", Default = LrSchedule.Cosine, HelpText = "Learning-rate schedule after any warm-up: cosine (from --lr down to 0 over the run), step, or constant.")]
    public LrSchedule Schedule { get; set; } = LrSchedule.Cosine;

    [Option("val-fraction", Default = 0.1, HelpText = "Fraction of the training set held out (seeded) for validation; 0 for none.")]
    public double ValFraction { get; set; } = 0.1;

    [Option("data-path", Default = DataPath.Auto, HelpText = "auto, resident (dataset on the device, batches gathered there) or stream (page-locked host buffers, async copies).")]
    public DataPath DataPath { get; set; } = DataPath.Auto;

    [Option("output", HelpText = "Folder for model.npy + model.json (the trained model, at the end), history.csv + curves.png (every epoch) and checkpoint/ (every epoch and on Ctrl-C), created if missing.")]
    public string? Output { get; set; }

    [Option("resume", HelpText = "Continue the run whose --output folder (or checkpoint folder) is DIR, with its settings; only --epochs and --device may be given too.")]
    public string? Resume { get; set; }

    /// <summary>Flags that may accompany --resume: the rest come from the checkpoint.</summary>
    static readonly string[] ResumeOverrides = ["--resume", "--epochs", "--device"];

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
                throw new UserError($"{extra} cannot be changed when resuming: --resume takes its settings from the checkpoint; only --epochs and --device may be given");
            (resumedRun, resume) = Checkpoint.Read(Resume);
            options = resumedRun.Options with { Epochs = given.Contains("--epochs") ? Epochs : resumedRun.Options.Epochs };
            if (resume.EpochsDone >= options.Epochs)
                throw new UserError($"the run in {Resume} has done {resume.EpochsDone} of {options.Epochs} epochs; give --epochs N with N > {resume.EpochsDone} to train further");
            dataFolder = resumedRun.DataFolder;
            limit = resumedRun.Limit;
            outDir = AtomicFile.EnsureFolder(File.Exists(Path.Combine(Resume, "state.json")) ? Path.GetDirectoryName(Path.GetFullPath(Resume))! : Resume);
        }
        else
        {
            options = TrainOptions() with
            {
                Schedule = Schedule,
                Beta1 = Beta1,
                Beta2 = Beta2,
                BiasInit = BiasInit,
                Dropout = Dropout,
                Shift = Shift,
                Patience = Patience,
                StopOn = StopOn,
                WarmupEpochs = WarmupEpochs,
                StepEvery = StepEvery,
                StepGamma = StepGamma,
                ValFraction = ValFraction,
                DataPath = DataPath,
            };
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
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        var spec = MlpSpec.FromHidden(data.Train.Features, options.Hidden, data.Train.Classes, options.Activation, options.Loss);
        stdout.WriteLine($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters)");
        stdout.WriteLine($"training: {Describe(options)}");
        options = options with { DataPath = Trainer.ChooseDataPath(options.DataPath, device, data) };
        stdout.WriteLine($"data: {data.Folder}, {data.Train.Count:N0} training images ({options.ValFraction * 100:0.#}% held out for validation), " +
            $"{data.Test.Count:N0} test images; {options.DataPath.ToString().ToLowerInvariant()} data path");
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
        };
        TrainResult result;
        try
        {
            result = display.Run(() => Trainer.Run(device, data, options, e =>
            {
                history.Add(e);
                // under 80 columns, so a terminal never wraps it under the live progress bar
                string val = e.ValLoss is double vl ? $" | val {vl:F3} acc {e.ValAccuracy:F3}" : "";
                display.Line($"epoch {e.Epoch,3}/{options.Epochs} loss {e.TrainLoss:F3} acc {e.TrainAccuracy:F3}{val} | " +
                    $"{e.TrainSeconds:F1}s {Rate(e.SamplesPerSecond)} samples/s");
                if (outDir != null)
                {
                    WriteHistory(Path.Combine(outDir, "history.csv"), history);
                    Plots.TrainingCurves(history, Path.Combine(outDir, "curves.png"), $"{spec} on {data.Train.Name}, seed {options.Seed}");
                }
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
        catch (UserError e) when (e.ExitCode == 4)
        {
            throw new UserError(outDir == null ? e.Message.Replace("resume from the last checkpoint with --resume DIR --device cpu", "no checkpoint (no --output); retry with --device cpu")
                : e.Message.Replace("--resume DIR", $"--resume {outDir}"), 4);
        }
        if (result.StoppedEarlyAtBestEpoch is int bestEpoch)
            display.Line($"early stopping: no better validation {options.StopOn.ToString().ToLowerInvariant()} for {options.Patience} epochs; restored the weights of epoch {bestEpoch}");
        display.Line($"test accuracy {result.Test.Accuracy:F4}, test loss {result.Test.Loss:F4} ({result.Test.Count:N0} images); " +
            $"{result.TrainCount:N0} train / {result.ValCount:N0} validation images, {result.Seconds:F1} s in all");
        if (outDir != null)
        {
            WriteModel(outDir, device, data, dataFolder, limit, options, result);
            stdout.WriteLine($"wrote {Path.Combine(outDir, SavedModel.NpyName)}, {SavedModel.JsonName}, history.csv, curves.png and {Checkpoint.FolderName}/ in {outDir}");
        }
        return 0;
    }

    /// <summary>A rate in at most 4 characters: 950, 2320, 181k.</summary>
    static string Rate(double perSecond) => perSecond >= 10000 ? $"{perSecond / 1000:F0}k" : $"{perSecond:F0}";

    static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    static void WriteHistory(string path, List<EpochStats> history)
    {
        var sb = new StringBuilder("epoch,train_loss,train_accuracy,val_loss,val_accuracy,train_seconds,samples_per_s,eval_seconds\n");
        foreach (var e in history)
            sb.Append(CultureInfo.InvariantCulture, $"{e.Epoch},{F(e.TrainLoss)},{F(e.TrainAccuracy)},{(e.ValLoss is double vl ? F(vl) : "")},{(e.ValAccuracy is double va ? F(va) : "")},{F(e.TrainSeconds)},{F(e.SamplesPerSecond)},{F(e.EvalSeconds)}\n");
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>model.npy and model.json: the trained weights and everything needed to use and reproduce them.</summary>
    static void WriteModel(string dir, ComputeDevice device, DataPair data, string dataSource, int limit, TrainOptions o, TrainResult r)
    {
        var last = r.History[^1];
        SavedModel.Write(dir, r.Spec, r.Parameters, new JsonObject
        {
            ["device"] = $"{device.Id} ({device.Name})",
            ["seed"] = o.Seed,
            ["hyperparameters"] = Checkpoint.OptionsToJson(o),
            ["data"] = new JsonObject
            {
                ["name"] = data.Train.Name, ["source"] = dataSource, ["limit"] = limit, ["features"] = data.Train.Features, ["classes"] = data.Train.Classes,
                ["train_count"] = r.TrainCount, ["val_count"] = r.ValCount, ["test_count"] = r.Test.Count,
                ["data_path"] = r.DataPath.ToString().ToLowerInvariant(),
            },
            ["metrics"] = new JsonObject
            {
                ["test_accuracy"] = r.Test.Accuracy, ["test_loss"] = r.Test.Loss,
                ["epochs_trained"] = r.History.Count, ["stopped_early_at_best_epoch"] = r.StoppedEarlyAtBestEpoch,
                ["final_train_loss"] = last.TrainLoss, ["final_train_accuracy"] = last.TrainAccuracy,
                ["final_val_loss"] = last.ValLoss is double vl && double.IsFinite(vl) ? vl : null, ["final_val_accuracy"] = last.ValAccuracy,
                ["train_samples_per_s"] = r.TrainSamplesPerSecond, ["seconds"] = r.Seconds,
            },
        });
    }
}
