using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("weights", HelpText = "Draw a trained model's first-layer weights: each unit's weight row as a square tile (28 x 28 for MNIST-style images), in a grid, as a PNG.")]
internal sealed class WeightsVerb : ModelVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Flag(nameof(Flags.WeightsOutput))]
    public string? Output { get; set; }

    [Flag(nameof(Flags.Columns))]
    public int Columns { get; set; }

    [Flag(nameof(Flags.Count))]
    public int Count { get; set; }

    public int Execute(TextWriter stdout)
    {
        var network = ReadModel(stdout);
        stdout.WriteLine(network.DrawWeights(Output, Count, Columns));
        return 0;
    }
}
