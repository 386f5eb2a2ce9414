using Gpu.Engine;
using Gpu.Engine.Settings;
using CommandLine;

namespace Gpu.Cli;

[Verb("export", HelpText = "Write a trained model for other tools: ONNX (a graph with the preprocessing inside: raw pixels 0..255 in, probabilities and logits out) or safetensors (the tensors of a PyTorch Sequential of Linear layers, with the spec in its metadata).")]
internal sealed class ExportVerb : ModelVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Flag(nameof(Flags.Format), Required = true)]
    public string Format { get; set; } = "";

    [Flag(nameof(Flags.ExportOutput))]
    public string? Output { get; set; }

    public int Execute(TextWriter stdout)
    {
        ExportFormat format;
        try { format = Words.Parse<ExportFormat>(Format); }
        catch (FormatException) { throw new UserError($"--format {Format}: give {Words.List<ExportFormat>()}"); }
        var network = ReadModel(stdout);
        stdout.WriteLine(Output == null ? network.Export(format) : network.Export(Output, format));
        return 0;
    }
}
