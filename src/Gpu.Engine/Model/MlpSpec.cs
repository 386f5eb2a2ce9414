using Gpu.Engine.Settings;

namespace Gpu.Engine.Model;

/// <summary>
/// Shape of an MLP: Sizes = [inputs, hidden..., classes]; hidden layers use <see cref="Activation"/>
/// (ReLU by default), the output layer and cost are given by <see cref="Loss"/> (softmax + cross-entropy by default).
/// Parameters live in one flat vector: every W[l] (shape [out, in], row-major) layer by layer,
/// then every b[l] (length out). This is the packing NumPy code that unpacks the flat vector expects (README: NumPy code).
/// </summary>
internal sealed class MlpSpec
{
    public int[] Sizes { get; }
    public int Layers => Sizes.Length - 1;
    public int Inputs => Sizes[0];
    public int Classes => Sizes[^1];
    /// <summary>Number of weights (all W[l]); the biases follow them in the flat vector.</summary>
    public int WeightCount { get; }
    public int ParameterCount { get; }
    public Activation Activation { get; }
    public LossKind Loss { get; }
    readonly int[] wOffset, bOffset;

    public MlpSpec(IReadOnlyList<int> sizes, Activation activation = Activation.Relu, LossKind loss = LossKind.SoftmaxCrossEntropy)
    {
        Activation = activation;
        Loss = loss;
        if (sizes.Count < 2) throw new UserError("a network needs at least an input and an output size");
        foreach (var s in sizes)
            if (s <= 0) throw new UserError($"layer width {s} is not positive; widths must be whole numbers >= 1");
        Sizes = sizes.ToArray();
        wOffset = new int[Layers];
        bOffset = new int[Layers];
        long off = 0;
        for (int l = 0; l < Layers; l++) { wOffset[l] = (int)off; off += (long)Sizes[l + 1] * Sizes[l]; }
        WeightCount = (int)off;
        for (int l = 0; l < Layers; l++) { bOffset[l] = (int)off; off += Sizes[l + 1]; }
        if (off > int.MaxValue) throw new UserError($"the network has {off} parameters; at most {int.MaxValue} are supported");
        ParameterCount = (int)off;
    }

    public static MlpSpec FromHidden(int inputs, IReadOnlyList<int> hidden, int classes,
        Activation activation = Activation.Relu, LossKind loss = LossKind.SoftmaxCrossEntropy) =>
        new([inputs, .. hidden, classes], activation, loss);

    /// <summary>Activation applied to the output of layer l: the hidden activation, or the output layer's (identity for softmax, sigmoid for squared error).</summary>
    public Activation LayerActivation(int l) =>
        l < Layers - 1 ? Activation : Loss == LossKind.SigmoidSquaredError ? Activation.Sigmoid : Activation.Identity;

    public int In(int l) => Sizes[l];
    public int Out(int l) => Sizes[l + 1];
    public int WeightOffset(int l) => wOffset[l];
    public int BiasOffset(int l) => bOffset[l];

    /// <summary>"784-256-128-10"</summary>
    public override string ToString() => string.Join("-", Sizes);

    /// <summary>"784-256-128-10 relu, softmax-ce"</summary>
    public string Describe() => Layers == 1 ? $"{this} (no hidden layer), {Words.Name(Loss)}" : $"{this} {Words.Name(Activation)}, {Words.Name(Loss)}";

    /// <summary>
    /// Seeded initialisation: W[l] ~ U(-limit, +limit) with the limit of <paramref name="kind"/> (He/Kaiming
    /// uniform by default: sqrt(6 / in)), biases = <paramref name="bias"/>. Draws are made in flat-vector
    /// order from one <see cref="Rng"/>, so the same seed gives the same vector.
    /// </summary>
    public float[] Initialize(ulong seed, float bias = 0.01f, InitKind kind = InitKind.He)
    {
        var p = new float[ParameterCount];
        var rng = Rng.For(seed, 0x1417);
        for (int l = 0; l < Layers; l++)
        {
            double limit = kind switch
            {
                InitKind.Glorot => Math.Sqrt(6.0 / (In(l) + Out(l))),
                InitKind.Uniform => 1.0 / Math.Sqrt(In(l)),
                _ => Math.Sqrt(6.0 / In(l)),
            };
            int o = WeightOffset(l), count = Out(l) * In(l);
            for (int i = 0; i < count; i++) p[o + i] = (float)((rng.NextDouble() * 2 - 1) * limit);
        }
        for (int i = WeightCount; i < ParameterCount; i++) p[i] = bias;
        return p;
    }

}
