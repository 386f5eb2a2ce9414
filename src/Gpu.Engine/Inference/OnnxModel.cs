using System.Text;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Inference;

/// <summary>
/// A trained model as an ONNX file (protobuf written here by hand: the handful of ONNX messages it needs,
/// no dependency). Opset <see cref="Opset"/>, IR version <see cref="IrVersion"/>. The graph takes the raw
/// pixels and does the training preprocessing itself:
/// <code>
/// pixels [N, features] float32, values 0..255 (uint8 pixels as floats; N is the dynamic batch dimension "N")
///   Mul(1/255) -> Sub(0.5)                       the engine's x / 255 - 0.5 (Dataset.Normalize, the gather kernel)
///   Gemm(transB=1) with W[l] [out, in], b[l]     per layer, then the hidden activation (Relu, Tanh, Sigmoid, LeakyRelu(0.01))
///   -> logits [N, classes]                       the output layer's pre-activation
///   Softmax(axis=1) (softmax-ce) or Sigmoid (sigmoid-sse) -> probabilities [N, classes]
/// </code>
/// The model's metadata_props repeat this (input, preprocessing, outputs, layers, activation, loss).
/// </summary>
internal static class OnnxModel
{
    public const int Opset = 17, IrVersion = 8;
    public const string Input = "pixels", Logits = "logits", Probabilities = "probabilities";

    /// <summary>The ONNX bytes of the model <paramref name="spec"/> with <paramref name="parameters"/> (flat, the engine's packing).</summary>
    public static byte[] Encode(MlpSpec spec, float[] parameters)
    {
        if (parameters.Length != spec.ParameterCount) throw new ArgumentException($"{parameters.Length} parameters for {spec} ({spec.ParameterCount})");
        var graph = new Proto();
        var inits = new List<Action<Proto>>();
        void Node(string op, string[] inputs, string output, params Action<Proto>[] attributes) => graph.Message(1, n =>
        {
            foreach (var i in inputs) n.String(1, i);
            n.String(2, output);
            n.String(3, output + "_" + op);
            n.String(4, op);
            foreach (var a in attributes) n.Message(5, a);
        });
        void Const(string name, long[] dims, float[] values) => graph.Message(5, t =>
        {
            foreach (var d in dims) t.Varint(1, (ulong)d);
            t.Varint(2, 1);   // FLOAT
            t.String(8, name);
            var raw = new byte[4 * values.Length];
            Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw_data is little-endian");
            t.Bytes(9, raw);
        });

        // the preprocessing, exactly as the engine computes it in float32: pixel * (1f / 255f) - 0.5f
        Const("scale", [], [1f / 255f]);
        Const("offset", [], [0.5f]);
        Node("Mul", [Input, "scale"], "scaled");
        Node("Sub", ["scaled", "offset"], "x0");
        string x = "x0";
        for (int l = 0; l < spec.Layers; l++)
        {
            var (wName, bName) = ModelWeights.SequentialNames(l);
            Const(wName, [spec.Out(l), spec.In(l)], parameters.AsSpan(spec.WeightOffset(l), spec.Out(l) * spec.In(l)).ToArray());
            Const(bName, [spec.Out(l)], parameters.AsSpan(spec.BiasOffset(l), spec.Out(l)).ToArray());
            bool last = l == spec.Layers - 1;
            string z = last ? Logits : $"z{l + 1}";
            Node("Gemm", [x, wName, bName], z, IntAttribute("transB", 1));
            if (last) break;
            string h = $"h{l + 1}";
            switch (spec.Activation)
            {
                case Activation.Relu: Node("Relu", [z], h); break;
                case Activation.Tanh: Node("Tanh", [z], h); break;
                case Activation.Sigmoid: Node("Sigmoid", [z], h); break;
                case Activation.LeakyRelu: Node("LeakyRelu", [z], h, FloatAttribute("alpha", 0.01f)); break;
                default: throw new ArgumentOutOfRangeException(nameof(spec), spec.Activation, "no ONNX operator for this activation");
            }
            x = h;
        }
        if (spec.Loss == LossKind.SigmoidSquaredError) Node("Sigmoid", [Logits], Probabilities);
        else Node("Softmax", [Logits], Probabilities, IntAttribute("axis", 1));

        graph.String(2, "gpu_mlp");
        graph.Message(11, ValueInfo(Input, spec.Inputs));
        graph.Message(12, ValueInfo(Probabilities, spec.Classes));
        graph.Message(12, ValueInfo(Logits, spec.Classes));

        var model = new Proto();
        model.Varint(1, IrVersion);
        model.String(2, "gpu");
        model.String(3, Checkpoint.EngineVersion);
        model.String(6, $"MLP {spec.Describe()} trained by gpu; input '{Input}' [N, {spec.Inputs}] raw pixel values 0..255 as float32");
        model.Message(7, graph);
        model.Message(8, o => { o.String(1, ""); o.Varint(2, Opset); });
        foreach (var (key, value) in Metadata(spec))
            model.Message(14, e => { e.String(1, key); e.String(2, value); });
        return model.ToArray();
    }

