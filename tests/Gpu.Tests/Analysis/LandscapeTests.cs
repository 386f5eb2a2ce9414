using Gpu.Engine.Analysis;
using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using Gpu.Engine;

namespace Gpu.Tests.Analysis;

/// <summary>The trajectory PCA, the trainer's parameter hook and the loss landscape end to end.</summary>
public sealed class LandscapeTests
{
    static double Dot(double[] a, double[] b) => a.Zip(b, (u, v) => u * v).Sum();

    [Test]
    public void Pca_recovers_the_two_directions_a_synthetic_trajectory_moves_in()
    {
        const int p = 3000, t = 40;
        var rng = new Rng(5);
        double[] Unit() { var d = Enumerable.Range(0, p).Select(_ => rng.NextDouble() - 0.5).ToArray(); double n = Math.Sqrt(Dot(d, d)); return d.Select(v => v / n).ToArray(); }
        var u = Unit();
        var w = Unit();
        double uw = Dot(u, w);
        var v = w.Zip(u, (wi, ui) => wi - uw * ui).ToArray();   // orthogonal to u
        double vn = Math.Sqrt(Dot(v, v));
        v = v.Select(x => x / vn).ToArray();
        var start = Enumerable.Range(0, p).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        // a long descent along u and a smaller, decaying wiggle along v, made uncorrelated with it (else the
        // principal axes would be rotated mixtures of u and v)
        var a = Enumerable.Range(0, t).Select(s => 4.0 * (t - 1 - s) / (t - 1)).ToArray();
        var b = Enumerable.Range(0, t).Select(s => Math.Sin(s * 0.4) * Math.Exp(-s / 15.0)).ToArray();
        double am = a.Average(), bm = b.Average();
        double k = a.Zip(b, (x, y) => (x - am) * (y - bm)).Sum() / a.Sum(x => (x - am) * (x - am));
        b = b.Select((y, s) => y - bm - k * (a[s] - am)).ToArray();
        var vectors = new List<float[]>();
        for (int s = 0; s < t; s++)
        {
            var x = new float[p];
            for (int i = 0; i < p; i++) x[i] = (float)(start[i] + a[s] * u[i] + b[s] * v[i] + 1e-5 * (rng.NextDouble() - 0.5));
            vectors.Add(x);
        }
        var plane = TrajectoryPca.Fit(vectors, vectors[^1]);
        Assert.That(Math.Abs(Dot(plane.Direction1, u)), Is.GreaterThan(0.9999), "PC1 is u");
        Assert.That(Math.Abs(Dot(plane.Direction2, v)), Is.GreaterThan(0.9999), "PC2 is v");
        Assert.That(Dot(plane.Direction1, plane.Direction1), Is.EqualTo(1).Within(1e-9));
        Assert.That(Dot(plane.Direction1, plane.Direction2), Is.EqualTo(0).Within(1e-9));
        double varA = Variance(a), varB = Variance(b);
        Assert.That(plane.Explained1, Is.EqualTo(varA / (varA + varB)).Within(1e-3));
        Assert.That(plane.Explained2, Is.EqualTo(varB / (varA + varB)).Within(1e-3));
        Assert.That(plane.A[^1], Is.EqualTo(0).Within(1e-12));
        Assert.That(plane.B[^1], Is.EqualTo(0).Within(1e-12));
        double signA = Math.Sign(Dot(plane.Direction1, u)), signB = Math.Sign(Dot(plane.Direction2, v));
        for (int s = 0; s < t; s++)
        {
            Assert.That(plane.A[s] * signA, Is.EqualTo(a[s] - a[^1]).Within(1e-4), $"A[{s}]");
            Assert.That(plane.B[s] * signB, Is.EqualTo(b[s] - b[^1]).Within(1e-4), $"B[{s}]");
        }
    }

    static double Variance(double[] x) { double m = x.Average(); return x.Sum(v => (v - m) * (v - m)); }

