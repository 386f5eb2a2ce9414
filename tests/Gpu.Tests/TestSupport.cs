using System.Text;
using Gpu.Engine.Data;
using Gpu.Engine.Runtime;
using Gpu.Engine;
using ILGPU;

namespace Gpu.Tests;

/// <summary>A device to run kernel tests on: kind and ILGPU optimisation level.</summary>
public sealed record DeviceCase(string Device, OptimizationLevel Level)
{
    public override string ToString() => $"{Device}@{Level}";

    /// <summary>
    /// The CPU accelerator and CUDA, each at O1 and O2, and the first OpenCL device at O2 (an OpenCL CPU
    /// device without generic address space, like POCL, runs ILGPU's kernels at O2 only: see
    /// Runtime/OpenClRule.cs; DeviceTests checks that O1 is refused there). A missing OpenCL device is
    /// reported skipped with the reason, except where the environment says it must be there:
    /// GPU_REQUIRE_OPENCL=1 (set by .ci/run, which installs POCL) turns it into a failure. The CUDA cases
    /// exist only where a CUDA device is (or GPU_REQUIRE_CUDA=1): elsewhere one test,
    /// <c>CudaCasesTests</c>, reports them skipped once, with the reason, instead of hundreds of skipped lines.
    /// </summary>
    public static IEnumerable<DeviceCase> All() =>
    [
        new("cpu", OptimizationLevel.O1), new("cpu", OptimizationLevel.O2),
        new("opencl", OptimizationLevel.O2),
        .. CudaMissing == null || Required("cuda") ? new DeviceCase[] { new("cuda", OptimizationLevel.O1), new("cuda", OptimizationLevel.O2) } : [],
    ];

    /// <summary>
    /// The profile a device of this name has where the tests run (what decides which kernel cases are generated for it): the
    /// CPU accelerator's groups of 4 threads; an OpenCL CPU device (POCL, which CI installs); a CUDA GPU of compute capability
    /// 8.0 or later (the tensor-core family's cases are generated; an older GPU skips them).
    /// </summary>
    internal Gpu.Engine.Runtime.DeviceProfile NominalProfile => Device switch
    {
        "cpu" => Gpu.Engine.Runtime.DeviceProfile.For(Gpu.Engine.Runtime.DeviceKind.CpuAccelerator, 1L << 30),
        "opencl" => Gpu.Engine.Runtime.DeviceProfile.For(Gpu.Engine.Runtime.DeviceKind.OpenClCpu, 1L << 30, maxGroupSize: 4096),
        _ => Gpu.Engine.Runtime.DeviceProfile.For(Gpu.Engine.Runtime.DeviceKind.Cuda, 1L << 30, computeCapability: (8, 0)),
    };

    /// <summary>Why no CUDA device can be opened here; null when one can.</summary>
    public static string? CudaMissing => cudaMissing.Value;

    static readonly Lazy<string?> cudaMissing = new(() =>
    {
        try { using var d = ComputeDevice.Open("cuda"); return null; }
        catch (UserError e) { return e.Message; }
    });

    /// <summary>The devices training tests run on: the CPU accelerator and the OpenCL device, at the engine's level (O2).</summary>
    public static IEnumerable<DeviceCase> Trainers() => [new("cpu", OptimizationLevel.O2), new("opencl", OptimizationLevel.O2)];

    /// <summary>Whether a missing <paramref name="device"/> fails the run instead of skipping (GPU_REQUIRE_OPENCL=1 / GPU_REQUIRE_CUDA=1).</summary>
    public static bool Required(string device) => Environment.GetEnvironmentVariable($"GPU_REQUIRE_{device.ToUpperInvariant()}") == "1";

    /// <summary>Opens the device, or marks the calling test(s) as skipped when it is not present (and not required).</summary>
    internal ComputeDevice OpenOrIgnore()
    {
        try { return ComputeDevice.Open(Device, Level); }
        catch (UserError e) when (Device != "cpu" && !Required(Device))
        {
            Assert.Ignore($"skipped: {e.Message}");
            throw;
        }
    }
}

public static class Rand
{
    /// <summary>Deterministic uniform floats in [-scale, scale).</summary>
    public static float[] Floats(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)((r.NextDouble() * 2 - 1) * scale);
        return a;
    }

    public static double[] D(float[] a) => a.Select(v => (double)v).ToArray();
}

