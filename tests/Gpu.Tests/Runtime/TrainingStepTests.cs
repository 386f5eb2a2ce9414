using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

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
    static (float[] Parameters, TrainingStep Step) Train(ComputeDevice device, DeviceProfile profile, TrainOptions o)
    {
        var run = SyntheticSteps.Train(device, profile, o, count: o.BatchSize * 5 - 7, epochs: 2);   // a last batch of another size
        return (run.Parameters, run.Step);
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

/// <summary>The step loop's distance to the device (issue 22, case 4): a wait after the first step, then about the target's worth of steps.</summary>
public sealed class StepPacerTests
{
    [Test]
    public void Waits_after_the_first_step_then_sizes_the_distance_to_the_target()
    {
        var pacer = new Gpu.Engine.Training.StepPacer(TimeSpan.FromSeconds(0.25));
        Assert.That(pacer.Step(), Is.True, "the first step is waited for: its time sizes the next distance");
        pacer.Waited(TimeSpan.FromSeconds(0.01));   // 10 ms a step
        Assert.That(pacer.Limit, Is.EqualTo(2), "at most doubling");
        Assert.That(pacer.Step(), Is.False);
        Assert.That(pacer.Step(), Is.True);
        pacer.Waited(TimeSpan.FromSeconds(0.02));
        Assert.That(pacer.Limit, Is.EqualTo(4));
        for (int i = 0; i < 20; i++) { while (!pacer.Step()) { } pacer.Waited(TimeSpan.FromSeconds(0.01 * pacer.Pending)); }
        Assert.That(pacer.Limit, Is.EqualTo(25), "a quarter second of 10 ms steps, never more");
        while (!pacer.Step()) { }
        pacer.Waited(TimeSpan.FromSeconds(2.5));   // the steps got slower (100 ms each): the distance shrinks at once
        Assert.That(pacer.Limit, Is.EqualTo(2));
        while (!pacer.Step()) { }
        pacer.Waited(TimeSpan.FromSeconds(10));   // one step longer than the target: wait after every step
        Assert.That(pacer.Limit, Is.EqualTo(1));
    }
}