    [Test]
    public void Symmetric_eigen_decomposition_reconstructs_the_matrix()
    {
        const int n = 9;
        var r = new Rng(3);
        var m = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) m[i, j] = m[j, i] = r.NextDouble() - 0.5;
        var (values, vectors) = TrajectoryPca.SymmetricEigen(m);
        Assert.That(values, Is.Ordered.Descending);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double back = 0, orth = 0;
                for (int k = 0; k < n; k++) { back += vectors[i, k] * values[k] * vectors[j, k]; orth += vectors[k, i] * vectors[k, j]; }
                Assert.That(back, Is.EqualTo(m[i, j]).Within(1e-10), $"V L V^T [{i},{j}]");
                Assert.That(orth, Is.EqualTo(i == j ? 1 : 0).Within(1e-10), $"V^T V [{i},{j}]");
            }
    }

    static DataPair Slice(int count)
    {
        var data = Idx.ReadFolder(Repo.FashionMnist);
        return data with { Train = data.Train.Take(count), Test = data.Test.Take(500) };
    }

    [Test]
    public void The_parameter_hook_sees_the_start_every_nth_step_and_does_not_change_training()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice(700);
        var o = new TrainOptions { Hidden = [8], Epochs = 2, BatchSize = 100, ValFraction = 0, Seed = 3 };   // 7 steps per epoch
        var seen = new List<(long Step, float[] P)>();
        var hooked = Trainer.Run(device, data, o, control: new TrainControl { ParametersEvery = 5, OnParameters = (s, p) => seen.Add((s, p)) });
        Assert.That(seen.Select(s => s.Step), Is.EqualTo(new long[] { 0, 5, 10 }));
        var spec = MlpSpec.FromHidden(784, [8], 10);
        Assert.That(seen[0].P, Is.EqualTo(spec.Initialize(3, o.BiasInit, o.Init)), "step 0 is the initialisation");
        Assert.That(seen[1].P, Is.Not.EqualTo(seen[0].P));
        var plain = Trainer.Run(device, data, o);
        Assert.That(hooked.Parameters, Is.EqualTo(plain.Parameters), "recording does not change the run");
        var every7 = new List<long>();
        var run = Trainer.Run(device, data, o, control: new TrainControl { ParametersEvery = 7, OnParameters = (s, p) => every7.Add(s) });
        Assert.That(every7, Is.EqualTo(new long[] { 0, 7, 14 }), "the last step is recorded when it is a multiple");
    }

    [Test]
    public void A_small_landscape_ends_at_the_origin_and_its_grid_agrees_with_the_final_loss()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice(1000);
        var o = new TrainOptions { Hidden = [8], Epochs = 2, Seed = 2 };
        var r = LossLandscape.Run(device, data, o, recordEvery: 0, grid: 7, evalImages: 600);
        Assert.That(r.RecordEvery, Is.EqualTo(1), "8 steps per epoch: about 10 points per epoch means every step");
        Assert.That(r.Path.Select(p => p.Step), Is.EqualTo(Enumerable.Range(0, 17).Select(i => (long)i)));
        Assert.That(r.A, Has.Length.EqualTo(7));
        Assert.That(r.Loss.Cast<double>().All(double.IsFinite), Is.True);
        Assert.That(r.Path.All(p => double.IsFinite(p.Loss) && double.IsFinite(p.A) && double.IsFinite(p.B)), Is.True);
        Assert.That((r.Path[^1].A, r.Path[^1].B), Is.EqualTo((0.0, 0.0)));
        Assert.That(r.A.Min(), Is.LessThan(r.Path.Min(p => p.A)));
        Assert.That(r.A.Max(), Is.GreaterThan(r.Path.Max(p => p.A)));
        Assert.That(r.Plane.Explained1 + r.Plane.Explained2, Is.InRange(0.5, 1.0 + 1e-9));
        Assert.That(r.Path[^1].Loss, Is.LessThan(r.Path[0].Loss), "training lowered the loss");

        // the final training loss, evaluated directly on the same images
        using var model = new DeviceMlp(KernelSet.For(device), r.Spec, 600);
        model.SetParameters(r.Training.Parameters);
        using var images = new DeviceDataset(KernelSet.For(device), data.Train.Take(600), 600);
        double direct = Trainer.Evaluate(model, images, 600).Loss;
        Assert.That(r.Path[^1].Loss, Is.EqualTo(direct).Within(1e-6));
        int ia = Enumerable.Range(0, 7).MinBy(i => Math.Abs(r.A[i])), ib = Enumerable.Range(0, 7).MinBy(j => Math.Abs(r.B[j]));
        Assert.That(r.Loss[ia, ib], Is.EqualTo(direct).Within(0.02 * direct), "the grid point nearest the final weights");
    }

    [Test]
    public void A_device_failure_on_the_grid_is_one_line_naming_the_point_and_ending_with_the_callers_advice()
    {
        using var device = ComputeDevice.Open("cpu");
        var o = new TrainOptions { Hidden = [8], Epochs = 1, Seed = 2 };
        // the device goes away after the third grid point: the fourth evaluation fails
        var e = Assert.Throws<Gpu.Engine.UserError>(() => LossLandscape.Run(device, Slice(1000), o, recordEvery: 0, grid: 3, evalImages: 200,
            gridProgress: (done, _) => { if (done == 3) device.Accelerator.Dispose(); }, faultAdvice: "retry with --device cpu"))!;
        Assert.That(e.ExitCode, Is.EqualTo(4));
        Assert.That(e.Message, Does.StartWith("device error on cpu (CPUAccelerator) while evaluating the loss at grid point 4 of 9: "));
        Assert.That(e.Message, Does.EndWith("; retry with --device cpu").And.Not.Contain("\n"));
    }
}
