using Gpu.Engine.Analysis;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("weights", HelpText = "Draw a trained model's first-layer weights: each unit's weight row as a square tile (28 x 28 for MNIST-style images), in a grid, as a PNG.")]
internal sealed class WeightsVerb : ModelVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Option("output", HelpText = "The PNG to write (default: weights.png in the model folder).")]
    public string? Output { get; set; }

    [Option("columns", Default = 0, HelpText = "Tiles per row (0: a square-ish grid).")]
    public int Columns { get; set; }

    [Option("count", Default = 0, HelpText = "Draw the first N units' rows (0: all units of the first layer).")]
    public int Count { get; set; }

    public int Execute(TextWriter stdout)
    {
        var model = ReadModel(stdout);
        var spec = model.Spec;
        int inputs = spec.In(0), units = spec.Out(0);
        int width = (int)Math.Round(Math.Sqrt(inputs));
        if (width * width != inputs)
            throw new UserError($"the model takes {inputs} inputs, not a square number of pixels; weights draws square images only");
        if (Count < 0 || Count > units) throw new UserError($"--count {Count}: the first layer has {units} units; give 1 to {units} (0: all)");
        if (Columns < 0) throw new UserError($"--columns {Columns}: give a whole number >= 1 (0: automatic)");
        int count = Count == 0 ? units : Count;
        int columns = Math.Min(count, Columns == 0 ? (int)Math.Ceiling(Math.Sqrt(count)) : Columns);
        string path = Output ?? Path.Combine(model.Folder, "weights.png");
        AtomicFile.EnsureFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);

        var weights = model.Parameters[spec.WeightOffset(0)..(spec.WeightOffset(0) + count * inputs)];
        var mosaic = Plots.WeightMosaic(weights, count, width, columns);
        string layer = spec.Layers == 1 ? "output layer (one tile per class)" : "layer 1";
        Plots.WeightTiles(mosaic, path,
            $"{spec}: {layer} weights, {count} of {units} units as {width} x {width} tiles\neach tile scaled to its own max |w|: black -max, grey 0, white +max");
        var maxima = Enumerable.Range(0, count).Select(u => weights.AsSpan(u * inputs, inputs).ToArray().Max(Math.Abs)).ToArray();
        stdout.WriteLine($"wrote {path}: {count} tiles of {width} x {width} in {columns} columns, " +
            $"each scaled to its own max |w| ({maxima.Min():G3} to {maxima.Max():G3}; black -max, grey 0, white +max)");
        return 0;
    }
}
