namespace Gpu.Engine.Model;

/// <summary>
/// Shape of an MLP: Sizes = [inputs, hidden..., classes]; ReLU hidden layers, softmax + cross-entropy output.
/// Parameters live in one flat vector: every W[l] (shape [out, in], row-major) layer by layer,
/// then every b[l] (length out). This is the packing the NumPy users' <c>unpack</c> expects.
/// </summary>
public sealed class MlpSpec
{
    public int[] Sizes { get; }
    public int Layers => Sizes.Length - 1;
    public int Inputs => Sizes[0];
    public int Classes => Sizes[^1];
    /// <summary>Number of weights (all W[l]); the biases follow them in the flat vector.</summary>
    public int WeightCount { get; }
    public int ParameterCount { get; }
    readonly int[] wOffset, bOffset;

    public MlpSpec(IReadOnlyList<int> sizes)
    {
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

    public static MlpSpec FromHidden(int inputs, IReadOnlyList<int> hidden, int classes) =>
        new([inputs, .. hidden, classes]);

    public int In(int l) => Sizes[l];
    public int Out(int l) => Sizes[l + 1];
    public int WeightOffset(int l) => wOffset[l];
    public int BiasOffset(int l) => bOffset[l];

    /// <summary>"784-256-128-10"</summary>
    public override string ToString() => string.Join("-", Sizes);

    /// <summary>
    /// Seeded He/Kaiming-uniform initialisation: W[l] ~ U(-sqrt(6 / in), +sqrt(6 / in)), biases = <paramref name="bias"/>.
    /// Draws are made in flat-vector order from one <see cref="Rng"/>, so the same seed gives the same vector.
    /// </summary>
    public float[] Initialize(ulong seed, float bias = 0.01f)
    {
        var p = new float[ParameterCount];
        var rng = Rng.For(seed, 0x1417);
        for (int l = 0; l < Layers; l++)
        {
            double limit = Math.Sqrt(6.0 / In(l));
            int o = WeightOffset(l), count = Out(l) * In(l);
            for (int i = 0; i < count; i++) p[o + i] = (float)((rng.NextDouble() * 2 - 1) * limit);
        }
        for (int i = WeightCount; i < ParameterCount; i++) p[i] = bias;
        return p;
    }

    /// <summary>Parses "256,128" into hidden widths (empty string: no hidden layer).</summary>
    public static int[] ParseHidden(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out widths[i]) || widths[i] <= 0)
                throw new UserError($"--layers '{text}': '{parts[i]}' is not a width; give comma-separated whole numbers >= 1, e.g. 256,128");
        return widths;
    }
}
