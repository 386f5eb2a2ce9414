using System.Globalization;
using System.Text.Json.Nodes;

namespace Gpu.Engine.Settings;

/// <summary>
/// One setting of <see cref="TrainOptions"/> as the three places that name it see it: the <c>train</c>
/// flag (<see cref="Flag"/>, without its dashes), an experiment file (<see cref="Names"/>, under the
/// section <see cref="Section"/>) and a <c>search</c> grid (the keys with <see cref="IsGridAxis"/>).
/// Values are parsed from text (a flag's value, a YAML scalar, an item of a grid list) and checked by
/// <see cref="TrainOptions.Validate"/> itself, so each range rule stays in one place.
/// </summary>
public sealed class Hyperparameter
{
    /// <summary>The train flag without its dashes: "lr", "batch-size", "layers".</summary>
    public string Flag { get; }
    /// <summary>The experiment-file section it belongs to: "Train" or "Model".</summary>
    public string Section { get; }
    /// <summary>Names accepted in an experiment file, normalised (lowercase, '_'): the NumPy code's name first (learning_rate, reg, hidden_size), the flag's last.</summary>
    public IReadOnlyList<string> Names { get; }
    /// <summary>What a valid value looks like, for error messages.</summary>
    public string Accepts { get; }
    /// <summary>Whether <c>gpu search</c> may try several values of it.</summary>
    public bool IsGridAxis { get; }

    readonly Func<string, object> parse;
    readonly Func<TrainOptions, object, TrainOptions> apply;
    readonly Func<TrainOptions, object> get;

    Hyperparameter(string flag, string section, string[] aliases, string accepts, bool gridAxis,
        Func<string, object> parse, Func<TrainOptions, object, TrainOptions> apply, Func<TrainOptions, object> get)
    {
        Flag = flag;
        Section = section;
        Names = [.. aliases, Normalize(flag)];
        Accepts = accepts;
        IsGridAxis = gridAxis;
        this.parse = parse;
        this.apply = apply;
        this.get = get;
    }

    public override string ToString() => Flag;

    /// <summary>
    /// Parses and range-checks one value. <paramref name="where"/> names its origin for the error
    /// (e.g. "grid.yaml line 4: Train.learning_rate"); null for the command line, whose range errors
    /// already name the flag.
    /// </summary>
    public object Parse(string text, string? where)
    {
        object value;
        try { value = parse(text.Trim()); }
        catch (Exception e) when (e is UserError or FormatException or OverflowException)
        {
            throw new UserError($"{where ?? "--" + Flag}: '{text}' is not valid; give {Accepts}");
        }
        // the range rules live in TrainOptions.Validate; Epochs is lifted so that a warm-up is not judged against the default run length
        try { apply(new TrainOptions { Epochs = int.MaxValue }, value).Validate(); }
        catch (UserError e) { throw where == null ? e : new UserError($"{where}: {e.Message}"); }
        return value;
    }

    public TrainOptions Apply(TrainOptions options, object value) => apply(options, value);

    public object Get(TrainOptions options) => get(options);

