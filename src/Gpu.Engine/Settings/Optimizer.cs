namespace Gpu.Engine.Settings;

/// <summary>An optimizer and its constants (from <see cref="TrainOptions"/>, whose defaults they are). L2 / weight decay applies to weights only, never biases.</summary>
internal sealed record Optimizer(OptimizerKind Kind, float Momentum, float L2, float Beta1, float Beta2, float Eps = 1e-8f);
