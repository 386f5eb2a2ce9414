using Gpu.Engine.Model;
using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Training;
using ILGPU.Runtime;

namespace Gpu.Engine.Analysis;

/// <summary>Where one entry of the flat parameter vector sits: layer (0-based), weight or bias, row and column (column 0 for a bias).</summary>
internal readonly record struct ParameterLocation(int Layer, bool IsWeight, int Row, int Col)
{
    public static ParameterLocation Of(MlpSpec spec, int index)
    {
        if (index < spec.WeightCount)
        {
            int l = spec.Layers - 1;
            while (spec.WeightOffset(l) > index) l--;
            int o = index - spec.WeightOffset(l);
            return new(l, true, o / spec.In(l), o % spec.In(l));
        }
        int b = spec.Layers - 1;
        while (spec.BiasOffset(b) > index) b--;
        return new(b, false, index - spec.BiasOffset(b), 0);
    }

    /// <summary>"layer 1 W[12, 345]" or "layer 3 b[7]": layers counted from 1 (layer 1 maps the inputs), rows and columns from 0 as in NumPy.</summary>
    public override string ToString() => IsWeight ? $"layer {Layer + 1} W[{Row}, {Col}]" : $"layer {Layer + 1} b[{Row}]";
}

/// <summary>
/// One checked parameter: the device's analytic gradient, the float64 central difference, their
/// element-wise relative error, and whether a kink (a ReLU or leaky ReLU switching) lies within
/// plus or minus epsilon, which makes the central difference itself wrong.
/// </summary>
internal sealed record CheckedParameter(int Index, ParameterLocation Where, double Analytic, double Numeric, double RelativeError, bool Kink);

/// <summary>
/// The outcome of a gradient check. <see cref="DifferenceNorm"/> is ||analytic - numeric|| (what
/// scipy.optimize.check_grad returns) and <see cref="RelativeError"/> is that over ||numeric||, both
/// over the checked parameters that are not at a kink. Losses are the data loss (no L2 term).
/// </summary>
internal sealed record GradientCheckResult(IReadOnlyList<CheckedParameter> Parameters, double DifferenceNorm, double NumericNorm,
    double DeviceLoss, double ReferenceLoss, int Examples, double Epsilon, double ElementFloor)
{
    /// <summary>||a - n|| / ||n||; infinite when the analytic gradient holds NaN or Inf, or when ||n|| is 0 and ||a - n|| is not.</summary>
    public double RelativeError => !double.IsFinite(DifferenceNorm) ? double.PositiveInfinity
        : NumericNorm > 0 ? DifferenceNorm / NumericNorm : DifferenceNorm == 0 ? 0 : double.PositiveInfinity;

    /// <summary>The parameter (not at a kink) with the largest element-wise relative error, or null when every one is at a kink.</summary>
    public CheckedParameter? Worst => Parameters.Where(p => !p.Kink).MaxBy(p => p.RelativeError);

    public int Kinks => Parameters.Count(p => p.Kink);
}

/// <summary>
/// Gradient checking in the manner of scipy.optimize.check_grad: the analytic gradient of the mean
/// data loss over a few examples, from the device kernels (forward and backward in float32), against
/// central finite differences of the independent float64 reference loss (<see cref="ReferenceMlp.Loss"/>),
/// on all parameters or on a seeded sample that covers every layer's weights and biases.
/// </summary>
internal static class GradientCheck
{
    /// <summary>
    /// The finite-difference step. In float64 the central difference's truncation error grows as eps^2
    /// and its rounding error as 1e-16 * |loss| / eps; eps = 1e-6 keeps both near 1e-10 for losses of order 1.
    /// </summary>
    public const double DefaultEpsilon = 1e-6;

    /// <summary>
    /// A parameter is "at a kink" when its second difference (f(p+e) - 2 f(p) + f(p-e)) / e, which is
    /// e * f'' (about 1e-6) where the loss is smooth, exceeds this fraction of the gradient scale: then
    /// a ReLU switched inside [p - e, p + e], and the central difference is off by up to half that amount.
    /// </summary>
    public const double KinkFraction = 1e-2;

    /// <summary>
    /// A seeded sample of <paramref name="count"/> parameter indices (ascending) that covers every
    /// layer's weights and biases: the count is shared equally among the 2 x layers groups (W and b of
    /// each layer), a group smaller than its share is taken whole and what it leaves goes to the others.
    /// A count at or above the parameter count gives every index.
    /// </summary>
    public static int[] Sample(MlpSpec spec, int count, ulong seed)
    {
        if (count >= spec.ParameterCount) return Enumerable.Range(0, spec.ParameterCount).ToArray();
        var groups = new List<(int Offset, int Size)>();
        for (int l = 0; l < spec.Layers; l++)
        {
            groups.Add((spec.WeightOffset(l), spec.Out(l) * spec.In(l)));
            groups.Add((spec.BiasOffset(l), spec.Out(l)));
        }
        var quota = new int[groups.Count];
        int left = count;
        var open = Enumerable.Range(0, groups.Count).ToList();
        while (left > 0 && open.Count > 0)
        {
            int share = Math.Max(1, left / open.Count);
            foreach (var g in open.ToArray())
            {
                int take = Math.Min(Math.Min(share, groups[g].Size - quota[g]), left);
                quota[g] += take;
                left -= take;
                if (quota[g] == groups[g].Size) open.Remove(g);
                if (left == 0) break;
            }
        }
        var picked = new List<int>(count);
        for (int g = 0; g < groups.Count; g++)
        {
            var perm = Rng.For(seed, 0x6C4 + (ulong)g).Permutation(groups[g].Size);
            for (int i = 0; i < quota[g]; i++) picked.Add(groups[g].Offset + perm[i]);
        }
        picked.Sort();
        return picked.ToArray();
    }

