using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Gpu.Benchmarks;

/// <summary>The reference workloads, by name: W1 (the default train) and W2 as in README's What we measured, W3 a wide network for GPUs.</summary>
public static class Workloads
{
    public static TrainOptions Options(string name) => name switch
    {
        "W1" => new TrainOptions { Hidden = [256, 128], BatchSize = 128, LearningRate = 0.05f, Momentum = 0.9f, L2 = 1e-4f },
        "W2" => new TrainOptions { Hidden = [40, 40, 40], BatchSize = 64, LearningRate = 0.05f, Momentum = 0f, L2 = 1e-3f },
        "W3" => new TrainOptions { Hidden = [2048, 2048], BatchSize = 1024, LearningRate = 0.05f, Momentum = 0.9f, L2 = 1e-4f },
        _ => throw new ArgumentException($"unknown workload {name}"),
    };

    /// <summary>The products' precision of the training-step benchmarks: GPU_BENCH_PRECISION=tf32 or bf16 (default fp32), as --precision takes it.</summary>
    public static Precision Precision() => Words.Parse<Precision>(Environment.GetEnvironmentVariable("GPU_BENCH_PRECISION") ?? "fp32");

    /// <summary>GPU_BENCH_WORKLOADS=W1,W2 limits the workloads (W3 takes about 10 s a step on the 2-core CPU accelerator).</summary>
    public static IEnumerable<string> Selected() =>
        (Environment.GetEnvironmentVariable("GPU_BENCH_WORKLOADS") ?? "W1,W2,W3").Split(',', StringSplitOptions.TrimEntries);
}

/// <summary>Few, long iterations: a W3 step on the CPU accelerator takes seconds.</summary>
public sealed class SlowBenchConfig : ManualConfig
{
    public SlowBenchConfig()
    {
        AddJob(Job.Default.WithToolchain(new InProcessEmitToolchain(TimeSpan.FromMinutes(60), logOutput: true)).WithWarmupCount(1).WithIterationCount(5)
            .WithInvocationCount(1).WithUnrollFactor(1).WithId("in-process"));
        AddColumnProvider(BenchmarkDotNet.Columns.DefaultColumnProviders.Instance);
        AddColumn(new SamplesPerSecondColumn());
        AddColumn(new LaunchesPerStepColumn());
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        AddExporter(BenchmarkDotNet.Exporters.MarkdownExporter.GitHub);
        WithOptions(ConfigOptions.DisableOptimizationsValidator | ConfigOptions.JoinSummary);
    }
}

/// <summary>
/// One training step (device-side gather of the batch from a resident dataset, forward, softmax
/// cross-entropy, backward, fused SGD update) of W1, W2 and W3 on every device, in samples/s, with the products in
/// GPU_BENCH_PRECISION (<see cref="Workloads.Precision"/>: tf32 on tensor cores where the device has them, as a run takes it).
/// Each invocation runs <see cref="StepsPerInvocation"/> steps (20; 2 for W3) and then waits for
/// the device; the samples/s column divides by that.
/// </summary>
[Config(typeof(SlowBenchConfig))]
public class TrainingStepBenchmarks
{
    public static int StepsPerInvocation(string workload) => workload == "W3" ? 2 : 20;
    int Steps => StepsPerInvocation(Workload);
    [ParamsSource(nameof(Devices))] public string Device { get; set; } = "cpu";
    [ParamsSource(nameof(WorkloadNames))] public string Workload { get; set; } = "W1";
    public static IEnumerable<string> Devices() => BenchDevices.Present();
    public static IEnumerable<string> WorkloadNames() => Workloads.Selected();

    /// <summary>Kernel launches per training step of each (device, workload), counted by the kernel set in the setup (the launches/step column).</summary>
    public static readonly System.Collections.Concurrent.ConcurrentDictionary<(string Device, string Workload), double> LaunchesPerStep = new();

    ComputeDevice device = null!;
    DeviceMlp model = null!;
    DeviceDataset data = null!;
    TrainingStep stepper = null!;
    MinibatchScheduler scheduler = null!;
    TrainOptions options = null!;

    [GlobalSetup]
    public void Setup()
    {
        options = Workloads.Options(Workload) with { Precision = Workloads.Precision() };
        device = ComputeDevice.Open(Device);
        var kernels = KernelSet.For(device, device.ProfileFor(options.Precision));
        // synthetic images (random bytes, never zeros): enough for Steps batches without repeating one
        int count = options.BatchSize * Steps;
        var r = new Random(7);
        var pixels = new byte[count * 784];
        r.NextBytes(pixels);
        var set = new Dataset("synthetic", pixels, Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray(), 784, 10);
        var spec = MlpSpec.FromHidden(784, options.Hidden, 10);
        model = new DeviceMlp(kernels, spec, options.BatchSize);
        model.SetParameters(spec.Initialize(1));
        data = new DeviceDataset(kernels, set, options.BatchSize);
        stepper = new TrainingStep(kernels, model, data, options);
        scheduler = new MinibatchScheduler(count, options.BatchSize, 1);
        long before = kernels.Launches;
        Run();   // compile and warm up
        LaunchesPerStep[(Device, Workload)] = (double)(kernels.Launches - before) / Steps;
    }

    [GlobalCleanup] public void Cleanup() { stepper.Dispose(); model.Dispose(); data.Dispose(); device.Dispose(); }

    [Benchmark(Description = "training steps (20; W3: 2)")]
    public void Run()
    {
        Trainer.TrainEpoch(stepper, scheduler, 1, options, 0, Steps);
        model.TakeMetrics();   // waits for the device
    }
}

/// <summary>A full W1 epoch on Fashion-MNIST (54,000 training images after the default 10% validation split), without evaluation.</summary>
[Config(typeof(SlowBenchConfig))]
public class EpochBenchmarks
{
    [ParamsSource(nameof(Devices))] public string Device { get; set; } = "cpu";
    [Params(DataPath.Resident, DataPath.Stream)] public DataPath Path { get; set; }
    public static IEnumerable<string> Devices() => BenchDevices.Present();

    ComputeDevice device = null!;
    DeviceMlp model = null!;
    IBatchSource data = null!;
    TrainingStep stepper = null!;
    MinibatchScheduler scheduler = null!;
    TrainOptions options = null!;
    int epoch;

    [GlobalSetup]
    public void Setup()
    {
        options = Workloads.Options("W1");
        device = ComputeDevice.Open(Device);
        var kernels = KernelSet.For(device);
        var folder = DataLocator.Resolve("data/fashion-mnist");
        var (train, _) = Idx.ReadFolder(folder).Train.Split(options.ValFraction, options.Seed);
        var spec = MlpSpec.FromHidden(784, options.Hidden, 10);
        model = new DeviceMlp(kernels, spec, options.BatchSize);
        model.SetParameters(spec.Initialize(1));
        data = Path == DataPath.Stream ? new StreamedDataset(device.Accelerator, kernels.Stream, train, options.BatchSize) : new DeviceDataset(kernels, train, options.BatchSize);
        stepper = new TrainingStep(kernels, model, data, options);
        scheduler = new MinibatchScheduler(train.Count, options.BatchSize, 1);
    }

    [GlobalCleanup] public void Cleanup() { stepper.Dispose(); model.Dispose(); data.Dispose(); device.Dispose(); }

    [Benchmark(Description = "W1 epoch, 54,000 images")]
    public void Epoch()
    {
        epoch++;
        Trainer.TrainEpoch(stepper, scheduler, epoch, options, 0, 10 * scheduler.StepsPerEpoch);
        model.TakeMetrics();
    }
}
