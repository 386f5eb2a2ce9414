using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Tests.Runtime;

/// <summary>
/// The divergence watch through the model: the loss kernel reads the training step from device memory (the step values a
/// training step selects; here the model's own, written per call), so the step it records must be the one given, also far
/// from the first, after a jump back (a resumed run) and for both costs; an evaluation's non-finite loss is never recorded.
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.Trainers))]
public sealed class DivergenceWatchTests(DeviceCase deviceCase)
{
    ComputeDevice device = null!;

    [OneTimeSetUp] public void Open() => device = deviceCase.OpenOrIgnore();
    [OneTimeTearDown] public void Close() => device?.Dispose();

    [TestCase(LossKind.SoftmaxCrossEntropy, 5000L)]
    [TestCase(LossKind.SoftmaxCrossEntropy, 1023L)]
    [TestCase(LossKind.SigmoidSquaredError, 3L)]
    [TestCase(LossKind.SigmoidSquaredError, 70000L)]
    public void The_first_step_with_a_non_finite_loss_is_recorded(LossKind loss, long badStep)
    {
        var spec = new MlpSpec([9, 7, 4], Activation.Tanh, loss);
        int m = 5;
        var x = Rand.Floats(m * spec.Inputs, 3);
        var bad = (float[])x.Clone();
        bad[0] = float.NaN;
        var y = Enumerable.Range(0, m).Select(i => i % spec.Classes).ToArray();
        using var model = new DeviceMlp(KernelSet.For(device), spec, m);
        model.SetParameters(spec.Initialize(2));
        using var finite = device.Accelerator.Allocate1D(x);
        using var nan = device.Accelerator.Allocate1D(bad);
        using var labels = device.Accelerator.Allocate1D(y);

        void Train(ArrayView<float> x, long step)
        {
            model.SetStep(new Gpu.Kernels.StepValues { Step = step });
            model.Evaluate(x, labels.View, m, backward: true, watch: true);
        }

        foreach (long step in new[] { 0L, 1L, 2000L, 2L })   // finite steps, one far ahead, one back again
            Train(finite.View, step);
        Assert.That(model.FirstNonFiniteStep(), Is.Null, "finite losses");
        model.Evaluate(nan.View, labels.View, m, backward: false);
        Assert.That(model.FirstNonFiniteStep(), Is.Null, "an evaluation is not watched");
        model.TakeMetrics();

        Train(finite.View, badStep - 1);
        Train(nan.View, badStep);
        Train(finite.View, badStep + 1);
        Assert.That(model.FirstNonFiniteStep(), Is.EqualTo(badStep));
    }
}
