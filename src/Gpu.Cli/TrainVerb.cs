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
    [Option("train-images", HelpText = "Training images: IDX, .npy ([N, features] or [N, h, w]; uint8 or float) or .csv (label,pixel0,...). Overrides --data; needs --test-images.")]
    public string? TrainImages { get; set; }

    [Option("train-labels", HelpText = "Training labels: IDX or .npy (not for .csv images).")]
    public string? TrainLabels { get; set; }

    [Option("test-images", HelpText = "Test images, as --train-images.")]
    public string? TestImages { get; set; }

    [Option("test-labels", HelpText = "Test labels, as --train-labels.")]
    public string? TestLabels { get; set; }

    [Option("data", Default = "data/fashion-mnist", HelpText = "Folder with the four IDX files (train-/t10k- images and labels, .gz or plain), or train/test .npy or .csv files; data/mnist-10k also ships.")]
    public string Data { get; set; } = "data/fashion-mnist";

    [Option("layers", Default = "256,128", HelpText = "Hidden layer widths, comma-separated (e.g. 40,40,40). Empty for none.")]
    public string Layers { get; set; } = "256,128";

    [Option("activation", Default = "relu", HelpText = "Hidden-layer activation: relu, sigmoid, tanh or leaky-relu (slope 0.01).")]
    public string Activation { get; set; } = "relu";

    [Option("loss", Default = "softmax-ce", HelpText = "softmax-ce (softmax + cross-entropy) or sigmoid-sse (sigmoid outputs, cost 1/2 sum (a - y)^2).")]
    public string Loss { get; set; } = "softmax-ce";

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

    [Option("optimizer", Default = "sgd", HelpText = "sgd (with --momentum; 0 is plain SGD), nesterov, adam or adamw (decoupled weight decay, --l2 is the decay).")]
    public string Optimizer { get; set; } = "sgd";

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

    [Option("init", Default = "he", HelpText = "Weight initialisation: he (uniform, sqrt(6/fan_in)), glorot (sqrt(6/(fan_in+fan_out))) or uniform (1/sqrt(fan_in)).")]
    public string Init { get; set; } = "he";

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

    [Option("seed", Default = 1UL, HelpText = "Seed for the split, the shuffles and the initial weights.")]
    public ulong Seed { get; set; } = 1;

    [Option("val-fraction", Default = 0.1, HelpText = "Fraction of the training set held out (seeded) for validation; 0 for none.")]
    public double ValFraction { get; set; } = 0.1;

    [Option("device", Default = "auto", HelpText = "auto (CUDA, then OpenCL, then CPU), cpu, cuda[:N] or opencl[:N].")]
    public string Device { get; set; } = "auto";

    [Option("data-path", Default = DataPath.Auto, HelpText = "auto, resident (dataset on the device, batches gathered there) or stream (page-locked host buffers, async copies).")]
    public DataPath DataPath { get; set; } = DataPath.Auto;

    [Option("output", HelpText = "Folder for model.npy + model.json (the trained model, at the end), history.csv + curves.png (every epoch) and checkpoint/ (every epoch and on Ctrl-C), created if missing.")]
    public string? Output { get; set; }

    [Option("limit", Default = 0, HelpText = "Use only the first N training images (0: all). For quick experiments.")]
    public int Limit { get; set; }

    [Option("config", HelpText = "YAML experiment file (like config_exp.yaml): a Train: section (batch_size, learning_rate, reg, epochs, momentum, and any other option under its flag's name) and a Model: section (hidden_size: widths, activation, ...). Flags given on the command line override it.")]
    public string? Config { get; set; }

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
                Activation = MlpSpec.ParseActivation(Activation),
                Loss = MlpSpec.ParseLoss(Loss),
                Epochs = Epochs,
                BatchSize = BatchSize,
                LearningRate = LearningRate,
                Momentum = Momentum,
                L2 = L2,
                Schedule = Schedule,
                Optimizer = Gpu.Engine.Training.Optimizer.Parse(Optimizer),
                Beta1 = Beta1,
                Beta2 = Beta2,
                Init = MlpSpec.ParseInit(Init),
                BiasInit = BiasInit,
                Dropout = Dropout,
                Shift = Shift,
                Patience = Patience,
                StopOn = StopOn,
                WarmupEpochs = WarmupEpochs,
                StepEvery = StepEvery,
                StepGamma = StepGamma,
                Seed = Seed,
                ValFraction = ValFraction,
                DataPath = DataPath,
            };
            if (Config != null) options = ExperimentConfig.Read(Config, grid: false).ApplyTo(options, given.Contains);
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
        stdout.WriteLine($"training: batch {options.BatchSize}, lr {options.LearningRate}, " +
            $"{Gpu.Engine.Training.Optimizer.Name(options.Optimizer)}{(options.Optimizer == OptimizerKind.Sgd ? $" momentum {options.Momentum}" : "")}, l2 {options.L2}, " +
            $"{options.Schedule.ToString().ToLowerInvariant()} schedule{(options.WarmupEpochs > 0 ? $" after {options.WarmupEpochs} warm-up epochs" : "")}, seed {options.Seed}");
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
            RunFiles.WriteModel(outDir, device, data, dataFolder, limit, options, result);
            stdout.WriteLine($"wrote {Path.Combine(outDir, SavedModel.NpyName)}, {SavedModel.JsonName}, {RunFiles.HistoryName}, {RunFiles.CurvesName} and {Checkpoint.FolderName}/ in {outDir}");
        }
        return 0;
    }
}