public static class Compare
{
    /// <summary>||out - ref|| / ||ref||; NaN anywhere in out makes it NaN (so it fails every bound).</summary>
    public static double RelativeError(float[] got, double[] want)
    {
        Assert.That(got, Has.Length.EqualTo(want.Length), "length");
        return Gpu.Engine.Analysis.KernelCheck.RelativeError(got, want);
    }

    public static void Close(float[] got, double[] want, double tolerance = 1e-5, string what = "")
    {
        int nan = got.Count(float.IsNaN);
        Assert.That(nan, Is.Zero, $"{what}: {nan} outputs still NaN (never written)");
        double e = RelativeError(got, want);
        Assert.That(e, Is.LessThan(tolerance), $"{what}: relative error {e:E3}");
    }
}

/// <summary>Where the repository's data lives, from the test binary's folder.</summary>
public static class Repo
{
    public static string Root
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Gpu.sln"))) return d.FullName;
            throw new InvalidOperationException("repository root (Gpu.sln) not found above " + AppContext.BaseDirectory);
        }
    }

    public static string FashionMnist => Path.Combine(Root, "data", "fashion-mnist");
}

/// <summary>Base of tests that need a scratch folder: a fresh one per test in <see cref="dir"/>, deleted afterwards.</summary>
public abstract class TempFolderTest
{
    protected string dir = null!;

    [SetUp] public void MakeTempFolder() { dir = Path.Combine(Path.GetTempPath(), "gpu-test-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(dir); }
    [TearDown] public void RemoveTempFolder() { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
}

/// <summary>Runs the program in-process and checks the shape of user-error reports.</summary>
public static class CliRun
{
    public static (int Code, string Out, string Err) Run(string[] args, CancellationToken stop)
    {
        var o = new StringWriter(); var e = new StringWriter();
        int code = Gpu.Cli.Program.Run(args, o, e, stop);
        return (code, o.ToString(), e.ToString());
    }

    public static (int Code, string Out, string Err) Run(params string[] args) => Run(args, default);

    /// <summary>Exit code <paramref name="code"/> (any non-zero when null), one line on stderr starting "error: " and containing <paramref name="contains"/>, no stack trace.</summary>
    public static void AssertOneLineError((int Code, string Out, string Err) r, string contains, int? code = null)
    {
        if (code is int c) Assert.That(r.Code, Is.EqualTo(c), "exit code; stderr: " + r.Err);
        else Assert.That(r.Code, Is.Not.Zero, "exit code");
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(1), "one line on stderr: " + r.Err);
        Assert.That(r.Err, Does.StartWith("error: ").And.Contain(contains));
        Assert.That(r.Err, Does.Not.Contain("   at "), "no stack trace");
    }
}

/// <summary>Writes the data files users have: NPY arrays of any type and shape, and CSV tables.</summary>
public static class TestFiles
{
    /// <summary>Writes a C-order .npy v1.0 file with the given descr, shape and little-endian element bytes.</summary>
    public static void WriteNpy(string path, string descr, int[] shape, byte[] data)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}";
        int pad = (64 - (10 + dict.Length + 1) % 64) % 64;
        var header = dict + new string(' ', pad) + "\n";
        using var f = File.Create(path);
        f.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, (byte)(header.Length >> 8)]);
        f.Write(Encoding.ASCII.GetBytes(header));
        f.Write(data);
    }

    public static byte[] Floats(IEnumerable<float> v) => v.SelectMany(BitConverter.GetBytes).ToArray();
    public static byte[] Longs(IEnumerable<long> v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>The dataset as CSV rows <c>label,pixel0,...</c> (pixels only without <paramref name="labels"/>), with an optional header.</summary>
    internal static string Csv(Dataset d, bool header, bool labels = true)
    {
        var sb = new StringBuilder();
        string first = labels ? "label," : "";
        if (header) sb.AppendLine(first + string.Join(",", Enumerable.Range(0, d.Features).Select(i => $"pixel{i}")));
        for (int i = 0; i < d.Count; i++)
            sb.AppendLine((labels ? d.Labels[i] + "," : "") + string.Join(",", d.Pixels.Skip(i * d.Features).Take(d.Features)));
        return sb.ToString();
    }
}

