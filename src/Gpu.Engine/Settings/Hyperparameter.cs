using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Gpu.Engine.Settings;

/// <summary>
/// One setting of <see cref="TrainOptions"/>, a row of the setting table <see cref="All"/>: every place
/// that names a setting reads it from here. A row holds the <c>train</c> flag (<see cref="Flag"/>,
/// without its dashes), the experiment-file names (<see cref="Names"/>, under <see cref="Section"/>),
/// the JSON key (<see cref="JsonKey"/>, in model.json, checkpoint state, best.json and search.json),
/// the range rule with what a valid value looks like (<see cref="Accepts"/>), the help text
/// (<see cref="Help"/>) and whether <c>gpu search</c> may try several values (<see cref="IsGridAxis"/>).
/// The default is not restated: it is <see cref="TrainOptions"/>'s own (<see cref="Default"/>).
/// A value is read from text by one parser per row, whether it comes from a flag, a YAML scalar, a grid
/// list or a JSON file, and written back by <see cref="Name"/> as text that parser accepts (enums as
/// their words, see <see cref="Words"/>).
/// </summary>
internal abstract class Hyperparameter
{
    /// <summary>The train flag without its dashes: "lr", "batch-size", "layers".</summary>
    public string Flag { get; }
    /// <summary>The experiment-file section it belongs to: "Train" or "Model".</summary>
    public string Section { get; }
    /// <summary>Names accepted in an experiment file, normalised (lowercase, '_'): the NumPy code's name first (learning_rate, reg, hidden_size), the flag's last. Empty for a setting users do not give.</summary>
    public IReadOnlyList<string> Names { get; }
    /// <summary>The key in the JSON files' hyperparameter objects: "learning_rate", "hidden".</summary>
    public string JsonKey { get; }
    /// <summary>What a valid value looks like, for error messages: "a positive number, e.g. 0.05".</summary>
    public string Accepts { get; }
    /// <summary>The flag's help text (for a choice, its words and their meanings included).</summary>
    public string Help { get; }
    /// <summary>Whether <c>gpu search</c> may try several values of it.</summary>
    public bool IsGridAxis { get; }
    /// <summary>Whether users give it (flag, experiment file); false for a setting only recorded in JSON (eval_batch_size).</summary>
    public bool OnCommandLine { get; }
    /// <summary>Whether JSON files must hold it (the settings of format version 1); later ones default when absent.</summary>
    public bool RequiredInJson { get; }

    private protected Hyperparameter(string flag, string section, string[] aliases, string? jsonKey, string accepts, string help,
        bool gridAxis, bool onCommandLine, bool requiredInJson)
    {
        Flag = flag;
        Section = section;
        Names = onCommandLine ? [.. aliases, Normalize(flag)] : [];
        JsonKey = jsonKey ?? Normalize(flag);
        Accepts = accepts;
        Help = help;
        IsGridAxis = gridAxis;
        OnCommandLine = onCommandLine;
        RequiredInJson = requiredInJson;
    }

    public override string ToString() => Flag;

    /// <summary>The value in <paramref name="options"/>.</summary>
    public abstract object Get(TrainOptions options);

    /// <summary><paramref name="options"/> with this setting replaced by <paramref name="value"/> (of the row's type).</summary>
    public abstract TrainOptions Apply(TrainOptions options, object value);

    /// <summary>The value as text the flag accepts, canonical: "0.05", "256,128", "softmax-ce".</summary>
    public abstract string Name(object value);

    /// <summary>The value as JSON: numbers as numbers, widths as an array, choices as their words.</summary>
    public abstract JsonNode ToJson(object value);

    /// <summary>Whether the value is in range (the one place each range rule is stated).</summary>
    public abstract bool InRange(object value);

    /// <summary>The default: <see cref="TrainOptions"/>'s own.</summary>
    public object Default => Get(new TrainOptions());

    /// <summary>The default as the flag's help shows it.</summary>
    public string DefaultText => Name(Default);

    /// <summary>Text to a value, syntax only: throws <see cref="FormatException"/>, <see cref="OverflowException"/> or a <see cref="UserError"/> of its own.</summary>
    private protected abstract object ParseText(string text);

    /// <summary>Text from a JSON file to a value: the flag's parser, plus the enum member names files of earlier versions hold.</summary>
    private protected abstract object ParseStored(string text);

    /// <summary>Throws the setting's range error unless <paramref name="value"/> is in range: "--lr -1: give a positive number, e.g. 0.05".</summary>
    public void Check(object value)
    {
        if (!InRange(value)) throw new UserError($"--{Flag} {Name(value)}: give {Accepts}");
    }

