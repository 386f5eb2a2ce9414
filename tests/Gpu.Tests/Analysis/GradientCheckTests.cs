using Gpu.Engine.Analysis;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Analysis;

/// <summary>The gradient checker: the device gradient against float64 central differences, on the CPU accelerator.</summary>
public sealed class GradientCheckTests
{
    ComputeDevice device = null!;

    [OneTimeSetUp] public void Open() => device = ComputeDevice.Open("cpu");
    [OneTimeTearDown] public void Close() => device?.Dispose();

    static (float[] X, int[] Y) Examples(MlpSpec spec, int m, int seed) =>
        (Rand.Floats(m * spec.Inputs, seed, 0.5f), Enumerable.Range(0, m).Select(i => (i * 3 + 1) % spec.Classes).ToArray());

    static IEnumerable<TestCaseData> Networks()
    {
        foreach (var act in new[] { Activation.Relu, Activation.Sigmoid, Activation.Tanh, Activation.LeakyRelu })
            foreach (var loss in Enum.GetValues<LossKind>())
                yield return new TestCaseData(act, loss);
    }

    [TestCaseSource(nameof(Networks))]
    public void Correct_device_gradient_passes_on_every_parameter(Activation act, LossKind loss)
    {
        var spec = new MlpSpec([20, 9, 7, 4], act, loss);
        var (x, y) = Examples(spec, 5, 41);
        var r = GradientCheck.Run(device, spec, spec.Initialize(3), x, y, GradientCheck.Sample(spec, int.MaxValue, 1));
        Assert.That(r.Parameters, Has.Count.EqualTo(spec.ParameterCount), "every parameter checked");
        Assert.That(r.RelativeError, Is.LessThan(1e-5), $"relative error; worst at {r.Worst?.Where}");
        Assert.That(r.NumericNorm, Is.GreaterThan(0));
        Assert.That(r.DeviceLoss, Is.EqualTo(r.ReferenceLoss).Within(1e-5 * r.ReferenceLoss), "device and reference losses");
        if (act is Activation.Sigmoid or Activation.Tanh) Assert.That(r.Kinks, Is.Zero, "smooth activations have no kinks");
    }

    [Test]
    public void A_wrong_element_is_caught_and_located()
    {
        var spec = new MlpSpec([20, 9, 7, 4]);
        var (x, y) = Examples(spec, 5, 42);
        int target = spec.WeightOffset(1) + 3 * spec.In(1) + 5;   // layer 2 W[3, 5]
        var r = GradientCheck.Run(device, spec, spec.Initialize(4), x, y, GradientCheck.Sample(spec, int.MaxValue, 1),
            tamper: g => g[target] += 0.2f * Math.Max(Math.Abs(g[target]), g.Max(Math.Abs)));
        Assert.That(r.RelativeError, Is.GreaterThan(1e-3));
        Assert.That(r.Worst!.Index, Is.EqualTo(target));
        Assert.That(r.Worst.Where, Is.EqualTo(new ParameterLocation(1, true, 3, 5)));
        Assert.That(r.Worst.Where.ToString(), Is.EqualTo("layer 2 W[3, 5]"));
    }

    [Test]
    public void A_missing_factor_in_one_layers_bias_gradient_is_caught_in_a_sample()
    {
        var spec = new MlpSpec([784, 64, 32, 10]);
        var (x, y) = Examples(spec, 5, 43);
        int from = spec.BiasOffset(2), count = spec.Out(2);
        var r = GradientCheck.Run(device, spec, spec.Initialize(5), x, y, GradientCheck.Sample(spec, 300, 2),
            tamper: g => { for (int i = from; i < from + count; i++) g[i] *= 5; });
        Assert.That(r.RelativeError, Is.GreaterThan(1e-3));
        Assert.That(r.Worst!.Where.Layer, Is.EqualTo(2));
        Assert.That(r.Worst.Where.IsWeight, Is.False);
    }

    [Test]
    public void A_nan_in_the_analytic_gradient_fails()
    {
        var spec = new MlpSpec([6, 5, 3]);
        var (x, y) = Examples(spec, 2, 44);
        var r = GradientCheck.Run(device, spec, spec.Initialize(6), x, y, GradientCheck.Sample(spec, int.MaxValue, 1), tamper: g => g[7] = float.NaN);
        Assert.That(r.RelativeError, Is.EqualTo(double.PositiveInfinity));
    }

