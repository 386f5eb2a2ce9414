using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Gpu.Engine.Devices;

namespace Gpu.Benchmarks;

public static class Program
{
    /// <summary>
    /// Runs the suites with BenchmarkDotNet's in-process toolchain, so a self-contained published
    /// build runs on a machine without the .NET SDK (the GPU machine). Arguments go to
    /// BenchmarkSwitcher: e.g. <c>--filter *Gemm*</c>. <c>GPU_BENCH_DEVICES=cpu,cuda</c> limits devices.
    /// </summary>
    public static void Main(string[] args) =>
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, new GpuBenchConfig());
}

public sealed class GpuBenchConfig : ManualConfig
{
    public GpuBenchConfig()
    {
        AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance)
            .WithWarmupCount(3).WithIterationCount(10).WithId("in-process"));
        AddColumnProvider(DefaultColumnProviders.Instance);
        AddColumn(new GflopsColumn());
        AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default);
        AddExporter(BenchmarkDotNet.Exporters.MarkdownExporter.GitHub);
        WithOptions(ConfigOptions.DisableOptimizationsValidator | ConfigOptions.JoinSummary);
    }
}

/// <summary>GFLOP/s from the benchmark's <c>Flops</c> property and the mean time.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => "GFLOPs";
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2 m n k / mean time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics == null) return "-";
        var shape = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == "Shape")?.Value as string;
        if (shape == null) return "-";
        var s = shape.Split('x').Select(double.Parse).ToArray();
        double flops = 2 * s[0] * s[1] * s[2];
        return (flops / report.ResultStatistics.Mean).ToString("F2");   // flop per ns = GFLOP/s
    }
}

public static class BenchDevices
{
    /// <summary>cpu plus every CUDA/OpenCL device present (or the GPU_BENCH_DEVICES list).</summary>
    public static IEnumerable<string> Present()
    {
        var env = Environment.GetEnvironmentVariable("GPU_BENCH_DEVICES");
        if (!string.IsNullOrWhiteSpace(env)) return env.Split(',', StringSplitOptions.TrimEntries);
        return ComputeDevice.List().Where(d => d.Usable && d.Id.Contains(':') || d.Id == "cpu").Select(d => d.Id).ToList();
    }
}
