using Gpu.Engine.Inference;
using Gpu.Engine.Runs;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("export", HelpText = "Write a trained model for other tools: ONNX (a graph with the preprocessing inside: raw pixels 0..255 in, probabilities and logits out) or safetensors (the tensors of a PyTorch Sequential of Linear layers, with the spec in its metadata).")]
public sealed class ExportVerb : ModelVerb
{
    [Option("format", Required = true, HelpText = "onnx or safetensors.")]
    public string Format { get; set; } = "";

    [Option("output", HelpText = "The file to write (default: model.onnx or model.safetensors in the model folder).")]
    public string? Output { get; set; }

    public int Execute(TextWriter stdout)
    {
        string format = Format.Trim().ToLowerInvariant();
        if (format is not ("onnx" or "safetensors")) throw new UserError($"--format {Format}: give onnx or safetensors");
        var model = ReadModel(stdout);
        var spec = model.Spec;
        string path = Output ?? Path.Combine(model.Folder, format == "onnx" ? "model.onnx" : "model" + SafeTensors.Extension);
        AtomicFile.EnsureFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
        if (format == "onnx")
        {
            var bytes = OnnxModel.Encode(spec, model.Parameters);
            AtomicFile.Write(path, tmp => File.WriteAllBytes(tmp, bytes));
            stdout.WriteLine($"wrote {path}: ONNX opset {OnnxModel.Opset}, input '{OnnxModel.Input}' float32 [N, {spec.Inputs}] (raw pixel values 0..255; " +
                $"x / 255 - 0.5 is inside the graph), outputs '{OnnxModel.Probabilities}' and '{OnnxModel.Logits}' [N, {spec.Classes}]; {bytes.Length:N0} bytes");
        }
        else
        {
            ModelWeights.WriteSafeTensors(path, spec, model.Parameters);
            stdout.WriteLine($"wrote {path}: the tensors of {ModelWeights.SequentialText(spec)} (0.weight [{spec.Out(0)}, {spec.In(0)}], 0.bias, ...), float32, " +
                "the spec in __metadata__; inputs as the engine trained: pixels / 255 - 0.5");
        }
        return 0;
    }
}
