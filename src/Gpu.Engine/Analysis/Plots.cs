using Gpu.Engine.Training;
using ScottPlot;

namespace Gpu.Engine.Analysis;

/// <summary>The pictures runs write (ScottPlot, PNG). Each is written atomically.</summary>
public static class Plots
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

    /// <summary>
    /// <c>landscape.png</c>: the training loss over the PCA plane as a heat map with contour lines
    /// (colours and contour levels on a log scale when the loss spans more than a factor of 3), and the SGD path over it
    /// as a line with a marker per recorded point, its start and end marked.
    /// </summary>
    public static void Landscape(LandscapeResult r, string path, string title)
    {
        int ga = r.A.Length, gb = r.B.Length;
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        foreach (var v in r.Loss) if (double.IsFinite(v)) { min = Math.Min(min, v); max = Math.Max(max, v); }
        bool log = min > 0 && max / min > 3;
        double Shade(double loss) => !double.IsFinite(loss) ? double.NaN : log ? Math.Log10(loss) : loss;

        var plot = new Plot();
        var cells = new double[gb, ga];   // row 0 is drawn at the top: the largest b
        var surface = new Coordinates3d[gb, ga];
        for (int i = 0; i < ga; i++)
            for (int j = 0; j < gb; j++)
            {
                cells[gb - 1 - j, i] = Shade(r.Loss[i, j]);
                surface[j, i] = new Coordinates3d(r.A[i], r.B[j], Shade(r.Loss[i, j]));
            }
        var heat = plot.Add.Heatmap(cells);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        heat.Smooth = true;
        heat.Position = new CoordinateRect(r.A[0], r.A[^1], r.B[0], r.B[^1]);   // cell centres; the picture extends half a cell further
        var contours = plot.Add.ContourLines(surface, 12);
        contours.LineColor = Colors.White.WithAlpha(0.45);
        contours.LineWidth = 1;
        contours.LabelStyle.IsVisible = false;
        var bar = plot.Add.ColorBar(heat);
        bar.Label = log ? "training loss (log scale)" : "training loss";
        if (log)
        {
            var ticks = new ScottPlot.TickGenerators.NumericManual();
            foreach (var v in LogTicks(min, max)) ticks.AddMajor(Math.Log10(v), v.ToString("G3", System.Globalization.CultureInfo.InvariantCulture));
            bar.Axis.TickGenerator = ticks;
        }

        double[] pa = r.Path.Select(p => p.A).ToArray(), pb = r.Path.Select(p => p.B).ToArray();
        var line = plot.Add.Scatter(pa, pb);
        line.Color = Colors.White;
        line.LineWidth = 2;
        line.MarkerSize = 5;
        line.MarkerShape = MarkerShape.FilledCircle;
        line.LegendText = $"SGD path (every {r.RecordEvery} steps)";
        var start = plot.Add.Marker(pa[0], pb[0], MarkerShape.FilledCircle, 14, Colors.OrangeRed);
        start.LegendText = $"start (step 0, loss {r.Path[0].Loss:G3})";
        var end = plot.Add.Marker(pa[^1], pb[^1], MarkerShape.FilledDiamond, 14, Colors.Magenta);
        end.LegendText = $"end (step {r.Path[^1].Step}, loss {r.Path[^1].Loss:G3})";

        plot.XLabel($"PC1 ({100 * r.Plane.Explained1:F1}% of variance)");
        plot.YLabel($"PC2 ({100 * r.Plane.Explained2:F1}% of variance)");
        plot.Title(title, size: 13);
        plot.ShowLegend(Alignment.UpperRight);
        plot.Axes.SetLimits(r.A[0] - (r.A[1] - r.A[0]) / 2, r.A[^1] + (r.A[1] - r.A[0]) / 2, r.B[0] - (r.B[1] - r.B[0]) / 2, r.B[^1] + (r.B[1] - r.B[0]) / 2);
        Save(path, tmp => plot.SavePng(tmp, 900, 750));
    }

    /// <summary>1, 1.5, 2, 3, 5 and 7 times powers of 10 inside [min, max] (at least the two ends).</summary>
    static List<double> LogTicks(double min, double max)
    {
        var ticks = new List<double>();
        for (double decade = Math.Pow(10, Math.Floor(Math.Log10(min))); decade <= max; decade *= 10)
            foreach (var m in new[] { 1.0, 1.5, 2.0, 3.0, 5.0, 7.0 })
                if (m * decade >= min && m * decade <= max) ticks.Add(m * decade);
        if (ticks.Count < 2) ticks = [min, max];
        return ticks;
    }

    /// <summary>Renders into a temporary file in the same folder and renames it over <paramref name="path"/>.</summary>
    public static void Save(string path, Action<string> render) =>
        AtomicFile.Write(path, tmp => { render(tmp + ".png"); File.Move(tmp + ".png", tmp, overwrite: true); });
}