    /// <summary>
    /// Parses and range-checks one value. <paramref name="where"/> names its origin for the error
    /// (e.g. "grid.yaml line 4: Train.learning_rate"); null for the command line, where a parser's own
    /// message (which names the flag) is kept and any other is "--lr: 'x' is not valid; give ...".
    /// </summary>
    public object Parse(string text, string? where)
    {
        object value;
        try { value = ParseText(text.Trim()); }
        catch (UserError) when (where == null) { throw; }
        catch (Exception e) when (e is UserError or FormatException or OverflowException)
        {
            throw new UserError($"{where ?? "--" + Flag}: '{text}' is not valid; give {Accepts}");
        }
        try { Check(value); }
        catch (UserError e) when (where != null) { throw new UserError($"{where}: {e.Message}"); }
        return value;
    }

    /// <summary>
    /// A value read back from a JSON file with the flag's parser: a string as it is, a number as its
    /// JSON text, a list of widths joined by ','. Not range-checked (<see cref="TrainOptions.Validate"/> does that).
    /// </summary>
    public object FromJson(JsonNode node) => ParseStored(node switch
    {
        JsonArray list => string.Join(",", list.Select(n => n?.ToJsonString())),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => node.ToJsonString(),
    });

    /// <summary>A value as a search.csv cell and in progress lines: widths joined by '-' ("256-128"), numbers in invariant culture.</summary>
    public static string Format(object value) => value switch
    {
        int[] widths => string.Join("-", widths),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    /// <summary>Lowercase, with '-' as '_': how experiment-file keys are compared.</summary>
    public static string Normalize(string name) => name.Trim().ToLowerInvariant().Replace('-', '_');

    const string Train = "Train", Model = "Model";

    /// <summary>
    /// The setting table: every setting of <see cref="TrainOptions"/>, the grid axes first in the order
    /// search.csv lists them.
    /// </summary>
    public static IReadOnlyList<Hyperparameter> All { get; } =
    [
        new Row<int[]>("layers", Model, ["hidden_size", "hidden_sizes", "hidden"], "hidden", Codec.Widths,
            "hidden widths: a whole number >= 1, a list of them, or a comma string like 256,128",
            "Hidden layer widths, comma-separated (e.g. 40,40,40); none for a network without hidden layers.",
            w => w.All(v => v >= 1), o => o.Hidden, (o, v) => o with { Hidden = v }, grid: true, required: true),
        new Row<float>("lr", Train, ["learning_rate"], "learning_rate", Codec.Float, "a positive number, e.g. 0.05", "Learning rate.",
            v => v > 0 && float.IsFinite(v), o => o.LearningRate, (o, v) => o with { LearningRate = v }, grid: true, required: true),
        new Row<int>("batch-size", Train, [], "batch_size", Codec.Int, "a whole number >= 1, e.g. 64", "Images per SGD step (the last partial batch is used too).",
            v => v >= 1, o => o.BatchSize, (o, v) => o with { BatchSize = v }, grid: true, required: true),
        new Row<int>("epochs", Train, [], null, Codec.Int, "a whole number >= 1", "Passes over the training split.",
            v => v >= 1, o => o.Epochs, (o, v) => o with { Epochs = v }, grid: true, required: true),
        new Row<float>("l2", Train, ["reg"], null, Codec.Float, "a number >= 0, e.g. 1e-4", "L2 penalty (l2/2)*||W||^2 on weights, not biases.",
            v => v >= 0 && float.IsFinite(v), o => o.L2, (o, v) => o with { L2 = v }, grid: true, required: true),
        new Row<float>("momentum", Train, [], null, Codec.Float, "a number in [0, 1), e.g. 0.9", "SGD momentum in [0, 1); 0 is plain SGD.",
            v => v >= 0 && v < 1, o => o.Momentum, (o, v) => o with { Momentum = v }, grid: true, required: true),
        new Row<ulong>("seed", Train, [], null, Codec.Seed, "a whole number >= 0",
            "Seed for the initial weights and every other random choice (split, shuffles, sampled parameters).",
            _ => true, o => o.Seed, (o, v) => o with { Seed = v }, grid: true, required: true),

        Choice<Activation>("activation", Model, "Hidden-layer activation", o => o.Activation, (o, v) => o with { Activation = v }),
        Choice<LossKind>("loss", Model, "Output layer and cost", o => o.Loss, (o, v) => o with { Loss = v }),
        Choice<InitKind>("init", Model, "Weight initialisation", o => o.Init, (o, v) => o with { Init = v }),
        new Row<float>("bias-init", Model, [], null, Codec.Float, "a finite number, e.g. 0.01", "Initial value of every bias.",
            float.IsFinite, o => o.BiasInit, (o, v) => o with { BiasInit = v }),
        Choice<OptimizerKind>("optimizer", Train, "Update rule", o => o.Optimizer, (o, v) => o with { Optimizer = v }),
        new Row<double>("beta1", Train, [], null, Codec.Double, "a number in [0, 1), e.g. 0.9", "Adam/AdamW first-moment decay.",
            v => v >= 0 && v < 1, o => o.Beta1, (o, v) => o with { Beta1 = v }),
        new Row<double>("beta2", Train, [], null, Codec.Double, "a number in [0, 1), e.g. 0.999", "Adam/AdamW second-moment decay.",
            v => v >= 0 && v < 1, o => o.Beta2, (o, v) => o with { Beta2 = v }),
        Choice<LrSchedule>("schedule", Train, "Learning-rate schedule after any warm-up", o => o.Schedule, (o, v) => o with { Schedule = v }, required: true),
        new Row<double>("warmup-epochs", Train, [], null, Codec.Double, "a number of epochs >= 0, below --epochs",
            "Linear learning-rate warm-up over this many epochs (fractions allowed), then the schedule.",
            v => v >= 0, o => o.WarmupEpochs, (o, v) => o with { WarmupEpochs = v }),
        new Row<int>("step-every", Train, [], null, Codec.Int, "a whole number of epochs >= 1",
            "With --schedule step: multiply the learning rate by --step-gamma every this many epochs.",
            v => v >= 1, o => o.StepEvery, (o, v) => o with { StepEvery = v }),
        new Row<float>("step-gamma", Train, [], null, Codec.Float, "a factor in (0, 1], e.g. 0.1", "With --schedule step: the factor.",
            v => v > 0 && v <= 1, o => o.StepGamma, (o, v) => o with { StepGamma = v }),
        new Row<int>("patience", Train, [], null, Codec.Int, "a whole number of epochs >= 0 (0: no early stopping)",
            "Early stopping: stop after N epochs without a better validation score and restore the best epoch's weights (0: off).",
            v => v >= 0, o => o.Patience, (o, v) => o with { Patience = v }),
        Choice<EarlyStopMetric>("stop-on", Train, "The validation score early stopping watches", o => o.StopOn, (o, v) => o with { StopOn = v }),
        new Row<int>("shift", Train, [], null, Codec.Int, "a whole number of pixels from 0 to 8, e.g. 2",
            "Augmentation: shift each training image by up to N pixels per axis (seeded, new every epoch; off at evaluation).",
            v => v >= 0 && v <= 8, o => o.Shift, (o, v) => o with { Shift = v }),
        new Row<float>("dropout", Train, [], null, Codec.Float, "a rate in [0, 1), e.g. 0.2",
            "Inverted dropout rate on hidden-layer outputs while training (seeded; off at evaluation).",
            v => v >= 0 && v < 1, o => o.Dropout, (o, v) => o with { Dropout = v }),
        new Row<double>("val-fraction", Train, [], null, Codec.Double, "a number in [0, 1), e.g. 0.1",
            "Fraction of the training set held out (seeded) for validation; 0 for none.",
            v => v >= 0 && v < 1, o => o.ValFraction, (o, v) => o with { ValFraction = v }, required: true),
        Choice<DataPath>("data-path", Train, "How batches reach the device", o => o.DataPath, (o, v) => o with { DataPath = v }),
        Choice<Precision>("precision", Train,
            "Precision of the dense-layer products' inputs; weights, optimizer state, the loss and all sums stay float32 (without tensor cores: emulated by rounding in the product kernels)",
            o => o.Precision, (o, v) => o with { Precision = v }),
        new Row<int>("stream-buffer", Train, [], null, Codec.Int, "a whole number of MB >= 1, e.g. 1024",
            "With --data-path stream over an uncompressed .npy or IDX file (read in place, not loaded): MB of training rows held in memory. A set that fits is shuffled exactly as resident; a larger one by blocks within a buffer this size.",
            v => v >= 1, o => o.StreamBuffer, (o, v) => o with { StreamBuffer = v }),
        new Row<int>("eval-batch-size", Train, [], null, Codec.Int, "a whole number >= 1", "Rows per forward pass when evaluating.",
            v => v >= 1, o => o.EvalBatchSize, (o, v) => o with { EvalBatchSize = v }, onCommandLine: false, required: true),
    ];

    /// <summary>The setting a flag (without dashes) names.</summary>
    public static Hyperparameter ByFlag(string flag) => All.Single(h => h.Flag == flag);

    /// <summary>The setting an experiment-file key names, or null.</summary>
    public static Hyperparameter? ByName(string name)
    {
        string n = Normalize(name);
        return All.FirstOrDefault(h => h.Names.Contains(n));
    }

    /// <summary>The hyperparameters of a run as JSON, one key per setting (checkpoint state.json, model.json, best.json and search.json use it).</summary>
    public static JsonObject OptionsToJson(TrainOptions o) =>
        new(All.Select(h => KeyValuePair.Create(h.JsonKey, (JsonNode?)h.ToJson(h.Get(o)))));

    /// <summary>
    /// Reads <see cref="OptionsToJson"/>'s object back, each value with its flag's parser; a setting
    /// added since format version 1 takes the engine's default when absent. A missing required
    /// setting or an unreadable value is a <see cref="FormatException"/> naming the key.
    /// </summary>
    public static TrainOptions OptionsFromJson(JsonNode h)
    {
        var options = new TrainOptions();
        foreach (var key in All)
        {
            var node = h[key.JsonKey];
            if (node == null)
            {
                if (key.RequiredInJson) throw new FormatException($"no \"{key.JsonKey}\"");
                continue;
            }
            object value;
            try { value = key.FromJson(node); }
            catch (Exception e) when (e is FormatException or OverflowException or UserError or InvalidOperationException)
            {
                throw new FormatException($"\"{key.JsonKey}\": {node.ToJsonString()} is not {key.Accepts}");
            }
            options = key.Apply(options, value);
        }
        return options;
    }

    static Row<T> Choice<T>(string flag, string section, string help, Func<TrainOptions, T> get, Func<TrainOptions, T, TrainOptions> apply, bool required = false)
        where T : struct, Enum =>
        new(flag, section, [], null, Codec.Word<T>(), Words.List<T>(), $"{help}: {Words.Describe<T>()}.",
            v => Words.Of<T>().Any(w => w.Choosable && w.Value.Equals(v)), get, apply, required: required);

    /// <summary>How values of one type are read from text, written as text and as JSON.</summary>
    sealed record Codec<T>(Func<string, T> Parse, Func<T, string> Name, Func<T, JsonNode> Json, Func<string, T> ParseStored);

    static class Codec
    {
        static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

        public static readonly Codec<int> Int = Plain(t => int.Parse(t, NumberStyles.AllowLeadingSign, Inv), v => v.ToString(Inv), v => v);
        public static readonly Codec<float> Float = Plain(t => float.Parse(t, NumberStyles.Float, Inv), v => v.ToString(Inv), v => v);
        public static readonly Codec<double> Double = Plain(t => double.Parse(t, NumberStyles.Float, Inv), v => v.ToString(Inv), v => v);
        public static readonly Codec<ulong> Seed = Plain(t => ulong.Parse(t, NumberStyles.None, Inv), v => v.ToString(Inv), v => v);
        public static readonly Codec<int[]> Widths = Plain(TrainOptions.ParseHidden, w => w.Length == 0 ? "none" : string.Join(",", w), w => new JsonArray(w.Select(v => (JsonNode)v).ToArray()));

        public static Codec<T> Word<T>() where T : struct, Enum => new(Words.Parse<T>, v => Words.Name(v), v => Words.Name(v), Words.ParseStored<T>);

        static Codec<T> Plain<T>(Func<string, T> parse, Func<T, string> name, Func<T, JsonNode> json) => new(parse, name, json, parse);
    }

    sealed class Row<T>(string flag, string section, string[] aliases, string? jsonKey, Codec<T> codec, string accepts, string help,
        Func<T, bool> inRange, Func<TrainOptions, T> get, Func<TrainOptions, T, TrainOptions> apply,
        bool grid = false, bool onCommandLine = true, bool required = false)
        : Hyperparameter(flag, section, aliases, jsonKey, accepts, help, grid, onCommandLine, required)
    {
        public override object Get(TrainOptions options) => get(options)!;
        public override TrainOptions Apply(TrainOptions options, object value) => apply(options, (T)value);
        public override string Name(object value) => codec.Name((T)value);
        public override JsonNode ToJson(object value) => codec.Json((T)value);
        public override bool InRange(object value) => inRange((T)value);
        private protected override object ParseText(string text) => codec.Parse(text)!;
        private protected override object ParseStored(string text) => codec.ParseStored(text.Trim())!;
    }
}
