namespace Gpu.Engine.Training;

/// <summary>Which update rule the fused optimizer kernel applies.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with classical momentum (momentum 0: plain SGD); L2 added to the gradient.</summary>
    Sgd,
    /// <summary>SGD with Nesterov momentum; L2 added to the gradient.</summary>
    Nesterov,
    /// <summary>Adam; L2 added to the gradient.</summary>
    Adam,
    /// <summary>AdamW: Adam with decoupled weight decay (weights only).</summary>
    AdamW,
}

/// <summary>An optimizer and its constants. L2 / weight decay applies to weights only, never biases.</summary>
public sealed record Optimizer(OptimizerKind Kind, float Momentum = 0.9f, float L2 = 1e-4f, float Beta1 = 0.9f, float Beta2 = 0.999f, float Eps = 1e-8f)
{
    public static OptimizerKind Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "sgd" or "momentum" => OptimizerKind.Sgd,
        "nesterov" => OptimizerKind.Nesterov,
        "adam" => OptimizerKind.Adam,
        "adamw" => OptimizerKind.AdamW,
        _ => throw new UserError($"--optimizer '{text}': use sgd (with --momentum), nesterov, adam or adamw"),
    };

    public static string Name(OptimizerKind k) => k.ToString().ToLowerInvariant();
}