/// <summary>Small IDX data folders of random images, as users' data folders hold them (gzip-compressed).</summary>
public static class SyntheticData
{
    /// <summary>An IDX file of unsigned bytes with the given dimensions.</summary>
    public static byte[] Idx(int[] dims, byte[] data)
    {
        var h = new List<byte> { 0, 0, 0x08, (byte)dims.Length };
        foreach (var d in dims) h.AddRange([(byte)(d >> 24), (byte)(d >> 16), (byte)(d >> 8), (byte)d]);
        return [.. h, .. data];
    }

    public static void Gz(string path, byte[] bytes)
    {
        using var f = File.Create(path);
        using var z = new System.IO.Compression.GZipStream(f, System.IO.Compression.CompressionLevel.Fastest);
        z.Write(bytes);
    }

    /// <summary>A folder of the four IDX files: random pixels from <paramref name="seed"/>, labels i % 10.</summary>
    public static string Folder(string folder, int features = 784, int train = 300, int test = 100, int seed = 5)
    {
        Directory.CreateDirectory(folder);
        var r = new Random(seed);
        byte[] Pixels(int n) { var p = new byte[n * features]; r.NextBytes(p); return p; }
        byte[] Labels(int n) => Enumerable.Range(0, n).Select(i => (byte)(i % 10)).ToArray();
        Gz(Path.Combine(folder, "train-images-idx3-ubyte.gz"), Idx([train, features], Pixels(train)));
        Gz(Path.Combine(folder, "train-labels-idx1-ubyte.gz"), Idx([train], Labels(train)));
        Gz(Path.Combine(folder, "t10k-images-idx3-ubyte.gz"), Idx([test, features], Pixels(test)));
        Gz(Path.Combine(folder, "t10k-labels-idx1-ubyte.gz"), Idx([test], Labels(test)));
        return folder;
    }
}

/// <summary>Training steps on random 784-pixel images, straight through the runtime (no CLI, no files): what a TrainingStep runs and launches.</summary>
internal static class SyntheticSteps
{
    /// <summary>The outcome: the final parameters, the training step (its counts and mode) and the launches the kernel set enqueued.</summary>
    public sealed record Outcome(float[] Parameters, Gpu.Engine.Runtime.TrainingStep Step, long Launches);

    /// <summary>
    /// Trains <paramref name="o"/>'s network (784 inputs, 10 classes) for <paramref name="epochs"/> epochs over <paramref name="count"/>
    /// random images (seed 5) on the resident data path, with the kernel set of <paramref name="profile"/>.
    /// </summary>
    public static Outcome Train(Gpu.Engine.Runtime.ComputeDevice device, Gpu.Engine.Runtime.DeviceProfile profile, Gpu.Engine.Settings.TrainOptions o,
        int count, int epochs = 1)
    {
        var kernels = Gpu.Engine.Runtime.KernelSet.For(device, profile);
        var r = new Random(5);
        var pixels = new byte[count * 784];
        r.NextBytes(pixels);
        var data = new Gpu.Engine.Data.Dataset("synthetic", pixels, Enumerable.Range(0, count).Select(_ => r.Next(10)).ToArray(), 784, 10);
        var spec = Gpu.Engine.Model.MlpSpec.FromHidden(784, o.Hidden, 10, o.Activation, o.Loss);
        using var model = new Gpu.Engine.Runtime.DeviceMlp(kernels, spec, o.BatchSize);
        model.SetParameters(spec.Initialize(o.Seed));
        using var source = new Gpu.Engine.Runtime.DeviceDataset(kernels, data, o.BatchSize);
        var stepper = new Gpu.Engine.Runtime.TrainingStep(kernels, model, source, o);
        var scheduler = new Gpu.Engine.Training.MinibatchScheduler(count, o.BatchSize, o.Seed);
        long before = kernels.Launches, step = 0, total = (long)epochs * scheduler.StepsPerEpoch;
        for (int e = 1; e <= epochs; e++) step = Gpu.Engine.Training.Trainer.TrainEpoch(stepper, scheduler, e, o, step, total);
        long launched = kernels.Launches - before;
        model.TakeMetrics();
        stepper.Dispose();
        return new Outcome(model.GetParameters(), stepper, launched);
    }
}
