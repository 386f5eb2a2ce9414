using Gpu.Engine.Runtime;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Gpu.Benchmarks;

public static class Program
{
    /// <summary>
    /// Runs the suites with BenchmarkDotNet's in-process toolchain, so a self-contained published
    /// build runs on a machine without the .NET SDK (the GPU machine). Arguments go to
    /// BenchmarkSwitcher: e.g. <c>--filter *Gemm*</c>. <c>GPU_BENCH_DEVICES=cpu,cuda</c> limits devices.
    /// <c>Gpu.Benchmarks gpu VERB ...</c> runs the gpu program instead, so that one self-contained file
    /// (one .NET runtime inside) carries both to a GPU machine (benchmarks/gpu/publish.sh).
    /// <c>Gpu.Benchmarks plans [DEVICE] [JSON]</c> races the blocked family's plans (<see cref="PlanRace"/>).
    /// </summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "gpu") return Gpu.Cli.Program.Main(args[1..]);
        if (args.Length > 0 && args[0] == "plans") return PlanRace.Run(args[1..]);
        // Each suite names its own job through [Config]; the global config adds no job of its own.
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args,
            ManualConfig.CreateEmpty().WithOptions(ConfigOptions.DisableOptimizationsValidator | ConfigOptions.JoinSummary));
        return 0;
    }
}

public sealed class GpuBenchConfig : ManualConfig
{
    /// <summary>
    /// GPU_BENCH_QUICK=1 (benchmarks/gpu/first-light.sh sets it): 1 warm-up and 5 iterations of about 100 ms each, no
    /// overhead stage, instead of 3 warm-ups and 10 iterations of about 500 ms; about 1-2 s a case on a GPU instead of 7-10 s.
    /// </summary>
    public static bool Quick => Environment.GetEnvironmentVariable("GPU_BENCH_QUICK") == "1";

    public GpuBenchConfig()
    {
        var job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance);
        AddJob(Quick
            ? job.WithWarmupCount(1).WithIterationCount(5).WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(100))
                .WithEvaluateOverhead(false).WithId("in-process-quick")
            : job.WithWarmupCount(3).WithIterationCount(10).WithId("in-process"));
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddColumn(new GflopsColumn());
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        AddExporter(BenchmarkDotNet.Exporters.MarkdownExporter.GitHub);
        WithOptions(ConfigOptions.DisableOptimizationsValidator | ConfigOptions.JoinSummary);
    }
}

/// <summary>A derived figure per benchmark case, computed from its parameters and mean time (ns).</summary>
public abstract class DerivedColumn(string id, string name, string legend) : IColumn
{
    public string Id => id;
    public string ColumnName => name;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => legend;
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var mean = summary[benchmarkCase]?.ResultStatistics?.Mean;
        return mean is double ns ? Compute(benchmarkCase, ns) : "-";
    }

    protected static string? Param(BenchmarkCase c, string name) => c.Parameters.Items.FirstOrDefault(p => p.Name == name)?.Value?.ToString();

    protected abstract string Compute(BenchmarkCase benchmarkCase, double meanNs);
}

/// <summary>GFLOP/s from the case's Shape (m x n x k) and the mean time: 2 m n k / ns.</summary>
public sealed class GflopsColumn() : DerivedColumn("GFLOPs", "GFLOP/s", "2 m n k / mean time")
{
    protected override string Compute(BenchmarkCase c, double ns)
    {
        if (Param(c, "Shape") is not string shape) return "-";
        var s = shape.Split('x').Select(double.Parse).ToArray();
        return (2 * s[0] * s[1] * s[2] / ns).ToString("F2");   // flop per ns = GFLOP/s
    }
}

/// <summary>Images trained per second: batch x steps per invocation for a step benchmark, 54,000 for an epoch.</summary>
public sealed class SamplesPerSecondColumn() : DerivedColumn("SamplesPerSecond", "samples/s", "images trained per second")
{
    protected override string Compute(BenchmarkCase c, double ns)
    {
        var workload = Param(c, "Workload");
        if (workload == null && Param(c, "Path") == null) return "-";   // not a training benchmark (a joined summary shows every column)
        double images = workload != null
            ? Workloads.Options(workload).BatchSize * TrainingStepBenchmarks.StepsPerInvocation(workload)
            : 54000;
        return (images / (ns * 1e-9)).ToString("N0");
    }
}

/// <summary>Kernel launches per training step, as the kernel set counted them in the suite's setup.</summary>
public sealed class LaunchesPerStepColumn() : DerivedColumn("LaunchesPerStep", "launches/step", "kernel launches per training step (KernelSet.Launches)")
{
    protected override string Compute(BenchmarkCase c, double ns) =>
        Param(c, "Device") is string d && Param(c, "Workload") is string w && TrainingStepBenchmarks.LaunchesPerStep.TryGetValue((d, w), out var n)
            ? n.ToString("0.##") : "-";
}

public static class BenchDevices
{
    /// <summary>Whether a device id names the host's processor: the CPU accelerator, or an OpenCL CPU device (judged by the device list).</summary>
    public static bool IsHost(string id) => id == "cpu" || ComputeDevice.List().Any(d => d.Id == id && d.Kind == "OpenCL CPU");

    /// <summary>The kind of the device an id names (cpu, cuda:N, opencl:N as the device list reports it).</summary>
    internal static DeviceKind Kind(string id) => id == "cpu" ? DeviceKind.CpuAccelerator
        : id.StartsWith("cuda") ? DeviceKind.Cuda
        : ComputeDevice.List().Any(d => d.Id == id && d.Kind == "OpenCL CPU") ? DeviceKind.OpenClCpu : DeviceKind.OpenClGpu;

    /// <summary>cpu plus every CUDA/OpenCL device present (or the GPU_BENCH_DEVICES list).</summary>
    public static IEnumerable<string> Present()
    {
        var env = Environment.GetEnvironmentVariable("GPU_BENCH_DEVICES");
        if (!string.IsNullOrWhiteSpace(env)) return env.Split(',', StringSplitOptions.TrimEntries);
        return ComputeDevice.List().Where(d => d.Usable && d.Id.Contains(':') || d.Id == "cpu").Select(d => d.Id).ToList();
    }
}

