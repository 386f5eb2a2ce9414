using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using ILGPU.Runtime;

namespace Gpu.Engine.Inference;

/// <summary>
/// A trained model's outputs over a set of images, [Count, Classes] row-major: logits for a softmax-ce
/// model, sigmoid outputs for a sigmoid-sse one. <see cref="Loss"/> is the mean cost per image as
/// training reports it (from the same device cost kernels), when labels were given.
/// </summary>
internal sealed record InferenceResult(MlpSpec Spec, float[] Outputs, int Count, double? Loss)
{
    /// <summary>The predicted class of a row: the first largest output, as the device's cost kernels count it.</summary>
    public int Predicted(int row)
    {
        int c = Spec.Classes, arg = 0;
        var o = Outputs.AsSpan(row * c, c);
        for (int j = 1; j < c; j++) if (o[j] > o[arg]) arg = j;
        return arg;
    }

    /// <summary>Softmax of the logits for a softmax-ce model; the sigmoid outputs as they are for a sigmoid-sse model.</summary>
    public double[] Probabilities(int row)
    {
        int c = Spec.Classes;
        var o = Outputs.AsSpan(row * c, c);
        var p = new double[c];
        if (Spec.Loss == LossKind.SigmoidSquaredError)
        {
            for (int j = 0; j < c; j++) p[j] = o[j];
            return p;
        }
        double max = o[Predicted(row)], sum = 0;
        for (int j = 0; j < c; j++) sum += p[j] = Math.Exp(o[j] - max);
        for (int j = 0; j < c; j++) p[j] /= sum;
        return p;
    }

    /// <summary>Counts per (true class, predicted class) for the given labels.</summary>
    public ClassReport Report(int[] labels)
    {
        if (labels.Length != Count) throw new ArgumentException($"{labels.Length} labels for {Count} rows");
        var m = new int[Spec.Classes, Spec.Classes];
        for (int i = 0; i < Count; i++) m[labels[i], Predicted(i)]++;
        return new ClassReport(m);
    }
}

/// <summary>A confusion matrix: <see cref="Confusion"/>[true class, predicted class] = number of images.</summary>
internal sealed record ClassReport(int[,] Confusion)
{
    public int Classes => Confusion.GetLength(0);
    public int Count(int c) => Enumerable.Range(0, Classes).Sum(p => Confusion[c, p]);
    public int Correct(int c) => Confusion[c, c];
    /// <summary>The fraction of class <paramref name="c"/>'s images predicted as c; null when it has none.</summary>
    public double? Accuracy(int c) => Count(c) == 0 ? null : (double)Correct(c) / Count(c);
    public int Total => Enumerable.Range(0, Classes).Sum(Count);
    public double OverallAccuracy => (double)Enumerable.Range(0, Classes).Sum(Correct) / Total;
}

/// <summary>Runs a trained model forward over images on a device, in batches.</summary>
internal static class Predictor
{
    /// <summary>
    /// The outputs of the model (<paramref name="spec"/>, <paramref name="parameters"/>) for every image in
    /// <paramref name="pixels"/> (uint8, [count, spec.Inputs], normalised as in training), with the mean loss when
    /// <paramref name="labels"/> are given. A device failure is a one-line <see cref="UserError"/> (exit code 4)
    /// ending with <paramref name="faultAdvice"/>.
    /// </summary>
    public static InferenceResult Run(ComputeDevice device, MlpSpec spec, float[] parameters, byte[] pixels, int[]? labels, int batch,
        string faultAdvice = TrainControl.DefaultFaultAdvice)
    {
        int features = spec.Inputs, count = pixels.Length / features;
        if (pixels.Length != (long)count * features || count == 0) throw new ArgumentException($"{pixels.Length} pixels are not whole images of {features}");
        if (labels != null && labels.Length != count) throw new ArgumentException($"{labels.Length} labels for {count} images");
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), $"batch of {batch} rows");
        batch = Math.Min(batch, count);
        try { return Run(KernelSet.For(device), spec, parameters, pixels, labels, batch, count); }
        catch (Exception e) when (e is not (UserError or ArgumentException))
        {
            throw device.Fault("while running the model", e, faultAdvice);
        }
    }

    static InferenceResult Run(KernelSet kernels, MlpSpec spec, float[] parameters, byte[] pixels, int[]? labels, int batch, int count)
    {
        int features = spec.Inputs, classes = spec.Classes;
        using var model = new DeviceMlp(kernels, spec, batch);
        model.SetParameters(parameters);
        using var x = kernels.Accelerator.Allocate1D<float>((long)batch * features);
        using var y = kernels.Accelerator.Allocate1D<int>(batch);
        var xHost = new float[(long)batch * features];
        var outputs = new float[(long)count * classes];
        model.TakeMetrics();
        for (int start = 0; start < count; start += batch)
        {
            int rows = Math.Min(batch, count - start);
            for (long i = 0; i < (long)rows * features; i++) xHost[i] = Dataset.Normalize(pixels[(long)start * features + i]);
            x.View.AsContiguous().SubView(0, (long)rows * features).CopyFromCPU(kernels.Stream, xHost.AsSpan(0, rows * features));
            if (labels != null)
            {
                y.View.AsContiguous().SubView(0, rows).CopyFromCPU(kernels.Stream, labels.AsSpan(start, rows));
                model.Evaluate(x.View, y.View, rows, backward: false);
            }
            else model.Forward(x.View, rows);
            model.Outputs.SubView(0, (long)rows * classes).CopyToCPU(kernels.Stream, outputs.AsSpan(start * classes, rows * classes));
        }
        double? loss = labels == null ? null : model.TakeMetrics().LossSum / count;
        return new InferenceResult(spec, outputs, count, loss);
    }
}