    [Test]
    public void A_device_failure_is_one_line_naming_the_device_and_ending_with_the_callers_advice()
    {
        var spec = new MlpSpec([6, 5, 3]);
        var (x, y) = Examples(spec, 2, 45);
        using var lost = ComputeDevice.Open("cpu");
        lost.Accelerator.Dispose();   // a device that is gone: its kernel launches fail
        var e = Assert.Throws<Gpu.Engine.UserError>(() => GradientCheck.Run(lost, spec, spec.Initialize(6), x, y, GradientCheck.Sample(spec, int.MaxValue, 1),
            faultAdvice: "retry with --device cpu"))!;
        Assert.That(e.ExitCode, Is.EqualTo(4));
        Assert.That(e.Message, Does.StartWith("device error on cpu (CPUAccelerator) while computing the analytic gradient: ObjectDisposedException: "));
        Assert.That(e.Message, Does.EndWith("; retry with --device cpu").And.Not.Contain("\n"));
    }

    [Test]
    public void A_relu_switching_inside_the_step_is_flagged_as_a_kink_and_left_out()
    {
        // zero inputs: hidden pre-activations equal the biases; bias 0 of layer 1 sits exactly on the ReLU kink
        var spec = new MlpSpec([3, 2, 2]);
        var p = spec.Initialize(7);
        p[spec.BiasOffset(0)] = 0f;
        p[spec.BiasOffset(0) + 1] = 0.3f;
        var r = GradientCheck.Run(device, spec, p, new float[2 * 3], [0, 1], GradientCheck.Sample(spec, int.MaxValue, 1));
        Assert.That(r.Parameters.Where(c => c.Kink).Select(c => c.Index), Is.EqualTo(new[] { spec.BiasOffset(0) }));
        var kink = r.Parameters.Single(c => c.Kink);
        Assert.That(Math.Abs(kink.Numeric - kink.Analytic), Is.GreaterThan(1e-3), "the central difference at a kink is not the derivative");
        Assert.That(r.RelativeError, Is.LessThan(1e-5), "the kink is left out of the norm");
    }

    [Test]
    public void The_sample_covers_every_layers_weights_and_biases()
    {
        var spec = new MlpSpec([784, 256, 128, 10]);
        var s = GradientCheck.Sample(spec, 2000, 1);
        Assert.That(s, Has.Length.EqualTo(2000));
        Assert.That(s, Is.Ordered.And.Unique);
        Assert.That(s, Is.EqualTo(GradientCheck.Sample(spec, 2000, 1)), "seeded");
        Assert.That(s, Is.Not.EqualTo(GradientCheck.Sample(spec, 2000, 2)));
        var groups = s.GroupBy(i => (ParameterLocation.Of(spec, i).Layer, ParameterLocation.Of(spec, i).IsWeight)).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(groups, Has.Count.EqualTo(6));
        Assert.That(groups[(2, false)], Is.EqualTo(10), "a small group is taken whole");
        Assert.That(groups[(1, false)], Is.EqualTo(128));
        Assert.That(groups[(0, true)], Is.GreaterThanOrEqualTo(500));
        Assert.That(GradientCheck.Sample(spec, spec.ParameterCount, 1), Is.EqualTo(Enumerable.Range(0, spec.ParameterCount)));
    }

    [Test]
    public void Locations_map_back_to_their_index()
    {
        var spec = new MlpSpec([5, 4, 3, 2]);
        for (int i = 0; i < spec.ParameterCount; i++)
        {
            var at = ParameterLocation.Of(spec, i);
            int back = at.IsWeight ? spec.WeightOffset(at.Layer) + at.Row * spec.In(at.Layer) + at.Col : spec.BiasOffset(at.Layer) + at.Row;
            Assert.That(back, Is.EqualTo(i), at.ToString());
        }
        Assert.That(ParameterLocation.Of(spec, spec.BiasOffset(2) + 1).ToString(), Is.EqualTo("layer 3 b[1]"));
    }
}
