using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Benchmarks;

/// <summary>
/// The blocked family's plans raced against each other (`Gpu.Benchmarks plans [DEVICE] [JSON]`): for every product of one
/// training step of W1, W2 and W3 (and 1024^3), every tile the device runs at split factors from 1 to 32, timed on the
/// device (profiling markers around 20 back-to-back launches after a warm-up one; 4 for a plan slower than 1 ms).
/// Each product's row is printed as soon as it is raced, so a run cut short still reports what it reached. It prints, per product,
/// the planner's (modelled) plan and the fastest measured one with their times, and writes every measurement to JSON,
/// so that the model can be checked against the device (benchmarks/RESULTS.md).
/// </summary>
public static class PlanRace
{
    static readonly int[] SplitChoices = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32];

    public static int Run(string[] args)
    {
        string id = args.Length > 0 ? args[0] : "auto";
        string? json = args.Length > 1 ? args[1] : null;
        using var device = ComputeDevice.Open(id);
        var gemm = BlockedGemm.For(device.Accelerator);
        var a = device.Accelerator;
        var stream = device.Stream;
        var shapes = new List<(string Where, GemmProduct Product, int M, int N, int K)>();
        foreach (var w in new[] { "W1", "W2", "W3" })
        {
            var o = Workloads.Options(w);
            var spec = MlpSpec.FromHidden(784, o.Hidden, 10);
            foreach (var (product, m, n, k) in DeviceMlp.Products(spec, o.BatchSize))
                if (!shapes.Any(s => (s.Product, s.M, s.N, s.K) == (product, m, n, k))) shapes.Add((w, product, m, n, k));
        }
        shapes.Add(("1024^3", GemmProduct.Forward, 1024, 1024, 1024));   // (4096^3 is BenchmarkDotNet's: the race would spend minutes on it)

        Console.WriteLine($"# Plan race on {device.Describe()}: {device.Profile.Multiprocessors} multiprocessors; times per product on the device (us)");
        Console.WriteLine();
        Console.WriteLine("| where | product | m x n x k | C (rows x cols over depth) | planner's plan | us | fastest plan | us | planner / fastest | fastest TFLOP/s |");
        Console.WriteLine("|---|---|---|---|---|---:|---|---:|---:|---:|");
        var all = new List<object>();
        var watch = Stopwatch.StartNew();
        foreach (var (where, product, m, n, k) in shapes)
        {
            var (rows, cols, depth) = BlockedGemm.Shape(product, m, n, k);
            // X or H [m,k], W [n,k], dZ [m,n], the output, a bias or db [n]: each plan timed through the product the step runs
            using var x = a.Allocate1D<float>((long)m * k); using var w = a.Allocate1D<float>((long)n * k); using var dz = a.Allocate1D<float>((long)m * n);
            using var output = a.Allocate1D<float>((long)rows * cols); using var bias = a.Allocate1D<float>(n);
            x.MemSetToZero(); w.MemSetToZero(); dz.MemSetToZero(); bias.MemSetToZero();
            // device time per launch: after a warm-up launch, 20 back-to-back launches between two markers (4 for a plan slower than 1 ms)
            double Time(GemmPlan plan)
            {
                void Once()
                {
                    if (product == GemmProduct.Forward) gemm.DenseForward(stream, x.View, w.View, bias.View, output.View, m, n, k, Activation.Relu, plan);
                    else if (product == GemmProduct.InputGrad) gemm.InputGrad(stream, dz.View, w.View, x.View, output.View, m, n, k, Activation.Relu, plan);
                    else gemm.WeightGrad(stream, dz.View, x.View, output.View, bias.View, m, n, k, plan);
                }
                double Measure(int reps)
                {
                    using var start = stream.AddProfilingMarker();
                    for (int i = 0; i < reps; i++) Once();
                    using var end = stream.AddProfilingMarker();
                    end.Synchronize();
                    return end.MeasureFrom(start).TotalMilliseconds * 1000 / reps;
                }
                Once();
                double one = Measure(1);
                return Measure(one > 1000 ? 4 : 20);
            }
            var model = gemm.Plan(rows, cols, depth);
            var times = new List<(GemmPlan Plan, double Us)>();
            foreach (var tile in BlockedGemm.Tiles.Where(t => t.Threads <= a.MaxNumThreadsPerGroup && (t.Name != BlockedGemm.TinyTile || a.MaxNumThreadsPerGroup < 32)))
                foreach (int s in SplitChoices.Where(s => s <= tile.MaxSplits(depth)).Select(s => tile.Split(depth, s).Splits).Distinct())
                {
                    if ((long)s * rows * cols > 1L << 28) continue;   // a workspace over 1 GB
                    var plan = new GemmPlan(tile.Name, s);
                    times.Add((plan, Time(plan)));
                }
            double modelUs = times.FirstOrDefault(t => t.Plan == model).Us;
            if (modelUs == 0) modelUs = Time(model);
            var best = times.MinBy(t => t.Us);
            double tflops = 2.0 * rows * cols * depth / (best.Us * 1e-6) / 1e12;
            Console.WriteLine($"| {where} | {product} | {m}x{n}x{k} | {rows}x{cols} over {depth} | {model} | {modelUs:F1} | {best.Plan} | {best.Us:F1} | {modelUs / best.Us:F2}x | {tflops:F2} |");
            all.Add(new { where, product = product.ToString(), m, n, k, rows, cols, depth, model = model.ToString(), modelUs,
                plans = times.Select(t => new { plan = t.Plan.ToString(), tile = t.Plan.Tile, splits = t.Plan.Splits, us = t.Us }).ToList() });
        }
        Console.WriteLine();
        Console.WriteLine($"{shapes.Count} products raced in {watch.Elapsed.TotalSeconds:F1} s");
        if (json != null) File.WriteAllText(json, JsonSerializer.Serialize(new { device = device.Describe(), multiprocessors = device.Profile.Multiprocessors, products = all },
            new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }
}
