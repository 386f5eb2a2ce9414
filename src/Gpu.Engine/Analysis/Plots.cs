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

    /// <summary>Renders into a temporary file in the same folder and renames it over <paramref name="path"/>.</summary>
    public static void Save(string path, Action<string> render) =>
        AtomicFile.Write(path, tmp => { render(tmp + ".png"); File.Move(tmp + ".png", tmp, overwrite: true); });
}
