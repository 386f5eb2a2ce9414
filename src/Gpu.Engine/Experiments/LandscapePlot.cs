using Gpu.Engine.Analysis;
using ScottPlot;

namespace Gpu.Engine.Experiments;

/// <summary>The picture of a <see cref="LossLandscape"/> run.</summary>
internal static class LandscapePlot
{
    /// <summary>
    /// <c>landscape.png</c>: the training loss over the PCA plane as a heat map with contour lines
    /// (colours and contour levels on a log scale when the loss spans more than a factor of 3), and the SGD path over it
    /// as a line with a marker per recorded point, its start and end marked.
    /// </summary>
    public static void Draw(LandscapeResult r, string path, string title)
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
        Plots.Save(path, tmp => plot.SavePng(tmp, 900, 750));
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
}
