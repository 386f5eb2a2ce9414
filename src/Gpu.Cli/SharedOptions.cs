using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Inference;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

/// <summary>The options that describe a network and its initial weights, and the device: shared by train, landscape and gradcheck.</summary>
public abstract class NetworkOptions
{
    [Option("layers", Default = "256,128", HelpText = "Hidden layer widths, comma-separated (e.g. 40,40,40). Empty for none.")]
    public string Layers { get; set; } = "256,128";

    [Option("activation", Default = "relu", HelpText = "Hidden-layer activation: relu, sigmoid, tanh or leaky-relu (slope 0.01).")]
    public string Activation { get; set; } = "relu";

    [Option("loss", Default = "softmax-ce", HelpText = "softmax-ce (softmax + cross-entropy) or sigmoid-sse (sigmoid outputs, cost 1/2 sum (a - y)^2).")]
    public string Loss { get; set; } = "softmax-ce";

    [Option("init", Default = "he", HelpText = "Weight initialisation: he (uniform, sqrt(6/fan_in)), glorot (sqrt(6/(fan_in+fan_out))) or uniform (1/sqrt(fan_in)).")]
    public string Init { get; set; } = "he";

    [Option("seed", Default = 1UL, HelpText = "Seed for the initial weights and every other random choice (split, shuffles, sampled parameters).")]
    public ulong Seed { get; set; } = 1;

    [Option("device", Default = "auto", HelpText = "auto (CUDA, then OpenCL, then CPU), cpu, cuda[:N] or opencl[:N].")]
    public string Device { get; set; } = "auto";

    /// <summary>The network these flags describe, for data with <paramref name="inputs"/> features and <paramref name="classes"/> classes.</summary>
    public MlpSpec Network(int inputs, int classes) =>
        MlpSpec.FromHidden(inputs, TrainOptions.ParseHidden(Layers), classes, Words.ParseActivation(Activation), Words.ParseLoss(Loss));
}

/// <summary>The options of a training run that train and landscape share.</summary>
public abstract class TrainingRunOptions : NetworkOptions
{
    [Option("data", Default = "data/fashion-mnist", HelpText = "Folder with the four IDX files (train-/t10k- images and labels, .gz or plain), or train/test .npy or .csv files; data/mnist-10k also ships.")]
    public string Data { get; set; } = "data/fashion-mnist";

    [Option("limit", Default = 0, HelpText = "Use only the first N training images (0: all). For quick experiments.")]
    public int Limit { get; set; }

    [Option("epochs", Default = 10, HelpText = "Passes over the training split.")]
    public int Epochs { get; set; } = 10;

    [Option("batch-size", Default = 128, HelpText = "Images per SGD step (the last partial batch is used too).")]
    public int BatchSize { get; set; } = 128;

    [Option("lr", Default = 0.05f, HelpText = "Learning rate.")]
    public float LearningRate { get; set; } = 0.05f;

    [Option("momentum", Default = 0.9f, HelpText = "SGD momentum in [0, 1); 0 is plain SGD.")]
    public float Momentum { get; set; } = 0.9f;

    [Option("l2", Default = 1e-4f, HelpText = "L2 penalty (l2/2)*||W||^2 on weights, not biases.")]
    public float L2 { get; set; } = 1e-4f;

    [Option("optimizer", Default = "sgd", HelpText = "sgd (with --momentum; 0 is plain SGD), nesterov, adam or adamw (decoupled weight decay, --l2 is the decay).")]
    public string Optimizer { get; set; } = "sgd";

    /// <summary>The hyperparameters these flags give; the rest keep <see cref="Gpu.Engine.Settings.TrainOptions"/>'s defaults.</summary>
    public TrainOptions TrainOptions() => new()
    {
        Hidden = Gpu.Engine.Settings.TrainOptions.ParseHidden(Layers),
        Activation = Words.ParseActivation(Activation),
        Loss = Words.ParseLoss(Loss),
        Init = Words.ParseInit(Init),
        Seed = Seed,
        Epochs = Epochs,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        Momentum = Momentum,
        L2 = L2,
        Optimizer = Words.ParseOptimizer(Optimizer),
    };

    /// <summary>"batch 128, lr 0.05, sgd momentum 0.9, l2 0.0001, cosine schedule, seed 1"</summary>
    public static string Describe(TrainOptions o) =>
        $"batch {o.BatchSize}, lr {o.LearningRate}, " +
        $"{Words.OptimizerName(o.Optimizer)}{(o.Optimizer == OptimizerKind.Sgd ? $" momentum {o.Momentum}" : "")}, l2 {o.L2}, " +
        $"{o.Schedule.ToString().ToLowerInvariant()} schedule{(o.WarmupEpochs > 0 ? $" after {o.WarmupEpochs} warm-up epochs" : "")}, seed {o.Seed}";
}
