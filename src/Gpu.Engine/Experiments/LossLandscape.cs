using Gpu.Engine.Runs;
using System.Globalization;
using System.Text;
using Gpu.Engine.Analysis;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Engine.Experiments;

/// <summary>One recorded point of the SGD path: global step, coordinates in the PCA plane, training loss at the recorded parameters themselves.</summary>
internal sealed record PathPoint(long Step, double A, double B, double Loss);

/// <summary>
/// A loss landscape: the training loss on a G x G grid of the plane through the final parameters
/// spanned by the trajectory's first two principal components (Loss[i, j] at A[i], B[j]), and the path.
/// </summary>
internal sealed record LandscapeResult(MlpSpec Spec, PcaPlane Plane, double[] A, double[] B, double[,] Loss, IReadOnlyList<PathPoint> Path,
    int RecordEvery, int EvalImages, TrainResult Training)
{
    /// <summary>
    /// landscape.csv: <c>kind,step,a,b,loss</c>; kind <c>grid</c> for the G x G points (no step), then
    /// <c>path</c> for the recorded parameters in step order (the last is the final model at (0, 0)).
    /// </summary>
    public void WriteCsv(string path)
    {
        var sb = new StringBuilder("kind,step,a,b,loss\n");
        for (int i = 0; i < A.Length; i++)
            for (int j = 0; j < B.Length; j++)
                sb.Append(CultureInfo.InvariantCulture, $"grid,,{A[i]:R},{B[j]:R},{Loss[i, j]:R}\n");
        foreach (var p in Path)
            sb.Append(CultureInfo.InvariantCulture, $"path,{p.Step},{p.A:R},{p.B:R},{p.Loss:R}\n");
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}

/// <summary>
/// Li et al. 2018's picture of training: train while recording the flat parameter vector every N
/// steps, take the first two principal components of the trajectory (<see cref="TrajectoryPca"/>),
/// and evaluate the training loss on a grid of the plane they span through the final parameters,
/// on the device: one parameter upload and one evaluation pass over the evaluation images per point.
/// </summary>
internal static class LossLandscape
{
    /// <summary>Each side of the grid extends past the path by this share of the path's extent.</summary>
    public const double Margin = 0.3;

    /// <summary>About 10 recorded points per epoch.</summary>
    public static int DefaultRecordEvery(int trainCount, int batchSize) => Math.Max(1, new MinibatchScheduler(trainCount, batchSize, 1).StepsPerEpoch / 10);

    /// <summary>
    /// A whole landscape run as <c>gpu landscape</c> makes it: the output folder taken (one writer), the data read, the lines that
    /// say what runs (through <paramref name="say"/>), the training and the grid, then landscape.csv and landscape.png written.
    /// Returns the result and the folder.
    /// </summary>
    public static (LandscapeResult Result, string Folder) Make(ComputeDevice device, DataSource source, int limit, DataPair? loaded, TrainOptions options,
        string output, int recordEvery, int grid, int evalImages, Action<string> say, Action<StepProgress>? onStep = null, Action<int, int>? gridProgress = null)
    {
        options = options with { ValFraction = 0 };
        options.Validate();
        if (recordEvery < 0) throw new UserError($"--record-every {recordEvery}: give a whole number of steps >= 1, or 0 for about 10 points per epoch");
        if (grid < 2) throw new UserError($"--grid {grid}: give a whole number >= 2, e.g. 50");
        if (evalImages < 1) throw new UserError($"--eval-images {evalImages}: give a whole number >= 1, e.g. 2000");
        using var folder = RunFolder.Take(output, "gpu landscape");   // one writer per folder
        var data = (loaded ?? source.Load()).Limited(limit, note => say($"note: {note}"));
        say($"device: {device.Describe()}");
        var spec = MlpSpec.FromHidden(data.Train.Features, options.Hidden, data.Train.Classes, options.Activation, options.Loss);
        say($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters)");
        say($"training: {TrainingRun.Describe(options)}");
        int every = recordEvery > 0 ? recordEvery : DefaultRecordEvery(data.Train.Count, options.BatchSize);
        int shownImages = Math.Min(evalImages, data.Train.Count);
        say($"data: {data.Folder}, {data.Train.Count:N0} training images (no validation split); recording the parameters {(every == 1 ? "after every step" : $"every {every} steps")}; " +
            $"loss on a {grid} x {grid} grid over the first {shownImages:N0} training images");

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var r = Run(device, data, options, every, grid, evalImages,
            onEpoch: e => say($"epoch {e.Epoch,3}/{options.Epochs} loss {e.TrainLoss:F3} acc {e.TrainAccuracy:F3} | {e.TrainSeconds:F1}s"),
            onStep: onStep, gridProgress: gridProgress);
        var end = r.Path[^1];
        say($"trajectory: {r.Path.Count} points (steps 0 to {end.Step}); PC1 explains {100 * r.Plane.Explained1:F1}% of the variance, PC2 {100 * r.Plane.Explained2:F1}%");
        say($"path loss on the {r.EvalImages:N0} images: start {r.Path[0].Loss:F4}, end {end.Loss:F4}; " +
            $"grid loss from {Min(r.Loss):F4} to {Max(r.Loss):F4} over PC1 [{r.A[0]:G3}, {r.A[^1]:G3}] x PC2 [{r.B[0]:G3}, {r.B[^1]:G3}]");
        say($"test accuracy of the trained network {r.Training.Test.Accuracy:F4}; {clock.Elapsed.TotalSeconds:F1} s in all");
        r.WriteCsv(Path.Combine(folder.Folder, "landscape.csv"));
        LandscapePlot.Draw(r, Path.Combine(folder.Folder, "landscape.png"),
            $"training loss of {spec} ({data.Train.Name}, {r.EvalImages:N0} images), {options.Epochs} epochs, seed {options.Seed}");
        say($"wrote landscape.csv and landscape.png in {folder.Folder}");
        return (r, folder.Folder);
    }

    static double Min(double[,] a) => a.Cast<double>().Where(double.IsFinite).DefaultIfEmpty(double.NaN).Min();
    static double Max(double[,] a) => a.Cast<double>().Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();

    /// <summary>
    /// Trains with <paramref name="o"/> on <paramref name="data"/> (every training image: no validation
    /// split), recording the parameters every <paramref name="recordEvery"/> steps (0: about 10 per
    /// epoch) plus the start and the end, then builds the landscape over the first <paramref name="evalImages"/>
    /// training images on a <paramref name="grid"/> x <paramref name="grid"/> grid.
    /// <paramref name="gridProgress"/> gets (points done, total). A device failure, in the training or in
    /// the evaluations, is a one-line <see cref="UserError"/> (exit code 4) ending with <paramref name="faultAdvice"/>.
    /// </summary>
    public static LandscapeResult Run(ComputeDevice device, DataPair data, TrainOptions o, int recordEvery, int grid, int evalImages,
        Action<EpochStats>? onEpoch = null, Action<StepProgress>? onStep = null, Action<int, int>? gridProgress = null,
        string faultAdvice = TrainControl.DefaultFaultAdvice)
    {
        if (grid < 2) throw new UserError($"--grid {grid}: give a whole number >= 2, e.g. 50");
        if (evalImages < 1) throw new UserError($"--eval-images {evalImages}: give a whole number >= 1");
        if (recordEvery < 0) throw new UserError($"--record-every {recordEvery}: give a whole number of steps >= 1 (0: about 10 points per epoch)");
        o = o with { ValFraction = 0 };
        o.Validate();
        if (recordEvery == 0) recordEvery = DefaultRecordEvery(data.Train.Count, o.BatchSize);
        long totalSteps = (long)new MinibatchScheduler(data.Train.Count, o.BatchSize, o.Seed).StepsPerEpoch * o.Epochs;
        long points = totalSteps / recordEvery + 2;
        if (points > TrajectoryPca.MaxVectors)
            throw new UserError($"--record-every {recordEvery} records {points} points over {totalSteps} steps; at most {TrajectoryPca.MaxVectors} are supported: give --record-every {totalSteps / (TrajectoryPca.MaxVectors - 2) + 1} or more");

        var recorded = new List<(long Step, float[] Parameters)>();
        var control = new TrainControl { OnStep = onStep, ParametersEvery = recordEvery, OnParameters = (step, p) => recorded.Add((step, p)), FaultAdvice = faultAdvice };
        var training = Trainer.Run(device, data, o, onEpoch, control);
        if (recorded[^1].Step != totalSteps) recorded.Add((totalSteps, training.Parameters));
        var final = recorded[^1].Parameters;

        var plane = TrajectoryPca.Fit(recorded.Select(r => r.Parameters).ToList(), final);
        double[] a = Axis(plane.A, grid), b = Axis(plane.B, grid);
        var evalSet = data.Train.Take(evalImages);
        string doing = "while loading the evaluation images";
        try
        {
            using var eval = new Evaluator(device, training.Spec, evalSet, o.EvalBatchSize);
            var path = new List<PathPoint>(recorded.Count);
            for (int i = 0; i < recorded.Count; i++)
            {
                doing = $"while evaluating the loss at recorded point {i + 1} of {recorded.Count}";
                path.Add(new PathPoint(recorded[i].Step, plane.A[i], plane.B[i], eval.Loss(recorded[i].Parameters)));
            }
            var loss = new double[grid, grid];
            var theta = new float[final.Length];
            for (int i = 0; i < grid; i++)
                for (int j = 0; j < grid; j++)
                {
                    doing = $"while evaluating the loss at grid point {i * grid + j + 1} of {grid * grid}";
                    double ai = a[i], bj = b[j];
                    Parallel.For(0, final.Length, k => theta[k] = (float)(final[k] + ai * plane.Direction1[k] + bj * plane.Direction2[k]));
                    loss[i, j] = eval.Loss(theta);
                    gridProgress?.Invoke(i * grid + j + 1, grid * grid);
                }
            return new LandscapeResult(training.Spec, plane, a, b, loss, path, recordEvery, evalSet.Count, training);
        }
        catch (Exception e) when (e is not (UserError or ArgumentException or OperationCanceledException))
        {
            throw device.Fault(doing, e, faultAdvice);
        }
    }

    /// <summary>G evenly spaced values covering <paramref name="coords"/> with <see cref="Margin"/> on each side.</summary>
    static double[] Axis(double[] coords, int g)
    {
        double lo = coords.Min(), hi = coords.Max(), span = hi - lo;
        if (!(span > 0)) span = Math.Max(1e-3, Math.Abs(lo));
        lo -= Margin * span;
        hi += Margin * span;
        return Enumerable.Range(0, g).Select(i => lo + (hi - lo) * i / (g - 1)).ToArray();
    }

    /// <summary>The mean training loss (no L2 term) of any parameter vector over a fixed set of images resident on the device.</summary>
    sealed class Evaluator(ComputeDevice device, MlpSpec spec, Dataset images, int batch) : IDisposable
    {
        readonly DeviceMlp model = new(KernelSet.For(device), spec, Math.Min(batch, images.Count));
        readonly DeviceDataset data = new(KernelSet.For(device), images, Math.Min(batch, images.Count));

        public double Loss(float[] parameters)
        {
            model.SetParameters(parameters);
            return Trainer.Evaluate(model, data, model.MaxBatch).Loss;
        }

        public void Dispose() { model.Dispose(); data.Dispose(); }
    }
}
