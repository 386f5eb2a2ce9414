using System.Globalization;
using System.Text;
using System.Text.Json;
using CommandLine;
using Gpu.Engine;
using Gpu.Engine.Data;
using Gpu.Engine.Devices;
using Gpu.Engine.Model;
using Gpu.Engine.Training;

namespace Gpu.Cli;

[Verb("train", HelpText = "Train an MLP (default: W1, 784-256-128-10 on Fashion-MNIST) and report test accuracy.")]
public sealed class TrainVerb
{
    [Option("data", Default = "data/fashion-mnist", HelpText = "Folder with the four IDX files (train-/t10k- images and labels, .gz or plain).")]
    public string Data { get; set; } = "data/fashion-mnist";

    [Option("layers", Default = "256,128", HelpText = "Hidden layer widths, comma-separated (e.g. 40,40,40). Empty for none.")]
    public string Layers { get; set; } = "256,128";

    [Option("epochs", Default = 10, HelpText = "Passes over the training split.")]
    public int Epochs { get; set; } = 10;

    [Option("batch-size", Default = 128, HelpText = "Images per SGD step (the last partial batch is used too).")]
    public int BatchSize { get; set; } = 128;

    [Option("lr", Default = 0.05f, HelpText = "Learning rate.")]
    public float LearningRate { get; set; } = 0.05f;

    [Option("momentum", Default = 0.9f, HelpText = "SGD momentum in [0, 1); 0 is plain SGD.")]
    public float Momentum { get; set; } = 0.9f;

    [Option("l2", Default = 1e-4f, HelpText = "L2 penalty (l2/2)*||W||^2 on weights, not biases.")]
    public float L2 { get; set; } = 1e-4f;

    [Option("schedule", Default = LrSchedule.Cosine, HelpText = "Learning-rate schedule: cosine (from --lr down to 0 over the run) or constant.")]
    public LrSchedule Schedule { get; set; } = LrSchedule.Cosine;

    [Option("seed", Default = 1UL, HelpText = "Seed for the split, the shuffles and the initial weights.")]
    public ulong Seed { get; set; } = 1;

    [Option("val-fraction", Default = 0.1, HelpText = "Fraction of the training set held out (seeded) for validation; 0 for none.")]
    public double ValFraction { get; set; } = 0.1;

    [Option("device", Default = "auto", HelpText = "auto (CUDA, then OpenCL, then CPU), cpu, cuda[:N] or opencl[:N].")]
    public string Device { get; set; } = "auto";

    [Option("output", HelpText = "Folder for history.csv, summary.json and checkpoint/ (model.npy, optimizer.npy, state.json; written every epoch and on Ctrl-C), created if missing.")]
    public string? Output { get; set; }

    [Option("limit", Default = 0, HelpText = "Use only the first N training images (0: all). For quick experiments.")]
    public int Limit { get; set; }

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
            options = new TrainOptions
            {
                Hidden = MlpSpec.ParseHidden(Layers),
                Epochs = Epochs,
                BatchSize = BatchSize,
                LearningRate = LearningRate,
                Momentum = Momentum,
                L2 = L2,
                Schedule = Schedule,
                Seed = Seed,
                ValFraction = ValFraction,
            };
            dataFolder = Data;
            limit = Limit;
            outDir = null;
        }
        options.Validate();
        if (limit < 0) throw new UserError($"--limit {limit}: give a whole number >= 0");
        if (Resume == null && Output != null) outDir = AtomicFile.EnsureFolder(Output);

        var data = Idx.ReadFolder(DataLocator.Resolve(dataFolder));
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
        var spec = MlpSpec.FromHidden(data.Train.Features, options.Hidden, data.Train.Classes);
        stdout.WriteLine($"network: {spec} ({spec.ParameterCount:N0} parameters), batch {options.BatchSize}, lr {options.LearningRate}, " +
            $"momentum {options.Momentum}, l2 {options.L2}, {options.Schedule.ToString().ToLowerInvariant()} schedule, seed {options.Seed}");
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
                string val = e.ValLoss is double vl ? $" | val loss {vl:F4} acc {e.ValAccuracy:F4}" : "";
                display.Line($"epoch {e.Epoch,3}/{options.Epochs}  train loss {e.TrainLoss:F4} acc {e.TrainAccuracy:F4}{val} | " +
                    $"{e.TrainSeconds:F1} s, {e.SamplesPerSecond:N0} samples/s");
                if (outDir != null) WriteHistory(Path.Combine(outDir, "history.csv"), history);
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
        display.Line($"test accuracy {result.Test.Accuracy:F4}, test loss {result.Test.Loss:F4} ({result.Test.Count:N0} images); " +
            $"{result.TrainCount:N0} train / {result.ValCount:N0} validation images, {result.Seconds:F1} s in all");
        if (outDir != null)
        {
            WriteSummary(Path.Combine(outDir, "summary.json"), device, data, options, result);
            stdout.WriteLine($"wrote {Path.Combine(outDir, "history.csv")}, {Path.Combine(outDir, "summary.json")} and {Path.Combine(outDir, Checkpoint.FolderName)}/");
        }
        return 0;
    }

    static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    static void WriteHistory(string path, List<EpochStats> history)
    {
        var sb = new StringBuilder("epoch,train_loss,train_accuracy,val_loss,val_accuracy,train_seconds,samples_per_s,eval_seconds\n");
        foreach (var e in history)
            sb.Append(CultureInfo.InvariantCulture, $"{e.Epoch},{F(e.TrainLoss)},{F(e.TrainAccuracy)},{(e.ValLoss is double vl ? F(vl) : "")},{(e.ValAccuracy is double va ? F(va) : "")},{F(e.TrainSeconds)},{F(e.SamplesPerSecond)},{F(e.EvalSeconds)}\n");
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    static void WriteSummary(string path, ComputeDevice device, DataPair data, TrainOptions o, TrainResult r)
    {
        var summary = new Dictionary<string, object?>
        {
            ["device"] = $"{device.Id} ({device.Name})",
            ["layers"] = r.Spec.Sizes,
            ["hidden"] = o.Hidden,
            ["parameters"] = r.Spec.ParameterCount,
            ["epochs"] = o.Epochs,
            ["batch_size"] = o.BatchSize,
            ["learning_rate"] = o.LearningRate,
            ["momentum"] = o.Momentum,
            ["l2"] = o.L2,
            ["schedule"] = o.Schedule.ToString().ToLowerInvariant(),
            ["seed"] = o.Seed,
            ["val_fraction"] = o.ValFraction,
            ["data"] = data.Folder,
            ["train_count"] = r.TrainCount,
            ["val_count"] = r.ValCount,
            ["test_count"] = r.Test.Count,
            ["test_accuracy"] = r.Test.Accuracy,
            ["test_loss"] = r.Test.Loss,
            ["final_val_accuracy"] = r.History[^1].ValAccuracy,
            ["final_train_loss"] = r.History[^1].TrainLoss,
            ["train_samples_per_s"] = r.TrainSamplesPerSecond,
            ["seconds"] = r.Seconds,
            ["engine_version"] = typeof(Trainer).Assembly.GetName().Version?.ToString(3),
        };
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}

/// <summary>Finds a data folder given relative to the repository when the program runs from elsewhere.</summary>
public static class DataLocator
{
    public static string Resolve(string folder)
    {
        if (Directory.Exists(folder) || Path.IsPathRooted(folder)) return folder;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, folder);
            if (Directory.Exists(candidate)) return candidate;
        }
        return folder;
    }
}
