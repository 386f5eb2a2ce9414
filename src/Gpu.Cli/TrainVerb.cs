using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("train", HelpText = "Train an MLP (default: W1, 784-256-128-10 on Fashion-MNIST) and report test accuracy.")]
[Settings]
internal sealed class TrainVerb : TrainingRunOptions, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Args, c.Stop, c.Terminal);

    [Option("train-images", HelpText = "Training images: IDX, .npy ([N, features] or [N, h, w]; uint8 or float) or .csv (label,pixel0,...). Overrides --data; needs --test-images.")]
    public string? TrainImages { get; set; }

    [Option("train-labels", HelpText = "Training labels: IDX or .npy (not for .csv images).")]
    public string? TrainLabels { get; set; }

    [Option("test-images", HelpText = "Test images, as --train-images.")]
    public string? TestImages { get; set; }

    [Option("test-labels", HelpText = "Test labels, as --train-labels.")]
    public string? TestLabels { get; set; }

    [Option("pixel-range", Default = SharedFlags.PixelRangeDefault, HelpText = SharedFlags.PixelRangeHelp)]
    public string PixelRange { get; set; } = SharedFlags.PixelRangeDefault;

    [Option("output", HelpText = "Folder for model.npy + model.json (the trained model, at the end), history.csv + curves.png (every epoch) and checkpoint/ (every epoch and on Ctrl-C), created if missing.")]
    public string? Output { get; set; }

    [Option("config", HelpText = "YAML experiment file (like config_exp.yaml): a Train: section (batch_size, learning_rate, reg, epochs, momentum, and any other option under its flag's name) and a Model: section (hidden_size: widths, activation, ...). Flags given on the command line override it.")]
    public string? Config { get; set; }

    [Option("verbose", HelpText = "Also print the kernels per training step and how they are launched (directly, or replayed as one CUDA graph per step, and why not): at small batches a GPU step costs about one launch overhead per direct launch.")]
    public bool Verbose { get; set; }

    [Option("resume", HelpText = "Continue the run whose --output folder (or checkpoint folder) is DIR, with its settings; only --epochs, --device, --verbose and the data (--data or the file flags, when it moved: it must be the same data) may be given too.")]
    public string? Resume { get; set; }

    [Option("init-from", HelpText = "Start from these weights instead of the seeded initialisation (--init, --bias-init): a model.npy (flat float32 vector, the engine's packing) or a .safetensors file (gpu export, or a PyTorch Sequential of Linear layers: 0.weight [out, in], 0.bias, 2.weight, ...) of this network's shape.")]
    public string? InitFrom { get; set; }

    [Option("overwrite", HelpText = "Start afresh in an --output folder that holds an earlier run: once the new run has its data and device, the earlier run's files (checkpoint, model, exports, history, curves, eval) are moved into DIR/.replaced/, deleted when the new run checkpoints its first epoch, and moved back if it diverges, fails or is interrupted before that; a .replaced/ left by a killed process is restored (or, when the new run had checkpointed, deleted) by the next command on the folder. Without it such a folder is refused.")]
    public bool Overwrite { get; set; }

    /// <summary>Flags that say where the data is.</summary>
    static readonly string[] DataFlags = ["--data", "--train-images", "--train-labels", "--test-images", "--test-labels"];

    /// <summary>Flags that may accompany --resume: the rest come from the checkpoint (declared after <see cref="DataFlags"/>, which it uses).</summary>
    static readonly string[] ResumeOverrides = ["--resume", "--epochs", "--device", "--verbose", .. DataFlags];

    /// <summary>The optimizer settings a resume may lower, and only after its run diverged (the engine checks that): the rate, and the momentum and L2 penalty that feed the same step size.</summary>
    static readonly string[] AfterDivergence = ["--lr", "--momentum", "--l2"];

    int Execute(TextWriter stdout, TextWriter stderr, string[] args, CancellationToken stop, bool terminal)
    {
        var given = args.Where(a => a.StartsWith("--")).Select(a => a.Split('=')[0]).ToHashSet();
        if (Overwrite && Resume != null) throw new UserError("--overwrite starts a run afresh; it cannot be combined with --resume");
        if (InitFrom != null && Resume != null) throw new UserError("--init-from starts a fresh run from given weights; a resumed run continues from its checkpoint's, so give one or the other");
        if (Resume != null && given.Except(ResumeOverrides).Except(AfterDivergence).FirstOrDefault() is string extra)
            throw new UserError($"{extra} cannot be changed when resuming: --resume takes its settings from the checkpoint; only --epochs, --device, --verbose and the data's location may be given " +
                "(and --lr, --momentum, --l2 after a divergence)");
        var display = ProgressDisplay.For(stdout, terminal);
        var run = new RunOptions
        {
            Output = Output, Overwrite = Overwrite, InitFrom = InitFrom, Verbose = Verbose, Command = Program.Command, Cancel = stop,
            Say = display.Line, Progress = p => display.Line(p.ToString()), Step = display.Step,
        };
        try
        {
            display.Run(() => Resume != null ? Gpu.Network.Resume(Resume, ResumeOptions(given), run) : TrainAfresh(given, run));
            return 0;
        }
        catch (OperationCanceledException stopped) when (stop.IsCancellationRequested)
        {
            stderr.WriteLine(stopped.Message);
            return 130;
        }
    }

    /// <summary>A fresh run: the settings (experiment file, then flags) checked before anything is read or created, the data the flags name, the device.</summary>
    Gpu.Network TrainAfresh(HashSet<string> given, RunOptions run)
    {
        var options = new TrainOptions();
        if (Config != null) options = ExperimentConfig.Read(Config, grid: false).ApplyTo(options, given.Contains);
        options = Settings.ApplyTo(options);
        options.Validate();
        var data = ImageData.Open(GivenData(), Limit);
        using var device = Gpu.Device.Open(Device);
        return Gpu.Network.Train(device, data, options, run);
    }

    /// <summary>What a resume was given: epochs, device and the data's new location; the settings a divergence lets it lower.</summary>
    ResumeOptions ResumeOptions(HashSet<string> given)
    {
        var o = TrainOptions();
        return new ResumeOptions
        {
            Epochs = Settings.Given("epochs") ? o.Epochs : null,
            Device = given.Contains("--device") ? Device : null,
            Data = DataFlags.Any(given.Contains) ? GivenData() : null,
            LearningRate = Settings.Given("lr") ? o.LearningRate : null,
            Momentum = Settings.Given("momentum") ? o.Momentum : null,
            L2 = Settings.Given("l2") ? o.L2 : null,
        };
    }

    /// <summary>The data the flags name: explicit files, or the --data folder.</summary>
    DataFiles GivenData() => new()
    {
        Folder = Data, TrainImages = TrainImages, TrainLabels = TrainLabels, TestImages = TestImages, TestLabels = TestLabels, PixelRange = PixelRange,
    };
}