    /// <summary>
    /// The device's analytic gradient of the mean data loss over the rows of <paramref name="x"/>
    /// ([m, inputs], normalised) and its loss: one <see cref="DeviceMlp.Evaluate"/> with backward, then
    /// <see cref="DeviceMlp.GetGradients"/>. No L2 term (the optimizer adds it, not the backward pass).
    /// </summary>
    public static (float[] Gradient, double Loss) DeviceGradient(KernelSet kernels, MlpSpec spec, float[] parameters, float[] x, int[] y)
    {
        int m = y.Length;
        using var model = new DeviceMlp(kernels, spec, m);
        model.SetParameters(parameters);
        using var dx = kernels.Accelerator.Allocate1D(x);
        using var dy = kernels.Accelerator.Allocate1D(y);
        model.Evaluate(dx.View, dy.View, m, backward: true);
        var (lossSum, _) = model.TakeMetrics();
        return (model.GetGradients(), lossSum / m);
    }

    /// <summary>
    /// Checks the gradient computed on <paramref name="device"/> at <paramref name="parameters"/> on the
    /// examples (x [m, inputs] normalised, y [m]) for the parameters in <paramref name="indices"/>.
    /// <paramref name="tamper"/> may alter the analytic gradient before the comparison (tests inject errors
    /// with it); <paramref name="progress"/> gets (parameters done, total), one call at a time. A device
    /// failure is a one-line <see cref="UserError"/> (exit code 4) ending with <paramref name="faultAdvice"/>.
    /// </summary>
    public static GradientCheckResult Run(ComputeDevice device, MlpSpec spec, float[] parameters, float[] x, int[] y, int[] indices,
        double epsilon = DefaultEpsilon, Action<float[]>? tamper = null, Action<int, int>? progress = null,
        string faultAdvice = TrainControl.DefaultFaultAdvice)
    {
        if (!(epsilon > 0) || !double.IsFinite(epsilon)) throw new UserError($"--epsilon {epsilon}: give a small positive step, e.g. 1e-6");
        float[] analytic;
        double deviceLoss;
        try { (analytic, deviceLoss) = DeviceGradient(KernelSet.For(device), spec, parameters, x, y); }
        catch (Exception e) when (e is not (UserError or ArgumentException))
        {
            throw device.Fault("while computing the analytic gradient", e, faultAdvice);
        }
        tamper?.Invoke(analytic);

        int m = y.Length;
        double[] p = parameters.Select(v => (double)v).ToArray(), xd = x.Select(v => (double)v).ToArray();
        double f0 = ReferenceMlp.Loss(spec, p, xd, y, m);
        var numeric = new double[indices.Length];
        var secondDiff = new double[indices.Length];
        int done = 0;
        var gate = new object();
        Parallel.For(0, indices.Length, () => (double[])p.Clone(), (j, _, local) =>
        {
            int i = indices[j];
            double keep = local[i], up = keep + epsilon, down = keep - epsilon;
            local[i] = up; double fUp = ReferenceMlp.Loss(spec, local, xd, y, m);
            local[i] = down; double fDown = ReferenceMlp.Loss(spec, local, xd, y, m);
            local[i] = keep;
            numeric[j] = (fUp - fDown) / (up - down);   // the step as represented, not as intended
            secondDiff[j] = (fUp - 2 * f0 + fDown) / epsilon;
            lock (gate) progress?.Invoke(++done, indices.Length);
            return local;
        }, _ => { });

        // element-wise errors are taken relative to max(|a|, |n|, floor): near-zero entries, where float32
        // rounding is all there is, would otherwise dominate the largest relative error
        double rms = Math.Sqrt(numeric.Sum(v => v * v) / Math.Max(1, numeric.Length));
        double floor = 1e-3 * rms;
        var checkedParams = new CheckedParameter[indices.Length];
        double diff2 = 0, norm2 = 0;
        for (int j = 0; j < indices.Length; j++)
        {
            double a = analytic[indices[j]], n = numeric[j];
            bool kink = Math.Abs(secondDiff[j]) > KinkFraction * Math.Max(Math.Abs(n), rms);
            double rel = Math.Abs(a - n) / Math.Max(Math.Max(Math.Abs(a), Math.Abs(n)), floor);
            checkedParams[j] = new CheckedParameter(indices[j], ParameterLocation.Of(spec, indices[j]), a, n, double.IsNaN(rel) ? double.PositiveInfinity : rel, kink);
            if (kink) continue;
            diff2 += (a - n) * (a - n);
            norm2 += n * n;
        }
        return new GradientCheckResult(checkedParams, Math.Sqrt(diff2), Math.Sqrt(norm2), deviceLoss, f0, m, epsilon, floor);
    }
}
