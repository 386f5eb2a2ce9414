namespace Gpu.Engine.Settings;

/// <summary>An optimizer and its constants. L2 / weight decay applies to weights only, never biases.</summary>
public sealed record Optimizer(OptimizerKind Kind, float Momentum = 0.9f, float L2 = 1e-4f, float Beta1 = 0.9f, float Beta2 = 0.999f, float Eps = 1e-8f);