    /// <summary>What the model's metadata_props state.</summary>
    public static IReadOnlyList<(string Key, string Value)> Metadata(MlpSpec spec) =>
    [
        ("format", "gpu-model"),
        ("layers", spec.ToString()),
        ("activation", Words.Name(spec.Activation)),
        ("loss", Words.Name(spec.Loss)),
        ("input", $"{Input}: float32 [N, {spec.Inputs}], raw pixel values 0..255 (uint8 pixels as floats; a [0, 1] image times 255)"),
        ("preprocessing", $"inside the graph: {Input} * (1/255) - 0.5, as the engine trained (model.json: {SavedModel.Preprocessing})"),
        ("outputs", spec.Loss == LossKind.SigmoidSquaredError
            ? $"{Probabilities}: sigmoid outputs [N, {spec.Classes}] (not normalised); {Logits}: their pre-activations"
            : $"{Probabilities}: softmax [N, {spec.Classes}]; {Logits}: the output layer before softmax"),
        ("opset", Opset.ToString()),
    ];

    static Action<Proto> IntAttribute(string name, long value) => a => { a.String(1, name); a.Varint(3, (ulong)value); a.Varint(20, 2); };
    static Action<Proto> FloatAttribute(string name, float value) => a => { a.String(1, name); a.Float(2, value); a.Varint(20, 1); };

    /// <summary>A float32 tensor [N, width] with a dynamic batch dimension named N.</summary>
    static Action<Proto> ValueInfo(string name, int width) => v =>
    {
        v.String(1, name);
        v.Message(2, type => type.Message(1, tensor =>
        {
            tensor.Varint(1, 1);   // FLOAT
            tensor.Message(2, shape =>
            {
                shape.Message(1, d => d.String(2, "N"));
                shape.Message(1, d => d.Varint(1, (ulong)width));
            });
        }));
    };

    /// <summary>The protobuf wire format, the four field kinds ONNX needs: varint, 32-bit float, length-delimited bytes and nested messages.</summary>
    sealed class Proto
    {
        readonly MemoryStream s = new();

        public byte[] ToArray() => s.ToArray();

        void Key(int field, int wireType) => Raw((ulong)field << 3 | (uint)wireType);

        void Raw(ulong v)
        {
            while (v >= 0x80) { s.WriteByte((byte)(v | 0x80)); v >>= 7; }
            s.WriteByte((byte)v);
        }

        public void Varint(int field, ulong value) { Key(field, 0); Raw(value); }

        public void Float(int field, float value)
        {
            Key(field, 5);
            Span<byte> b = stackalloc byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(b, value);
            s.Write(b);
        }

        public void Bytes(int field, byte[] value) { Key(field, 2); Raw((ulong)value.Length); s.Write(value); }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public void Message(int field, Proto inner) => Bytes(field, inner.ToArray());

        public void Message(int field, Action<Proto> build)
        {
            var inner = new Proto();
            build(inner);
            Message(field, inner);
        }
    }
}
