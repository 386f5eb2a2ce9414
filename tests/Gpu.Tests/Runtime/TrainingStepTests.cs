using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Tests.Runtime;

/// <summary>
/// One training step (Runtime/TrainingStep.cs) where CUDA graphs cannot be recorded: a profile that asks for them on a device
/// that is not CUDA tries, falls back to direct launches saying why, and trains bit for bit as the profile without graphs;
/// the step's values (learning rate, Adam's corrections, step number) come from device memory, so steps given other values
/// train differently.
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.Trainers))]
public sealed class TrainingStepTests(DeviceCase deviceCase)
{
    static (float[] Parameters, TrainingStep Step) Train(ComputeDevice device, DeviceProfile profile, TrainOptions o, int steps = 5)
    {
        var kernels = KernelSet.For(device, profile);
        int count = o.BatchSize * steps - 7;   // a last batch of another size
        var r = new Random(3);
        var pixels = new byte[count * 784];
        r.NextBytes(pixels);
        var data = new Dataset("synthetic", pixels, Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray(), 784, 10);
        var spec = MlpSpec.FromHidden(784, o.Hidden, 10, o.Activation, o.Loss);
        using var model = new DeviceMlp(kernels, spec, o.BatchSize);
        model.SetParameters(spec.Initialize(o.Seed));
        using var source = new DeviceDataset(kernels, data, o.BatchSize);
        var stepper = new TrainingStep(kernels, model, source, o);
        var scheduler = new MinibatchScheduler(count, o.BatchSize, o.Seed);
        long step = Trainer.TrainEpoch(stepper, source, scheduler, 1, o, 0, 2L * scheduler.StepsPerEpoch);
        Trainer.TrainEpoch(stepper, source, scheduler, 2, o, step, 2L * scheduler.StepsPerEpoch);
        stepper.Dispose();
        return (model.GetParameters(), stepper);
    }

    static readonly TrainOptions Options = new() { Hidden = [16], BatchSize = 32, Dropout = 0.2f, Optimizer = OptimizerKind.Adam, LearningRate = 0.01f };

    [Test]
    public void Without_cuda_a_graph_falls_back_to_direct_launches_that_train_the_same()
    {
        using var device = deviceCase.OpenOrIgnore();
        var (direct, plain) = Train(device, device.Profile with { StepGraphs = false }, Options);
        var (fallback, tried) = Train(device, device.Profile with { StepGraphs = true }, Options);
        Assert.That(plain.Mode, Is.EqualTo("direct launches: CUDA graphs need a CUDA device"));
        Assert.That(tried.Mode, Is.EqualTo("direct launches: CUDA graphs need a CUDA device"), "tried on the second step of a size, then gave up, saying why");
        Assert.That((tried.Replays, tried.Steps), Is.EqualTo((0L, 10L)));
        Assert.That(tried.Kernels, Is.EqualTo(plain.Kernels), "the failed recording ran nothing twice");
        Assert.That(fallback, Is.EqualTo(direct), "bit for bit");
    }

    [Test]
    public void The_steps_values_reach_the_kernels_from_device_memory()
    {
        using var device = deviceCase.OpenOrIgnore();
        var a = Train(device, device.Profile, Options).Parameters;
        Assert.That(Train(device, device.Profile, Options).Parameters, Is.EqualTo(a), "deterministic");
        Assert.That(Train(device, device.Profile, Options with { LearningRate = 0.02f }).Parameters, Is.Not.EqualTo(a), "the learning rate");
        Assert.That(Train(device, device.Profile, Options with { Schedule = LrSchedule.Constant }).Parameters, Is.Not.EqualTo(a), "the schedule's rate per step");
    }
}
