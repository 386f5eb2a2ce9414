using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("train", HelpText = "Train an MLP (default: W1, 784-256-128-10 on Fashion-MNIST) and report test accuracy.")]
[Settings]
internal sealed class TrainVerb : TrainingRunOptions, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Given, c.Stop, c.Terminal);

    [Flag(nameof(Flags.TrainImages))]
    public string? TrainImages { get; set; }

    [Flag(nameof(Flags.TrainLabels))]
    public string? TrainLabels { get; set; }

    [Flag(nameof(Flags.TrainTestImages))]
    public string? TestImages { get; set; }

    [Flag(nameof(Flags.TrainTestLabels))]
    public string? TestLabels { get; set; }

    [Flag(nameof(Flags.PixelRange))]
    public string PixelRange { get; set; } = "";

    [Flag(nameof(Flags.TrainOutput))]
    public string? Output { get; set; }

    [Flag(nameof(Flags.TrainConfig))]
    public string? Config { get; set; }

    [Flag(nameof(Flags.Verbose))]
    public bool Verbose { get; set; }

    [Flag(nameof(Flags.Resume))]
    public string? Resume { get; set; }

    [Flag(nameof(Flags.InitFrom))]
    public string? InitFrom { get; set; }

    [Flag(nameof(Flags.TrainOverwrite))]
    public bool Overwrite { get; set; }

    /// <summary>Flags that say where the data is.</summary>
    static readonly string[] DataFlags = ["--data", "--train-images", "--train-labels", "--test-images", "--test-labels"];

    /// <summary>Flags that may accompany --resume: the rest come from the checkpoint (declared after <see cref="DataFlags"/>, which it uses).</summary>
    static readonly string[] ResumeOverrides = ["--resume", "--epochs", "--device", "--verbose", .. DataFlags];

    /// <summary>The optimizer settings a resume may lower, and only after its run diverged (the engine checks that): the rate, and the momentum and L2 penalty that feed the same step size.</summary>
    static readonly string[] AfterDivergence = ["--lr", "--momentum", "--l2"];

    int Execute(TextWriter stdout, TextWriter stderr, IReadOnlySet<string> given, CancellationToken stop, bool terminal)
    {
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
    Gpu.Network TrainAfresh(IReadOnlySet<string> given, RunOptions run)
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
    ResumeOptions ResumeOptions(IReadOnlySet<string> given)
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
