using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using BenchmarkDotNet.Attributes;
using ILGPU.Runtime;
using ILGPU;

namespace Gpu.Benchmarks;

/// <summary>
/// GEMM throughput of the engine's three dense-layer products at the W1 layer shapes (batch 128),
/// and square 512^3, on every device present, in every GEMM family those devices all run (the families race).
/// GFLOP/s = 2 m n k / time; the custom column prints it. Kernels are compiled in GlobalSetup, so only launches
/// are timed; each invocation waits for the device.
/// </summary>
[Config(typeof(GpuBenchConfig))]
public class GemmBenchmarks
{
    [ParamsSource(nameof(Devices))] public string Device { get; set; } = "cpu";

    /// <summary>m x n x k: Y[m,n] = X[m,k] . W[n,k]^T (and the matching backward products).</summary>
    [ParamsSource(nameof(Shapes))] public string Shape { get; set; } = "128x256x784";

    /// <summary>A GEMM family by its word (Runtime/Gemm/GemmFamilies.cs).</summary>
    [ParamsSource(nameof(Families))] public string Family { get; set; } = "scalar";

    public static IEnumerable<string> Devices() => BenchDevices.Present();

    /// <summary>The families every benchmarked device runs (GPU_BENCH_FAMILIES=blocked,tiled limits them).</summary>
    public static IEnumerable<string> Families()
    {
        var kinds = Devices().Select(BenchDevices.Kind).ToList();
        var all = GemmFamilies.All.Where(f => kinds.All(f.RunsOn)).Select(f => f.Name);
        var only = Environment.GetEnvironmentVariable("GPU_BENCH_FAMILIES");
        return string.IsNullOrWhiteSpace(only) ? all : all.Intersect(only.Split(',', StringSplitOptions.TrimEntries));
    }

    /// <summary>
    /// The W1 layer shapes, 512^3 and 1024^3; 4096^3 too when no host device (CPU accelerator, OpenCL CPU) is among the devices, or with
    /// GPU_BENCH_LARGE=1. GPU_BENCH_SHAPES=1024x1024x1024,4096x4096x4096 measures only those (benchmarks/gpu/first-light.sh).
    /// </summary>
    public static IEnumerable<string> Shapes()
    {
        var only = Environment.GetEnvironmentVariable("GPU_BENCH_SHAPES");
        if (!string.IsNullOrWhiteSpace(only)) return only.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        string[] shapes = ["128x256x784", "128x128x256", "128x10x128", "512x512x512", "1024x1024x1024"];
        bool large = Environment.GetEnvironmentVariable("GPU_BENCH_LARGE") == "1" || !Devices().Any(BenchDevices.IsHost);
        return large ? [.. shapes, "4096x4096x4096"] : shapes;
    }

    ComputeDevice device = null!;
    KernelSet k = null!;
    MemoryBuffer1D<float, Stride1D.Dense> x = null!, w = null!, b = null!, y = null!, dz = null!, dw = null!, dx = null!;
    int m, n, kk;

    [GlobalSetup]
    public void Setup()
    {
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        (m, n, kk) = (s[0], s[1], s[2]);
        device = ComputeDevice.Open(Device);
        k = KernelSet.For(device, device.Profile with { Gemm = GemmFamilies.Parse(Family).InOwnPrecision() });   // tensor-tf32, tensor-bf16: their TF32 and bf16 products
        var a = device.Accelerator;
        var r = new Random(1);
        float[] R(int len) => Enumerable.Range(0, len).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        x = a.Allocate1D(R(m * kk)); w = a.Allocate1D(R(n * kk)); b = a.Allocate1D(R(n)); y = a.Allocate1D<float>(m * n);
        dz = a.Allocate1D(R(m * n)); dw = a.Allocate1D<float>(n * kk); dx = a.Allocate1D<float>(m * kk);
        Forward(); WeightGrad(); InputGrad();   // compile and warm up
    }

    [GlobalCleanup] public void Cleanup() { foreach (var buf in new[] { x, w, b, y, dz, dw, dx }) buf.Dispose(); device.Dispose(); }

    public double Flops => 2.0 * m * n * kk;

    [Benchmark(Description = "forward Y = act(X.W^T + b)")]
    public void Forward() { k.DenseForward(x.View, w.View, b.View, y.View, m, n, kk, Activation.Relu); device.Accelerator.Synchronize(); }

    [Benchmark(Description = "weight grad dW = dZ^T.H")]
    public void WeightGrad() { k.WeightGrad(dz.View, x.View, dw.View, m, n, kk); device.Accelerator.Synchronize(); }

    [Benchmark(Description = "input grad dX = dZ.W (masked)")]
    public void InputGrad() { k.InputGrad(dz.View, w.View, x.View, dx.View, m, n, kk, Activation.Relu); device.Accelerator.Synchronize(); }
}
