using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Runs;

/// <summary>
/// A network's parameters as other tools hold them: the tensors of a PyTorch <c>torch.nn.Sequential</c> of
/// <c>Linear</c> layers with the activation between them (<c>Linear, ReLU, Linear, ReLU, Linear</c>: layer l's
/// tensors are <c>{2l}.weight</c> [out, in] and <c>{2l}.bias</c> [out]; a sigmoid-sse network ends with a
/// <c>Sigmoid</c> module, which has no tensors), in a safetensors file; and the starting weights of
/// <c>train --init-from</c>: such a file, or a flat model.npy vector in the engine's packing.
/// </summary>
internal static class ModelWeights
{
    /// <summary>The names of layer <paramref name="l"/>'s weight and bias in the Sequential.</summary>
    public static (string Weight, string Bias) SequentialNames(int l) => ($"{2 * l}.weight", $"{2 * l}.bias");

    /// <summary>The PyTorch module the spec is: "Sequential(Linear(784, 256), ReLU(), Linear(256, 10))".</summary>
    public static string SequentialText(MlpSpec spec)
    {
        var parts = new List<string>();
        for (int l = 0; l < spec.Layers; l++)
        {
            parts.Add($"Linear({spec.In(l)}, {spec.Out(l)})");
            if (l < spec.Layers - 1) parts.Add(TorchModule(spec.Activation));
        }
        if (spec.Loss == LossKind.SigmoidSquaredError) parts.Add("Sigmoid()");
        return $"Sequential({string.Join(", ", parts)})";
    }

    static string TorchModule(Activation a) => a switch
    {
        Activation.Relu => "ReLU()",
        Activation.Tanh => "Tanh()",
        Activation.Sigmoid => "Sigmoid()",
        Activation.LeakyRelu => "LeakyReLU(0.01)",
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, "no PyTorch module for this activation"),
    };

    /// <summary>The flat vector cut into the Sequential's tensors, layer by layer (weight, then bias).</summary>
    public static List<(string Name, long[] Shape, float[] Values)> ToTensors(MlpSpec spec, float[] parameters)
    {
        var tensors = new List<(string, long[], float[])>();
        for (int l = 0; l < spec.Layers; l++)
        {
            var (w, b) = SequentialNames(l);
            tensors.Add((w, [spec.Out(l), spec.In(l)], parameters.AsSpan(spec.WeightOffset(l), spec.Out(l) * spec.In(l)).ToArray()));
            tensors.Add((b, [spec.Out(l)], parameters.AsSpan(spec.BiasOffset(l), spec.Out(l)).ToArray()));
        }
        return tensors;
    }

    /// <summary>
    /// Writes the model as a safetensors file: the Sequential's tensors, and in <c>__metadata__</c> the spec
    /// (format, layers, activation, loss, the PyTorch module, the output, the preprocessing).
    /// </summary>
    public static void WriteSafeTensors(string path, MlpSpec spec, float[] parameters)
    {
        SafeTensors.Write(path, ToTensors(spec, parameters), new Dictionary<string, string>
        {
            ["format"] = "gpu-model",
            ["engine_version"] = Checkpoint.EngineVersion,
            ["layers"] = spec.ToString(),
            ["activation"] = Words.Name(spec.Activation),
            ["loss"] = Words.Name(spec.Loss),
            ["torch_module"] = SequentialText(spec),
            ["output"] = spec.Loss == LossKind.SigmoidSquaredError
                ? "sigmoid outputs (the Sequential ends with Sigmoid); the predicted class is the largest"
                : "logits (apply softmax for probabilities); the predicted class is the largest",
            ["preprocessing"] = SavedModel.Preprocessing,
        });
    }

    /// <summary>
    /// The starting weights in <paramref name="path"/> for a network <paramref name="spec"/>: a safetensors file
    /// (by its extension) holding exactly the Sequential's tensors, float32, of the right shapes; else a
    /// float32 .npy vector of <see cref="MlpSpec.ParameterCount"/> values in the engine's packing. Anything else
    /// is one <see cref="UserError"/> naming the expected and the found sizes. A file that the model.sha256 beside it
    /// lists (the model.npy of a <c>train --output</c> folder) must match its digest there.
    /// </summary>
    public static float[] ReadInitial(string path, MlpSpec spec)
    {
        if (!File.Exists(path)) throw new UserError($"--init-from {path}: file not found; give a model.npy or a .safetensors file");
        float[] p = Path.GetExtension(path).Equals(SafeTensors.Extension, StringComparison.OrdinalIgnoreCase) ? FromSafeTensors(path, spec) : FromNpy(path, spec);
        int bad = Array.FindIndex(p, v => !float.IsFinite(v));
        if (bad >= 0) throw new UserError($"--init-from {path}: parameter {bad} is {p[bad]}; give finite weights");
        return p;
    }

    static float[] FromNpy(string path, MlpSpec spec)
    {
        float[] p;
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); p = Npy.Decode(bytes, $"--init-from {path}"); }
        catch (IOException e) { throw new UserError($"--init-from {path}: cannot read it ({e.Message.TrimEnd('.')})"); }
        string digestPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, SavedModel.DigestName);
        if (File.Exists(digestPath) && DigestFile.Mismatch(digestPath, Path.GetFileName(path), bytes, mustBeListed: false) is string why)
            throw new UserError($"--init-from {path}: {why}; restore the model folder from a copy or train the model again");
        if (p.Length != spec.ParameterCount)
            throw new UserError($"--init-from {path}: expected {spec.ParameterCount:N0} float32 values (network {spec}, model.npy packing), found {p.Length:N0}; " +
                "give the model.npy of a network with these --layers and this data's inputs and classes");
        return p;
    }

    static float[] FromSafeTensors(string path, MlpSpec spec)
    {
        var (tensors, _) = SafeTensors.Read(path);
        var byName = tensors.ToDictionary(t => t.Name);
        var p = new float[spec.ParameterCount];
        var expected = new HashSet<string>();
        for (int l = 0; l < spec.Layers; l++)
        {
            var (w, b) = SequentialNames(l);
            Take(w, [spec.Out(l), spec.In(l)], spec.WeightOffset(l));
            Take(b, [spec.Out(l)], spec.BiasOffset(l));
        }
        var extra = tensors.Select(t => t.Name).Where(n => !expected.Contains(n)).ToList();
        if (extra.Count > 0)
            throw new UserError($"--init-from {path}: expected the {expected.Count} tensors of {SequentialText(spec)}, found {tensors.Count}, " +
                $"{extra.Count} of them not in it ({string.Join(", ", extra.Take(4))}{(extra.Count > 4 ? ", ..." : "")}); give weights of a network with these --layers");
        return p;

        void Take(string name, long[] shape, int offset)
        {
            expected.Add(name);
            string want = $"[{string.Join(", ", shape)}]";
            if (!byName.TryGetValue(name, out var t))
                throw new UserError($"--init-from {path}: expected tensor {name} of shape {want} ({SequentialText(spec)}), found none " +
                    $"(the file holds {string.Join(", ", tensors.Take(6).Select(x => $"{x.Name} {x.ShapeText}"))}{(tensors.Count > 6 ? ", ..." : "")})");
            if (t.DType != "F32") throw new UserError($"--init-from {path}: tensor {name} is {t.DType}; expected F32 (float32): convert it, e.g. with .float() in PyTorch");
            if (!t.Shape.SequenceEqual(shape))
                throw new UserError($"--init-from {path}: tensor {name} has shape {t.ShapeText}, expected {want} for the network {spec}; give weights of a network with these --layers");
            t.Values!.CopyTo(p, offset);
        }
    }
}
