namespace Gpu.Engine.Settings;

/// <summary>An optimizer and its constants (from <see cref="TrainOptions"/>, whose defaults they are). L2 / weight decay applies to weights only, never biases. Adam's decays and epsilon stay double until the kernel boundary (<c>KernelSet.Adam</c>), as PyTorch keeps them in Python floats.</summary>
internal sealed record Optimizer(OptimizerKind Kind, float Momentum, float L2, double Beta1, double Beta2, double Eps = 1e-8);
