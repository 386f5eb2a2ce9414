namespace Gpu.Engine.Settings;

/// <summary>The words users type and read for the choice enums (Choices.cs) (flags, experiment files, JSON, printed lines).</summary>
public static class Words
{
    /// <summary>Parses relu, sigmoid, tanh, leaky-relu.</summary>
    public static Activation ParseActivation(string text) => text.Trim().ToLowerInvariant() switch
    {
        "relu" => Activation.Relu,
        "sigmoid" => Activation.Sigmoid,
        "tanh" => Activation.Tanh,
        "leaky-relu" or "leakyrelu" or "leaky_relu" => Activation.LeakyRelu,
        _ => throw new UserError($"--activation '{text}': use relu, sigmoid, tanh or leaky-relu"),
    };

    /// <summary>Parses softmax-ce, sigmoid-sse.</summary>
    public static LossKind ParseLoss(string text) => text.Trim().ToLowerInvariant() switch
    {
        "softmax-ce" or "ce" or "cross-entropy" => LossKind.SoftmaxCrossEntropy,
        "sigmoid-sse" or "sse" or "mse" => LossKind.SigmoidSquaredError,
        _ => throw new UserError($"--loss '{text}': use softmax-ce (softmax + cross-entropy) or sigmoid-sse (sigmoid outputs + sum of squares)"),
    };

    /// <summary>Parses he (or kaiming), glorot (or xavier), uniform.</summary>
    public static InitKind ParseInit(string text) => text.Trim().ToLowerInvariant() switch
    {
        "he" or "kaiming" => InitKind.He,
        "glorot" or "xavier" => InitKind.Glorot,
        "uniform" => InitKind.Uniform,
        _ => throw new UserError($"--init '{text}': use he, glorot or uniform"),
    };

    public static string ActivationName(Activation a) => a == Activation.LeakyRelu ? "leaky-relu" : a.ToString().ToLowerInvariant();

    public static string LossName(LossKind loss) => loss == LossKind.SoftmaxCrossEntropy ? "softmax-ce" : "sigmoid-sse";

    public static OptimizerKind ParseOptimizer(string text) => text.Trim().ToLowerInvariant() switch
    {
        "sgd" or "momentum" => OptimizerKind.Sgd,
        "nesterov" => OptimizerKind.Nesterov,
        "adam" => OptimizerKind.Adam,
        "adamw" => OptimizerKind.AdamW,
        _ => throw new UserError($"--optimizer '{text}': use sgd (with --momentum), nesterov, adam or adamw"),
    };

    public static string OptimizerName(OptimizerKind k) => k.ToString().ToLowerInvariant();

    /// <summary>An enum by its name, case-insensitively, '-' and '_' ignored; numbers are refused.</summary>
    public static T ParseEnum<T>(string text) where T : struct, Enum
    {
        string t = text.Replace("-", "").Replace("_", "");
        foreach (var name in Enum.GetNames<T>())
            if (string.Equals(name, t, StringComparison.OrdinalIgnoreCase)) return Enum.Parse<T>(name);
        throw new FormatException(text);
    }
}
