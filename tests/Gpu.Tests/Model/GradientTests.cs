using Gpu.Engine.Model;
using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using ILGPU.Runtime;

namespace Gpu.Tests.Model;

public sealed class ReferenceGradientCheckTests
{
    static IEnumerable<TestCaseData> GradCases()
    {
        foreach (var act in new[] { Activation.Relu, Activation.Sigmoid, Activation.Tanh, Activation.LeakyRelu })
            foreach (var loss in Enum.GetValues<LossKind>())
            {
                yield return new TestCaseData(new[] { 6, 5, 4 }, 3, 0.0, act, loss);
                yield return new TestCaseData(new[] { 9, 7, 5, 3 }, 4, 1e-2, act, loss);
            }
        yield return new TestCaseData(new[] { 4, 3 }, 5, 1e-1, Activation.Relu, LossKind.SoftmaxCrossEntropy);
        yield return new TestCaseData(new[] { 4, 3 }, 5, 1e-1, Activation.Relu, LossKind.SigmoidSquaredError);
    }

    /// <summary>Like scipy.optimize.check_grad, in float64: analytic vs central differences on every parameter.</summary>
    [TestCaseSource(nameof(GradCases))]
    public void Reference_gradient_matches_central_differences(int[] sizes, int m, double l2, Activation act, LossKind loss)
    {
        var spec = new MlpSpec(sizes, act, loss);
        var p = Rand.D(spec.Initialize(7, 0.01f));
        // move biases off 0.01 so ReLU kinks are unlikely to sit within h of any pre-activation
        var x = Rand.D(Rand.Floats(m * spec.Inputs, 21));
        var y = Enumerable.Range(0, m).Select(i => i % spec.Classes).ToArray();
        var (_, grad, _) = ReferenceMlp.LossAndGradient(spec, p, x, y, m, l2);
        var numeric = new double[p.Length];
        const double h = 1e-6;
        for (int i = 0; i < p.Length; i++)
        {
            double keep = p[i];
            p[i] = keep + h; double up = ReferenceMlp.LossAndGradient(spec, p, x, y, m, l2).Loss;
            p[i] = keep - h; double down = ReferenceMlp.LossAndGradient(spec, p, x, y, m, l2).Loss;
            p[i] = keep;
            numeric[i] = (up - down) / (2 * h);
        }
        double diff = Math.Sqrt(grad.Zip(numeric, (a, b) => (a - b) * (a - b)).Sum());
        double norm = Math.Sqrt(numeric.Sum(v => v * v));
        Assert.That(diff / norm, Is.LessThan(1e-6));
    }

    [TestCase(Activation.Relu)]
    [TestCase(Activation.Tanh)]
    public void Reference_gradient_with_dropout_matches_central_differences(Activation act)
    {
        var spec = new MlpSpec([8, 6, 5, 3], act);
        var p = Rand.D(spec.Initialize(4));
        var x = Rand.D(Rand.Floats(3 * 8, 23));
        int[] y = [0, 2, 1];
        var mask = new ReferenceMlp.DropoutMask(0.3, (l, i) => (l * 31 + i * 7) % 10 >= 3);
        var (_, grad, _) = ReferenceMlp.LossAndGradient(spec, p, x, y, 3, 0, mask);
        const double h = 1e-6;
        double num = 0, den = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double keep = p[i];
            p[i] = keep + h; double up = ReferenceMlp.LossAndGradient(spec, p, x, y, 3, 0, mask).Loss;
            p[i] = keep - h; double down = ReferenceMlp.LossAndGradient(spec, p, x, y, 3, 0, mask).Loss;
            p[i] = keep;
            double numeric = (up - down) / (2 * h);
            num += (grad[i] - numeric) * (grad[i] - numeric);
            den += numeric * numeric;
        }
        Assert.That(Math.Sqrt(num / den), Is.LessThan(1e-6));
    }

    [Test]
    public void Gradient_check_catches_a_wrong_gradient()
    {
        var spec = new MlpSpec([5, 4, 3]);
        var p = Rand.D(spec.Initialize(3));
        var x = Rand.D(Rand.Floats(2 * 5, 22));
        int[] y = [0, 2];
        var (_, grad, _) = ReferenceMlp.LossAndGradient(spec, p, x, y, 2, 0);
        grad[3] *= 1.01;   // a 1% error in one weight's gradient
        const double h = 1e-6;
        double keep = p[3];
        p[3] = keep + h; double up = ReferenceMlp.LossAndGradient(spec, p, x, y, 2, 0).Loss;
        p[3] = keep - h; double down = ReferenceMlp.LossAndGradient(spec, p, x, y, 2, 0).Loss;
        double numeric = (up - down) / (2 * h);
        Assert.That(Math.Abs(grad[3] - numeric) / Math.Abs(numeric), Is.GreaterThan(1e-3));
    }
}

