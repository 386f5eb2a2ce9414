namespace Gpu.Engine.Settings;

/// <summary>
/// The words users type and read for the choice enums (Choices.cs): one table, used for flags,
/// experiment files, JSON files (model.json, checkpoint state, best.json, search.json) and printed
/// lines. Each value has one canonical word (what <see cref="Name{T}"/> gives and every file and
/// line shows) and may have other spellings that <see cref="Parse{T}"/> accepts too.
/// </summary>
internal static class Words
{
    /// <summary>
    /// One word of the table: the value, its canonical word, what it means (for help texts; empty for
    /// none), other spellings accepted, and whether users may choose it (the identity activation is
    /// only named, for output layers and kernel checks).
    /// </summary>
    public sealed record Word(Enum Value, string Text, string Meaning = "", string[]? Aliases = null, bool Choosable = true)
    {
        public IEnumerable<string> Spellings => [Text, .. Aliases ?? []];
    }

    /// <summary>Per enum, its words in the order help texts and error messages list them.</summary>
    static readonly Dictionary<Type, Word[]> Table = new()
    {
        [typeof(Activation)] =
        [
            new(Activation.Relu, "relu"),
            new(Activation.Sigmoid, "sigmoid"),
            new(Activation.Tanh, "tanh"),
            new(Activation.LeakyRelu, "leaky-relu", "slope 0.01", ["leakyrelu", "leaky_relu"]),
            new(Activation.Identity, "identity", Choosable: false),
        ],
        [typeof(LossKind)] =
        [
            new(LossKind.SoftmaxCrossEntropy, "softmax-ce", "softmax + cross-entropy", ["ce", "cross-entropy"]),
            new(LossKind.SigmoidSquaredError, "sigmoid-sse", "sigmoid outputs, cost 1/2 sum (a - y)^2", ["sse", "mse"]),
        ],
        [typeof(InitKind)] =
        [
            new(InitKind.He, "he", "uniform, sqrt(6/fan_in)", ["kaiming"]),
            new(InitKind.Glorot, "glorot", "sqrt(6/(fan_in+fan_out))", ["xavier"]),
            new(InitKind.Uniform, "uniform", "1/sqrt(fan_in)"),
        ],
        [typeof(OptimizerKind)] =
        [
            new(OptimizerKind.Sgd, "sgd", "with --momentum; 0 is plain SGD", ["momentum"]),
            new(OptimizerKind.Nesterov, "nesterov"),
            new(OptimizerKind.Adam, "adam"),
            new(OptimizerKind.AdamW, "adamw", "decoupled weight decay, --l2 is the decay"),
        ],
        [typeof(LrSchedule)] =
        [
            new(LrSchedule.Cosine, "cosine", "from --lr down to 0 over the run"),
            new(LrSchedule.Step, "step", "times --step-gamma every --step-every epochs"),
            new(LrSchedule.Constant, "constant"),
        ],
        [typeof(ExportFormat)] =
        [
            new(ExportFormat.Onnx, "onnx", "ONNX graph, preprocessing inside"),
            new(ExportFormat.Safetensors, "safetensors", "PyTorch Sequential tensors"),
        ],
        [typeof(EarlyStopMetric)] =
        [
            new(EarlyStopMetric.Loss, "loss"),
            new(EarlyStopMetric.Accuracy, "accuracy"),
        ],
        [typeof(Precision)] =
        [
            new(Precision.Fp32, "fp32", "every product in float32", ["float32", "f32"]),
            new(Precision.Tf32, "tf32", "product inputs rounded to TF32, sums in float32", ["tensorfloat32"]),
            new(Precision.Bf16, "bf16", "product inputs rounded to bfloat16, sums in float32", ["bfloat16"]),
        ],
        [typeof(DataPath)] =
        [
            new(DataPath.Auto, "auto", "resident when the data takes at most half the device memory"),
            new(DataPath.Resident, "resident", "dataset on the device, batches gathered there"),
            new(DataPath.Stream, "stream", "page-locked host buffers, async copies"),
        ],
    };

    /// <summary>Every enum the table covers.</summary>
    public static IEnumerable<Type> Enums => Table.Keys;

    /// <summary>The words of <typeparamref name="T"/>, in listing order.</summary>
    public static IReadOnlyList<Word> Of<T>() where T : struct, Enum => Of(typeof(T));

    public static IReadOnlyList<Word> Of(Type enumType) =>
        Table.TryGetValue(enumType, out var words) ? words : throw new ArgumentException($"no words for {enumType.Name}");

    /// <summary>The canonical word of a value: "softmax-ce", "he", "auto".</summary>
    public static string Name<T>(T value) where T : struct, Enum =>
        Of<T>().FirstOrDefault(w => w.Value.Equals(value))?.Text ?? throw new ArgumentOutOfRangeException(nameof(value), value, $"no word for {typeof(T).Name}.{value}");

    /// <summary>
    /// A value from a word users may choose (the canonical word or another spelling; case and
    /// surrounding blanks ignored). Anything else is a <see cref="FormatException"/> listing the words.
    /// </summary>
    public static T Parse<T>(string text) where T : struct, Enum
    {
        string t = text.Trim().ToLowerInvariant();
        foreach (var w in Of<T>())
            if (w.Choosable && w.Spellings.Contains(t)) return (T)w.Value;
        throw new FormatException($"'{text}' is not one of {List<T>()}");
    }

    /// <summary>
    /// <see cref="Parse{T}"/>, or else the enum member's name ('-' and '_' ignored): what files written
    /// before the words were used everywhere hold ("SoftmaxCrossEntropy", "He", "Auto", "Loss").
    /// </summary>
    public static T ParseStored<T>(string text) where T : struct, Enum
    {
        try { return Parse<T>(text); }
        catch (FormatException)
        {
            string t = text.Trim().Replace("-", "").Replace("_", "");
            foreach (var w in Of<T>())
                if (w.Choosable && string.Equals(w.Value.ToString(), t, StringComparison.OrdinalIgnoreCase)) return (T)w.Value;
            throw;
        }
    }

    /// <summary>"relu, sigmoid, tanh or leaky-relu": the words users may choose.</summary>
    public static string List<T>() where T : struct, Enum => Join(Of<T>().Where(w => w.Choosable).Select(w => w.Text));

    /// <summary>"relu, sigmoid, tanh or leaky-relu (slope 0.01)": the words with their meanings, for help texts.</summary>
    public static string Describe<T>() where T : struct, Enum =>
        Join(Of<T>().Where(w => w.Choosable).Select(w => w.Meaning.Length > 0 ? $"{w.Text} ({w.Meaning})" : w.Text));

    /// <summary>The hidden activation's word (kernel checks name activations with it).</summary>
    public static string ActivationName(Activation a) => Name(a);

    static string Join(IEnumerable<string> items)
    {
        var list = items.ToList();
        return list.Count <= 1 ? string.Join("", list) : $"{string.Join(", ", list[..^1])} or {list[^1]}";
    }
}
