using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Inference;

/// <summary>A trained network written for other tools (<c>gpu export</c>, <c>Network.Export</c>): the one place that picks the writer and names the file.</summary>
internal static class ModelExport
{
    /// <summary>The file written when none is given: model.onnx or model.safetensors in the model's folder.</summary>
    public static string DefaultPath(string modelFolder, ExportFormat format) =>
        Path.Combine(modelFolder, format == ExportFormat.Onnx ? "model.onnx" : "model" + SafeTensors.Extension);

    /// <summary>Writes <paramref name="path"/> atomically (its folder created if missing) and returns the line saying what it holds.</summary>
    public static string Write(string path, ExportFormat format, MlpSpec spec, float[] parameters)
    {
        AtomicFile.EnsureFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (format == ExportFormat.Onnx)
        {
            var bytes = OnnxModel.Encode(spec, parameters);
            AtomicFile.Write(path, tmp => File.WriteAllBytes(tmp, bytes));
            return $"wrote {path}: ONNX opset {OnnxModel.Opset}, input '{OnnxModel.Input}' float32 [N, {spec.Inputs}] (raw pixel values 0..255; " +
                $"x / 255 - 0.5 is inside the graph), outputs '{OnnxModel.Probabilities}' and '{OnnxModel.Logits}' [N, {spec.Classes}]; {bytes.Length:N0} bytes";
        }
        ModelWeights.WriteSafeTensors(path, spec, parameters);
        return $"wrote {path}: the tensors of {ModelWeights.SequentialText(spec)} (0.weight [{spec.Out(0)}, {spec.In(0)}], 0.bias, ...), float32, " +
            "the spec in __metadata__; inputs as the engine trained: pixels / 255 - 0.5";
    }
}
