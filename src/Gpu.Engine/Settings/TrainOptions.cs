namespace Gpu.Engine.Settings;

/// <summary>
/// Hyperparameters of one training run. Defaults are the W1 workload (784-256-128-10, batch 128, SGD momentum 0.9,
/// lr 0.05 cosine, L2 1e-4), stated here only:
/// flags, help, experiment files and JSON files read them from this record through the setting table
/// (<see cref="Hyperparameter.All"/>), which also holds each setting's range rule.
/// </summary>
public sealed record TrainOptions
{
    /// <summary>Hidden layer widths, input side first (<c>--layers</c>); empty: no hidden layer.</summary>
    public int[] Hidden { get; init; } = [256, 128];
    /// <summary>Activation of the hidden layers (<c>--activation</c>).</summary>
    public Activation Activation { get; init; } = Activation.Relu;
    /// <summary>Output layer and cost (<c>--loss</c>).</summary>
    public LossKind Loss { get; init; } = LossKind.SoftmaxCrossEntropy;
    /// <summary>Passes over the training images (<c>--epochs</c>).</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Images per training step (<c>--batch-size</c>).</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>Peak learning rate (<c>--lr</c>); the schedule moves it over the run.</summary>
    public float LearningRate { get; init; } = 0.05f;
    /// <summary>Momentum of SGD and Nesterov (<c>--momentum</c>); 0: plain SGD.</summary>
    public float Momentum { get; init; } = 0.9f;
    /// <summary>L2 penalty on the weights, never the biases (<c>--l2</c>); AdamW's decoupled weight decay.</summary>
    public float L2 { get; init; } = 1e-4f;
    /// <summary>The update rule (<c>--optimizer</c>).</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    /// <summary>Adam and AdamW: decay of the gradient's running mean (<c>--beta1</c>); double until the kernel, as PyTorch keeps it.</summary>
    public double Beta1 { get; init; } = 0.9;
    /// <summary>Adam and AdamW: decay of the squared gradient's running mean (<c>--beta2</c>).</summary>
    public double Beta2 { get; init; } = 0.999;
    /// <summary>Weight initialisation (<c>--init</c>).</summary>
    public InitKind Init { get; init; } = InitKind.He;
    /// <summary>Early stopping: stop after this many epochs without a better validation score, and restore the best epoch's weights (0: off).</summary>
    public int Patience { get; init; }
    /// <summary>The validation score early stopping watches.</summary>
    public EarlyStopMetric StopOn { get; init; } = EarlyStopMetric.Loss;
    /// <summary>Random shifts of training images by up to this many pixels per axis (0: none; never at evaluation).</summary>
    public int Shift { get; init; }
    /// <summary>Inverted dropout rate on the hidden layers' outputs while training (0: off; never at evaluation).</summary>
    public float Dropout { get; init; }
    /// <summary>The value every bias starts at (<c>--bias-init</c>).</summary>
    public float BiasInit { get; init; } = 0.01f;
    /// <summary>Linear warm-up over this many epochs (counted in steps, W of them): step s (0-based) uses lr (s + 1) / W, from lr / W up to the peak; then the schedule.</summary>
    public double WarmupEpochs { get; init; }
    /// <summary>Step schedule: multiply the learning rate by <see cref="StepGamma"/> every <see cref="StepEvery"/> epochs.</summary>
    public int StepEvery { get; init; } = 10;
    /// <summary>Step schedule: the factor applied every <see cref="StepEvery"/> epochs (<c>--step-gamma</c>).</summary>
    public float StepGamma { get; init; } = 0.1f;

    internal Optimizer OptimizerSettings => new(Optimizer, Momentum, L2, Beta1, Beta2);
    /// <summary>How the learning rate moves over the run; <see cref="LearningRate"/> is its peak.</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Cosine;
    /// <summary>Seeds the initialisation, the validation split, the shuffles, dropout and shifts: the same seed gives the same run (<c>--seed</c>).</summary>
    public ulong Seed { get; init; } = 1;
    /// <summary>Share of the training images held out for validation (<c>--val-fraction</c>); 0: none.</summary>
    public double ValFraction { get; init; } = 0.1;
    /// <summary>Rows per forward pass when evaluating (no gradients, so larger batches are cheap).</summary>
    public int EvalBatchSize { get; init; } = 1000;
    /// <summary>Resident (dataset on the device, batches gathered there) or streamed (page-locked host buffers); Auto decides by size.</summary>
    public DataPath DataPath { get; init; } = DataPath.Auto;
    /// <summary>
    /// The precision of the dense-layer products' inputs (<c>--precision</c>): fp32, or TF32 or bf16 (each input rounded before
    /// the multiply, the sums in fp32; tensor cores where the device has them, else emulated in the products' kernels). Weights,
    /// optimizer state, the loss and all reductions stay fp32.
    /// </summary>
    public Precision Precision { get; init; } = Precision.Fp32;
    /// <summary>MB of host memory the streamed path may hold of a training set read in place from its file: its shuffle buffer (Training/BlockShuffle.cs).</summary>
    public int StreamBuffer { get; init; } = 1024;

    /// <summary>
    /// Checks every setting against its range rule in <see cref="Hyperparameter.All"/>, then the rules
    /// between settings; the first broken one is a <see cref="UserError"/> naming its flag.
    /// </summary>
    public void Validate()
    {
        foreach (var setting in Hyperparameter.All) setting.Check(setting.Get(this));
        if (WarmupEpochs >= Epochs) throw new UserError($"--warmup-epochs {WarmupEpochs}: give a number of epochs below --epochs ({Epochs})");
        if (Patience > 0 && ValFraction <= 0) throw new UserError("--patience needs a validation split: give --val-fraction above 0");
    }

    /// <summary>Parses "256,128" (or "256-128", as search.csv and progress lines write widths) into hidden widths (empty string: no hidden layer).</summary>
    public static int[] ParseHidden(string text)
    {
        if (string.IsNullOrWhiteSpace(text))   // most often an unset shell variable: say so rather than train a network without hidden layers
            throw new UserError($"--layers '{text}': no widths given; give comma-separated whole numbers >= 1, e.g. 256,128, or 'none' for a network without hidden layers");
        if (text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase)) return [];
        if (System.Text.RegularExpressions.Regex.Match(text, @"(?<![0-9\s])\s*-\s*[0-9]+") is { Success: true } negative)   // "-5", "256,-5": a minus sign, not the 784-256 separator
            throw new UserError($"--layers '{text}': '{negative.Value.Trim()}' is not a width: widths are whole numbers >= 1; give comma-separated widths, e.g. 256,128");
        var parts = text.Split([',', '-'], StringSplitOptions.TrimEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out widths[i]) || widths[i] <= 0)
                throw new UserError($"--layers '{text}': {(parts[i].Length == 0 ? "an empty part" : $"'{parts[i]}'")} is not a width; give comma-separated whole numbers >= 1, e.g. 256,128");
        return widths;
    }
}
