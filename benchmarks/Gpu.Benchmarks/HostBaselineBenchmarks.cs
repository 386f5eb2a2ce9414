using BenchmarkDotNet.Attributes;

namespace Gpu.Benchmarks;

/// <summary>
/// Baseline for the CPU accelerator: the same scalar 4x4 register-blocked forward product as
/// GemmKernels.DenseForward, written as plain C# over float[] with Parallel.For. The gap between this
/// and the ILGPU CPU accelerator running the kernel is the cost of ILGPU's generated code and
/// thread scheduling, not of the algorithm.
/// </summary>
[Config(typeof(GpuBenchConfig))]
public class HostBaselineBenchmarks
{
    [Params("128x256x784", "512x512x512")] public string Shape { get; set; } = "128x256x784";

    float[] x = [], w = [], y = [];
    int m, n, k;

    [GlobalSetup]
    public void Setup()
    {
        var s = Shape.Split('x').Select(int.Parse).ToArray();
        (m, n, k) = (s[0], s[1], s[2]);
        var r = new Random(1);
        x = Enumerable.Range(0, m * k).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        w = Enumerable.Range(0, n * k).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        y = new float[m * n];
    }

    [Benchmark(Description = "plain C# 4x4 forward, Parallel.For")]
    public void PlainForward() => Parallel.For(0, (m / 4) * (n / 4), Block);

    void Block(int t)
    {
        int nb = n / 4, i0 = (t / nb) * 4, j0 = (t % nb) * 4;
        int xa = i0 * k, xb = xa + k, xc = xb + k, xd = xc + k, wa = j0 * k, wb = wa + k, wc = wb + k, wd = wc + k;
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < k; p++)
        {
            float a0 = x[xa + p], a1 = x[xb + p], a2 = x[xc + p], a3 = x[xd + p];
            float b0 = w[wa + p], b1 = w[wb + p], b2 = w[wc + p], b3 = w[wd + p];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
        }
        int o = i0 * n + j0;
        y[o] = c00; y[o + 1] = c01; y[o + 2] = c02; y[o + 3] = c03;
        y[o + n] = c10; y[o + n + 1] = c11; y[o + n + 2] = c12; y[o + n + 3] = c13;
        y[o + 2 * n] = c20; y[o + 2 * n + 1] = c21; y[o + 2 * n + 2] = c22; y[o + 2 * n + 3] = c23;
        y[o + 3 * n] = c30; y[o + 3 * n + 1] = c31; y[o + 3 * n + 2] = c32; y[o + 3 * n + 3] = c33;
    }
}
