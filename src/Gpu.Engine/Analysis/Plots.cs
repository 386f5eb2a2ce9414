using Gpu.Engine.Training;
using ScottPlot;

namespace Gpu.Engine.Analysis;

/// <summary>The pictures runs write (ScottPlot, PNG). Each is written atomically.</summary>
internal static class Plots
{
    /// <summary>
    /// <c>curves.png</c>: loss (left) and accuracy (right) per epoch, training and validation (when
    /// there is a validation split). Training figures are the epoch's running means, as history.csv has them.
    /// </summary>
    public static void TrainingCurves(IReadOnlyList<EpochStats> history, string path, string title)
    {
        double[] epochs = history.Select(e => (double)e.Epoch).ToArray();
        bool hasVal = history.Any(e => e.ValLoss.HasValue);
        var multi = new Multiplot();
        multi.AddPlots(2);
        multi.Layout = new ScottPlot.MultiplotLayouts.Columns();
        Panel(multi.GetPlot(0), "loss", epochs, history.Select(e => e.TrainLoss), hasVal ? history.Select(e => e.ValLoss ?? double.NaN) : null);
        Panel(multi.GetPlot(1), "accuracy", epochs, history.Select(e => e.TrainAccuracy), hasVal ? history.Select(e => e.ValAccuracy ?? double.NaN) : null);
        multi.GetPlot(0).Title(title, size: 13);
        Save(path, tmp => multi.SavePng(tmp, 1200, 450));
    }

    static void Panel(Plot plot, string what, double[] epochs, IEnumerable<double> train, IEnumerable<double>? val)
    {
        var t = plot.Add.Scatter(epochs, train.ToArray());
        t.LegendText = $"train {what}";
        t.LineWidth = 2;
        if (val != null)
        {
            var v = plot.Add.Scatter(epochs, val.ToArray());
            v.LegendText = $"validation {what}";
            v.LineWidth = 2;
        }
        plot.XLabel("epoch");
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        plot.YLabel(what);
        plot.ShowLegend(what == "loss" ? Alignment.UpperRight : Alignment.LowerRight);
    }

    /// <summary>
    /// Draws the first layer's weights of <paramref name="spec"/>'s network into the PNG <paramref name="path"/> (<c>gpu weights</c>):
    /// the first <paramref name="count"/> units' rows (0: all) as square tiles, <paramref name="columns"/> per row (0: a square-ish
    /// grid), each scaled to its own max |w|. Returns the line saying what was written.
    /// </summary>
    public static string DrawFirstLayer(Gpu.Engine.Model.MlpSpec spec, float[] parameters, string path, int count, int columns)
    {
        int inputs = spec.In(0), units = spec.Out(0);
        int width = (int)Math.Round(Math.Sqrt(inputs));
        if (width * width != inputs)
            throw new UserError($"the model takes {inputs} inputs, not a square number of pixels; weights draws square images only");
        if (count < 0 || count > units) throw new UserError($"--count {count}: the first layer has {units} units; give 1 to {units} (0: all)");
        if (columns < 0) throw new UserError($"--columns {columns}: give a whole number >= 1 (0: automatic)");
        if (count == 0) count = units;
        columns = Math.Min(count, columns == 0 ? (int)Math.Ceiling(Math.Sqrt(count)) : columns);
        AtomicFile.EnsureFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);

        var weights = parameters[spec.WeightOffset(0)..(spec.WeightOffset(0) + count * inputs)];
        var mosaic = WeightMosaic(weights, count, width, columns);
        string layer = spec.Layers == 1 ? "output layer (one tile per class)" : "layer 1";
        WeightTiles(mosaic, path,
            $"{spec}: {layer} weights, {count} of {units} units as {width} x {width} tiles\neach tile scaled to its own max |w|: black -max, grey 0, white +max");
        var maxima = Enumerable.Range(0, count).Select(u => weights.AsSpan(u * inputs, inputs).ToArray().Max(Math.Abs)).ToArray();
        return $"wrote {path}: {count} tiles of {width} x {width} in {columns} columns, " +
            $"each scaled to its own max |w| ({maxima.Min():G3} to {maxima.Max():G3}; black -max, grey 0, white +max)";
    }

    /// <summary>
    /// The first <paramref name="count"/> rows of a weight matrix whose rows are <paramref name="width"/> x
    /// <paramref name="width"/> images, as tiles laid out left to right and top to bottom, <paramref name="columns"/>
    /// per row, with one NaN cell between tiles. Each tile is divided by its own largest |w|, so it spans at
    /// most [-1, 1] with 0 in the middle; an all-zero row stays 0.
    /// </summary>
    public static double[,] WeightMosaic(float[] weights, int count, int width, int columns)
    {
        int pixels = width * width, tileRows = (count + columns - 1) / columns;
        if ((long)count * pixels > weights.Length) throw new ArgumentException($"{weights.Length} weights hold fewer than {count} rows of {pixels}");
        var m = new double[tileRows * (width + 1) - 1, columns * (width + 1) - 1];
        for (int r = 0; r < m.GetLength(0); r++)
            for (int c = 0; c < m.GetLength(1); c++) m[r, c] = double.NaN;
        for (int t = 0; t < count; t++)
        {
            var row = weights.AsSpan(t * pixels, pixels);
            double max = 0;
            foreach (var w in row) max = Math.Max(max, Math.Abs(w));
            int top = t / columns * (width + 1), left = t % columns * (width + 1);
            for (int i = 0; i < pixels; i++) m[top + i / width, left + i % width] = max > 0 ? row[i] / max : 0;
        }
        return m;
    }

    /// <summary>
    /// <c>weights.png</c>: a <see cref="WeightMosaic"/> as one grey heat map (black -1, grey 0, white +1 of
    /// each tile's own range), gaps between tiles in blue, with a colour bar.
    /// </summary>
    public static void WeightTiles(double[,] mosaic, string path, string title)
    {
        var plot = new Plot();
        var map = plot.Add.Heatmap(mosaic);
        map.Colormap = new ScottPlot.Colormaps.Grayscale();
        map.ManualRange = new ScottPlot.Range(-1, 1);
        map.NaNCellColor = Color.FromHex("#5b7fb3");
        var bar = plot.Add.ColorBar(map);
        bar.Label = "w / max |w| of its tile";
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        foreach (var t in new[] { -1, -0.5, 0, 0.5, 1 }) ticks.AddMajor(t, t.ToString("0.#", System.Globalization.CultureInfo.InvariantCulture));
        bar.Axis.TickGenerator = ticks;
        plot.HideAxesAndGrid();
        plot.Axes.SquareUnits();
        plot.Axes.TightMargins();
        plot.Title(title, size: 14);
        int rows = mosaic.GetLength(0), cols = mosaic.GetLength(1);
        int cell = Math.Clamp(1200 / Math.Max(rows, cols), 2, 12);
        Save(path, tmp => plot.SavePng(tmp, Math.Max(cols * cell, 720) + 160, Math.Max(rows * cell, 300) + 100));
    }

    /// <summary>Renders into a temporary file in the same folder and renames it over <paramref name="path"/>.</summary>
    public static void Save(string path, Action<string> render) =>
        AtomicFile.Write(path, tmp => { render(tmp + ".png"); File.Move(tmp + ".png", tmp, overwrite: true); });
}