    /// <summary>A value as a search.csv cell and in progress lines: widths joined by '-' ("256-128"), numbers in invariant culture.</summary>
    public static string Format(object value) => value switch
    {
        int[] widths => string.Join("-", widths),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    /// <summary>A value as JSON: widths as an array, numbers as numbers.</summary>
    public static JsonNode ToJson(object value) => value switch
    {
        int[] widths => new JsonArray(widths.Select(w => (JsonNode)w).ToArray()),
        int i => i,
        float f => f,
        double d => d,
        ulong u => u,
        _ => Format(value),
    };

    /// <summary>Lowercase, with '-' as '_': how experiment-file keys are compared.</summary>
    public static string Normalize(string name) => name.Trim().ToLowerInvariant().Replace('-', '_');

    /// <summary>Every setting an experiment file may give, in the order search.csv lists the grid axes first.</summary>
    public static IReadOnlyList<Hyperparameter> All { get; } =
    [
        new("layers", "Model", ["hidden_size", "hidden_sizes", "hidden"], "hidden widths: a whole number >= 1, a list of them, or a comma string like 256,128", true,
            t => TrainOptions.ParseHidden(t), (o, v) => o with { Hidden = (int[])v }, o => o.Hidden),
        Number("lr", "Train", ["learning_rate"], "a positive number, e.g. 0.05", true, (o, v) => o with { LearningRate = v }, o => o.LearningRate),
        Whole("batch-size", "Train", [], "a whole number >= 1, e.g. 64", true, (o, v) => o with { BatchSize = v }, o => o.BatchSize),
        Whole("epochs", "Train", [], "a whole number >= 1", true, (o, v) => o with { Epochs = v }, o => o.Epochs),
        Number("l2", "Train", ["reg"], "a number >= 0, e.g. 1e-4", true, (o, v) => o with { L2 = v }, o => o.L2),
        Number("momentum", "Train", [], "a number in [0, 1), e.g. 0.9", true, (o, v) => o with { Momentum = v }, o => o.Momentum),
        new("seed", "Train", [], "a whole number >= 0", true,
            t => ulong.Parse(t, NumberStyles.None, CultureInfo.InvariantCulture), (o, v) => o with { Seed = (ulong)v }, o => o.Seed),

        Word("activation", "Model", "relu, sigmoid, tanh or leaky-relu", t => Words.ParseActivation(t), (o, v) => o with { Activation = (Activation)v }, o => o.Activation),
        Word("loss", "Model", "softmax-ce or sigmoid-sse", t => Words.ParseLoss(t), (o, v) => o with { Loss = (LossKind)v }, o => o.Loss),
        Word("init", "Model", "he, glorot or uniform", t => Words.ParseInit(t), (o, v) => o with { Init = (InitKind)v }, o => o.Init),
        Number("bias-init", "Model", [], "a number, e.g. 0.01", false, (o, v) => o with { BiasInit = v }, o => o.BiasInit),
        Word("optimizer", "Train", "sgd, nesterov, adam or adamw", t => Words.ParseOptimizer(t), (o, v) => o with { Optimizer = (OptimizerKind)v }, o => o.Optimizer),
        Number("beta1", "Train", [], "a number in [0, 1), e.g. 0.9", false, (o, v) => o with { Beta1 = v }, o => o.Beta1),
        Number("beta2", "Train", [], "a number in [0, 1), e.g. 0.999", false, (o, v) => o with { Beta2 = v }, o => o.Beta2),
        Word("schedule", "Train", "cosine, step or constant", t => Words.ParseEnum<LrSchedule>(t), (o, v) => o with { Schedule = (LrSchedule)v }, o => o.Schedule),
        Fraction("warmup-epochs", "a number of epochs >= 0 below epochs", (o, v) => o with { WarmupEpochs = v }, o => o.WarmupEpochs),
        Whole("step-every", "Train", [], "a whole number of epochs >= 1", false, (o, v) => o with { StepEvery = v }, o => o.StepEvery),
        Number("step-gamma", "Train", [], "a factor in (0, 1], e.g. 0.1", false, (o, v) => o with { StepGamma = v }, o => o.StepGamma),
        Whole("patience", "Train", [], "a whole number of epochs >= 0", false, (o, v) => o with { Patience = v }, o => o.Patience),
        Word("stop-on", "Train", "loss or accuracy", t => Words.ParseEnum<EarlyStopMetric>(t), (o, v) => o with { StopOn = (EarlyStopMetric)v }, o => o.StopOn),
        Whole("shift", "Train", [], "a whole number of pixels from 0 to 8", false, (o, v) => o with { Shift = v }, o => o.Shift),
        Number("dropout", "Train", [], "a rate in [0, 1), e.g. 0.2", false, (o, v) => o with { Dropout = v }, o => o.Dropout),
        Fraction("val-fraction", "a number in [0, 1), e.g. 0.1", (o, v) => o with { ValFraction = v }, o => o.ValFraction),
        Word("data-path", "Train", "auto, resident or stream", t => Words.ParseEnum<DataPath>(t), (o, v) => o with { DataPath = (DataPath)v }, o => o.DataPath),
    ];

    /// <summary>The setting an experiment-file key names, or null.</summary>
    public static Hyperparameter? ByName(string name)
    {
        string n = Normalize(name);
        return All.FirstOrDefault(h => h.Names.Contains(n));
    }

    static Hyperparameter Whole(string flag, string section, string[] aliases, string accepts, bool grid, Func<TrainOptions, int, TrainOptions> apply, Func<TrainOptions, int> get) =>
        new(flag, section, aliases, accepts, grid, t => int.Parse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture), (o, v) => apply(o, (int)v), o => get(o));

    static Hyperparameter Number(string flag, string section, string[] aliases, string accepts, bool grid, Func<TrainOptions, float, TrainOptions> apply, Func<TrainOptions, float> get) =>
        new(flag, section, aliases, accepts, grid, t => float.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture), (o, v) => apply(o, (float)v), o => get(o));

    static Hyperparameter Fraction(string flag, string accepts, Func<TrainOptions, double, TrainOptions> apply, Func<TrainOptions, double> get) =>
        new(flag, "Train", [], accepts, false, t => double.Parse(t, NumberStyles.Float, CultureInfo.InvariantCulture), (o, v) => apply(o, (double)v), o => get(o));

    static Hyperparameter Word(string flag, string section, string accepts, Func<string, object> parse, Func<TrainOptions, object, TrainOptions> apply, Func<TrainOptions, object> get) =>
        new(flag, section, [], accepts, false, parse, apply, get);

}
