using Gpu.Engine;
using Gpu.Engine.Inference;
using Gpu.Engine.Settings;
using CommandLine;

namespace Gpu.Cli;

[Verb("export", HelpText = "Write a trained model for other tools: ONNX (a graph with the preprocessing inside: raw pixels 0..255 in, probabilities and logits out) or safetensors (the tensors of a PyTorch Sequential of Linear layers, with the spec in its metadata).")]
internal sealed class ExportVerb : ModelVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Option("format", Required = true, HelpText = "onnx or safetensors.")]
    public string Format { get; set; } = "";

    [Option("output", HelpText = "The file to write (default: model.onnx or model.safetensors in the model folder).")]
    public string? Output { get; set; }

    public int Execute(TextWriter stdout)
    {
        ExportFormat format;
        try { format = Words.Parse<ExportFormat>(Format); }
        catch (FormatException) { throw new UserError($"--format {Format}: give {Words.List<ExportFormat>()}"); }
        var model = ReadModel(stdout);
        stdout.WriteLine(ModelExport.Write(Output ?? ModelExport.DefaultPath(model.Folder, format), format, model.Spec, model.Parameters));
        return 0;
    }
}