[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.All))]
public sealed class DeviceGradientTests(DeviceCase deviceCase)
{
    ComputeDevice device = null!;

    [OneTimeSetUp] public void Open() => device = deviceCase.OpenOrIgnore();
    [OneTimeTearDown] public void Close() => device?.Dispose();

    static IEnumerable<TestCaseData> Networks()
    {
        foreach (var act in new[] { Activation.Relu, Activation.Sigmoid, Activation.Tanh, Activation.LeakyRelu })
            foreach (var loss in Enum.GetValues<LossKind>())
                yield return new TestCaseData(new[] { 29, 17, 10 }, 129, act, loss);
        yield return new TestCaseData(new[] { 784, 33, 10 }, 7, Activation.Relu, LossKind.SoftmaxCrossEntropy);
        yield return new TestCaseData(new[] { 13, 7, 5, 3 }, 1, Activation.Tanh, LossKind.SoftmaxCrossEntropy);
        yield return new TestCaseData(new[] { 9, 4 }, 33, Activation.Relu, LossKind.SigmoidSquaredError);
    }

    [TestCase(Activation.Relu, 0.5f)]
    [TestCase(Activation.Sigmoid, 0.2f)]
    [TestCase(Activation.Tanh, 0.3f)]
    public void Device_gradient_with_dropout_matches_the_reference(Activation act, float rate)
    {
        var spec = new MlpSpec([29, 17, 13, 10], act);
        var k = KernelSet.For(device);
        var p = spec.Initialize(6);
        int m = 33;
        var x = Rand.Floats(m * spec.Inputs, 32, 0.5f);
        var y = Enumerable.Range(0, m).Select(i => i % spec.Classes).ToArray();
        using var model = new DeviceMlp(k, spec, m);
        model.SetParameters(p);
        model.Dropout = (rate, 77);
        model.SetStep(new Gpu.Kernels.StepValues { Step = 5 });
        using var dx = device.Accelerator.Allocate1D(x);
        using var dy = device.Accelerator.Allocate1D(y);
        model.Evaluate(dx.View, dy.View, m, backward: true);
        var (lossSum, _) = model.TakeMetrics();
        var mask = new ReferenceMlp.DropoutMask(rate, (l, i) => Gpu.Kernels.CounterRng.Uniform(77, 5, l, i) >= rate);
        var (refLoss, refGrad, _) = ReferenceMlp.LossAndGradient(spec, Rand.D(p), Rand.D(x), y, m, l2: 0, mask);
        Assert.That(lossSum / m, Is.EqualTo(refLoss).Within(1e-5 * Math.Max(1, Math.Abs(refLoss))));
        Compare.Close(model.GetGradients(), refGrad, what: "gradient with dropout");
        model.Evaluate(dx.View, dy.View, m, backward: false);   // evaluation: no dropout
        var (evalLoss, _) = model.TakeMetrics();
        Assert.That(evalLoss / m, Is.EqualTo(ReferenceMlp.LossAndGradient(spec, Rand.D(p), Rand.D(x), y, m, 0).Loss).Within(1e-5));
    }

    [TestCaseSource(nameof(Networks))]
    public void Device_loss_gradient_and_update_match_the_reference(int[] sizes, int m, Activation act, LossKind loss)
    {
        var spec = new MlpSpec(sizes, act, loss);
        var k = KernelSet.For(device);
        var p = spec.Initialize(5);
        var x = Rand.Floats(m * spec.Inputs, 31, 0.5f);
        var y = Enumerable.Range(0, m).Select(i => (i * 5 + 1) % spec.Classes).ToArray();
        using var model = new DeviceMlp(k, spec, m + 3);
        model.SetParameters(p);
        using var dx = device.Accelerator.Allocate1D(x);
        using var dy = device.Accelerator.Allocate1D(y);
        model.Evaluate(dx.View, dy.View, m, backward: true);
        var (lossSum, correct) = model.TakeMetrics();
        var (refLoss, refGrad, refCorrect) = ReferenceMlp.LossAndGradient(spec, Rand.D(p), Rand.D(x), y, m, l2: 0);
        Assert.That(lossSum / m, Is.EqualTo(refLoss).Within(1e-5 * Math.Max(1, Math.Abs(refLoss))));
        Assert.That(correct, Is.EqualTo(refCorrect));
        Compare.Close(model.GetGradients(), refGrad, what: "gradient");

        model.Step(new Optimizer(OptimizerKind.Sgd, Momentum: 0.9f, L2: 1e-3f, Beta1: 0.9f, Beta2: 0.999f), 0.1f, step: 0);
        var rp = Rand.D(p); var rv = new double[rp.Length];
        ReferenceMlp.SgdMomentum(rp, refGrad, rv, 0.1, 0.9, 1e-3, spec.WeightCount);
        Compare.Close(model.GetParameters(), rp, what: "parameters after one step");
    }
}
