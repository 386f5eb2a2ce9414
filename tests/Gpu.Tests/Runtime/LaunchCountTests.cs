using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Runtime;

/// <summary>
/// Kernel launches per training step, counted by the kernel set, in every GEMM family a device runs (the tiled family is
/// what CUDA runs; its launches are the same on the CPU accelerator): at small batches a GPU step costs about one
/// launch overhead per kernel, so the count is the speed. Printed as a table (benchmarks/RESULTS.md quotes it).
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.Trainers))]
public sealed class LaunchCountTests(DeviceCase deviceCase)
{
    /// <summary>Launches per step of <paramref name="o"/>'s network over 784 inputs, on synthetic data, with the kernel set of <paramref name="profile"/>.</summary>
    static double StepLaunches(ComputeDevice device, DeviceProfile profile, TrainOptions o, int steps = 3) =>
        (double)SyntheticSteps.Train(device, profile, o with { Seed = 1 }, o.BatchSize * steps).Launches / steps;

    /// <summary>Networks of W1's and W2's depth (the count depends on the depth, not the widths: narrow layers keep the CPU accelerator quick), and one with tanh, Adam and dropout.</summary>
    static readonly (string Name, TrainOptions Options)[] Workloads =
    [
        ("784-24-12-10 relu sgd (W1's depth)", new TrainOptions { Hidden = [24, 12], BatchSize = 16 }),
        ("784-8-8-8-10 relu sgd (W2's depth)", new TrainOptions { Hidden = [8, 8, 8], BatchSize = 16, Momentum = 0 }),
        ("784-12-8-10 tanh adam dropout 0.2", new TrainOptions { Hidden = [12, 8], BatchSize = 16, Activation = Activation.Tanh,
            Optimizer = OptimizerKind.Adam, Dropout = 0.2f }),
    ];

    [Test]
    public void A_training_step_launches_a_fixed_number_of_kernels_per_layer_in_every_family()
    {
        using var device = deviceCase.OpenOrIgnore();
        foreach (var family in device.Profile.RunnableFamilies)
            foreach (var (name, o) in Workloads)
            {
                int layers = o.Hidden.Length + 1;
                double got = StepLaunches(device, device.Profile with { Gemm = family }, o);
                // the gather, a forward product per layer, the loss (with the metric sums and the divergence watch), one launch per
                // layer for its weight and bias gradients, the input gradient of every layer but the first, the optimizer: 3L + 2;
                // with dropout a forward and a backward launch per hidden layer; the blocked family adds a reduction launch for each
                // product its plan splits (split-K)
                double want = 1 + layers + 1 + layers + (layers - 1) + 1 + (o.Dropout > 0 ? 2 * (layers - 1) : 0);
                if (family is BlockedFamily)
                {
                    var spec = MlpSpec.FromHidden(784, o.Hidden, 10, o.Activation, o.Loss);
                    want += DeviceMlp.Products(spec, o.BatchSize).Count(p =>
                    {
                        var (rows, cols, depth) = BlockedGemm.Shape(p.Product, p.M, p.N, p.K);
                        return BlockedGemm.Plan(rows, cols, depth, device.Profile.Multiprocessors, device.Profile.MaxGroupSize).Splits > 1;
                    });
                }
                TestContext.Out.WriteLine($"{device.Id} {family.Name,-9} {name}: {got} launches per step");
                Assert.That(got, Is.EqualTo(want), $"{family} {name}");
            }
    }
}
