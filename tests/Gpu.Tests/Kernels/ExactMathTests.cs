using Gpu.Engine.Reference;
using Gpu.Engine.Runtime;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Tests.Kernels;

/// <summary>Errors in ulp of a float result against the exact (float64) value, and the sweeps the exp/log tests run.</summary>
public static class Ulp
{
    /// <summary>
    /// |got - want| in units of the float spacing at want (2^-149 below the normal range). Where want rounds to a float
    /// infinity (an overflow), 0 if got is that infinity, else infinity; NaN wanted: 0 if got is NaN, else infinity.
    /// </summary>
    public static double Error(float got, double want)
    {
        if (double.IsNaN(want)) return float.IsNaN(got) ? 0 : double.PositiveInfinity;
        if (float.IsInfinity((float)want)) return got == (float)want ? 0 : double.PositiveInfinity;
        if (float.IsNaN(got) || float.IsInfinity(got)) return double.PositiveInfinity;
        double a = Math.Abs(want);
        double ulp = a < Math.Pow(2, -126) ? Math.Pow(2, -149) : Math.Pow(2, Math.ILogB(a) - 23);
        return Math.Abs(got - want) / ulp;
    }

    /// <summary>Every <paramref name="stride"/>-th float from bit pattern <paramref name="from"/> to <paramref name="to"/> (inclusive, as unsigned patterns), and <paramref name="to"/> itself.</summary>
    public static IEnumerable<float> Patterns(uint from, uint to, uint stride)
    {
        for (ulong b = from; b <= to; b += stride) yield return BitConverter.UInt32BitsToSingle((uint)b);
        yield return BitConverter.UInt32BitsToSingle(to);
    }

    public static uint Bits(float x) => BitConverter.SingleToUInt32Bits(x);

    /// <summary>The arguments exp is checked at: floats of both signs up to 104 in magnitude by bit pattern (zero, subnormals, every binade), and an even grid over [-104, 89] (the subnormal results and the overflow edge).</summary>
    public static IEnumerable<float> ExpArguments(uint stride)
    {
        foreach (var x in Patterns(0, Bits(104f), stride)) { yield return x; yield return -x; }
        for (int i = 0; i <= 2_000_000; i++) yield return -104f + 193f * i / 2_000_000;
    }

    /// <summary>The arguments log is checked at: every positive finite float by bit pattern (subnormals included), and every float in [0.5, 2) (around 1, where log is near 0).</summary>
    public static IEnumerable<float> LogArguments(uint stride, uint strideNearOne)
    {
        foreach (var x in Patterns(1, Bits(float.MaxValue), stride)) yield return x;
        foreach (var x in Patterns(Bits(0.5f), Bits(2f) - 1, strideNearOne)) yield return x;
    }

    /// <summary>The arguments log1p is checked at: (-1, 0] and [0, max] by bit pattern, and every float in [-2^-8, 2^-8] by a finer stride.</summary>
    public static IEnumerable<float> Log1pArguments(uint stride, uint strideNearZero)
    {
        foreach (var x in Patterns(0, Bits(float.MaxValue), stride)) yield return x;
        foreach (var x in Patterns(Bits(-0f), Bits(-1f) - 1, stride)) yield return x;
        foreach (var x in Patterns(0, Bits(1f / 256), strideNearZero)) { yield return x; yield return -x; }
    }

    /// <summary>Special arguments: signed zeros, the smallest and largest subnormals and normals, infinities, NaN, the overflow and underflow edges, -1.</summary>
    public static readonly float[] Specials =
    [
        0f, -0f, float.Epsilon, -float.Epsilon, BitConverter.UInt32BitsToSingle(0x007fffff), BitConverter.UInt32BitsToSingle(0x00800000),
        float.MaxValue, -float.MaxValue, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1f, -1f, 2f, 0.5f,
        88.72283f, 88.72284f, 88.8f, 89f, -87.33655f, -87.5f, -103.27893f, -103.97207f, -103.9721f, -104f, -105f, 1e-30f, -1e-30f,
        1.0000001f, 0.99999994f, -0.99999994f, 5.96046448e-8f, -5.96046448e-8f, 0.41421354f, -0.29289323f, 3.4e38f,
    ];

    /// <summary>ln(1 + x) in double for x &gt; -1, exact enough to judge a float: the float64 oracle's own log1p.</summary>
    public static double Log1p(double x) => ReferenceMlp.Log1p(x);
}

/// <summary>
/// <see cref="ExactMath"/> on the host against float64: the largest error in ulp over dense sweeps of the whole float range
/// (printed), bounded, and the IEEE results at the edges (zeros, subnormals, overflow, underflow, infinities, NaN).
/// </summary>
public sealed class ExactMathTests
{
    /// <summary>The largest error allowed, in ulp (the sweeps measure about 1).</summary>
    public const double MaxUlp = 1.5;

    static (double Worst, float At, long Count) Sweep(IEnumerable<float> xs, Func<float, float> f, Func<double, double> exact)
    {
        double worst = 0; float at = 0; long n = 0;
        foreach (var x in xs)
        {
            double e = Ulp.Error(f(x), exact(x));
            if (e > worst || double.IsNaN(e)) (worst, at) = (e, x);
            n++;
        }
        return (worst, at, n);
    }

    static void Report(string name, (double Worst, float At, long Count) r)
    {
        TestContext.Out.WriteLine($"{name}: worst {r.Worst:F3} ulp at x = {r.At:R} ({Ulp.Bits(r.At):x8}) over {r.Count:N0} arguments");
        Assert.That(r.Worst, Is.LessThanOrEqualTo(MaxUlp), $"{name} at {r.At:R}");
    }

    [Test]
    public void Exp_is_within_a_few_ulp_of_float64() =>
        Report("exp", Sweep(Ulp.ExpArguments(61).Concat(Ulp.Specials), ExactMath.Exp, Math.Exp));

    [Test]
    public void Log_is_within_a_few_ulp_of_float64() =>
        Report("log", Sweep(Ulp.LogArguments(127, 1).Concat(Ulp.Specials), ExactMath.Log, Math.Log));

    [Test]
    public void Log1p_is_within_a_few_ulp_of_float64() =>
        Report("log1p", Sweep(Ulp.Log1pArguments(127, 31).Concat(Ulp.Specials), ExactMath.Log1p, Ulp.Log1p));

    [Test]
    public void Exp_edges_are_ieee()
    {
        Assert.That(ExactMath.Exp(0f), Is.EqualTo(1f));
        Assert.That(ExactMath.Exp(-0f), Is.EqualTo(1f));
        Assert.That(ExactMath.Exp(float.Epsilon), Is.EqualTo(1f), "a subnormal argument");
        Assert.That(ExactMath.Exp(1f), Is.EqualTo((float)Math.E));
        Assert.That(ExactMath.Exp(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
        Assert.That(ExactMath.Exp(float.NegativeInfinity), Is.EqualTo(0f));
        Assert.That(float.IsNaN(ExactMath.Exp(float.NaN)), Is.True);
        Assert.That(ExactMath.Exp(88.72283f), Is.EqualTo((float)Math.Exp(88.72283f)).And.LessThan(float.PositiveInfinity), "the largest finite result");
        Assert.That(ExactMath.Exp(88.72284f), Is.EqualTo(float.PositiveInfinity), "overflow");
        Assert.That(ExactMath.Exp(float.MaxValue), Is.EqualTo(float.PositiveInfinity));
        Assert.That(ExactMath.Exp(-90f), Is.EqualTo((float)Math.Exp(-90)).And.GreaterThan(0f).And.LessThan(1.2e-38f), "a subnormal result");
        Assert.That(ExactMath.Exp(-103.9f), Is.EqualTo(float.Epsilon), "the smallest subnormal");
        Assert.That(ExactMath.Exp(-104f), Is.EqualTo(0f), "underflow");
        Assert.That(ExactMath.Exp(-float.MaxValue), Is.EqualTo(0f));
    }

    [Test]
    public void Log_edges_are_ieee()
    {
        Assert.That(ExactMath.Log(1f), Is.EqualTo(0f));
        Assert.That(ExactMath.Log(0f), Is.EqualTo(float.NegativeInfinity));
        Assert.That(ExactMath.Log(-0f), Is.EqualTo(float.NegativeInfinity));
        Assert.That(float.IsNaN(ExactMath.Log(-1f)), Is.True);
        Assert.That(float.IsNaN(ExactMath.Log(-float.Epsilon)), Is.True);
        Assert.That(float.IsNaN(ExactMath.Log(float.NegativeInfinity)), Is.True);
        Assert.That(float.IsNaN(ExactMath.Log(float.NaN)), Is.True);
        Assert.That(float.IsNaN(ExactMath.Log(-float.NaN)), Is.True);
        Assert.That(ExactMath.Log(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
        Assert.That(ExactMath.Log(float.Epsilon), Is.EqualTo((float)Math.Log(float.Epsilon)), "the smallest subnormal");
        Assert.That(ExactMath.Log(float.MaxValue), Is.EqualTo((float)Math.Log(float.MaxValue)));
        Assert.That(ExactMath.Log(2f), Is.EqualTo((float)Math.Log(2)));
    }

    [Test]
    public void Log1p_edges_are_ieee()
    {
        Assert.That(ExactMath.Log1p(0f), Is.EqualTo(0f));
        Assert.That(1f / ExactMath.Log1p(-0f), Is.EqualTo(float.NegativeInfinity), "-0 stays -0");
        Assert.That(ExactMath.Log1p(float.Epsilon), Is.EqualTo(float.Epsilon));
        Assert.That(ExactMath.Log1p(1e-30f), Is.EqualTo(1e-30f));
        Assert.That(ExactMath.Log1p(1e-9f), Is.EqualTo((float)Ulp.Log1p(1e-9f)));
        Assert.That(ExactMath.Log1p(-1f), Is.EqualTo(float.NegativeInfinity));
        Assert.That(float.IsNaN(ExactMath.Log1p(-1.5f)), Is.True);
        Assert.That(float.IsNaN(ExactMath.Log1p(float.NegativeInfinity)), Is.True);
        Assert.That(float.IsNaN(ExactMath.Log1p(float.NaN)), Is.True);
        Assert.That(ExactMath.Log1p(float.PositiveInfinity), Is.EqualTo(float.PositiveInfinity));
        Assert.That(ExactMath.Log1p(float.MaxValue), Is.EqualTo((float)Math.Log(float.MaxValue)));
    }

    [Test]
    public void The_float64_log1p_is_exact_for_tiny_arguments()
    {
        // the reference's log1p must stay exact where 1 + x rounds to 1 in double: x - x^2/2 + x^3/3 there
        foreach (double x in new[] { 1e-20, -1e-20, 3e-17, -3e-17, 1e-12, -1e-12, 2e-9, 1e-300 })
        {
            double series = x - x * x / 2 + x * x * x / 3;
            Assert.That(Math.Abs(ReferenceMlp.Log1p(x) - series), Is.LessThanOrEqualTo(2 * Math.Abs(series) * 1.2e-16), $"log1p({x})");
        }
        Assert.That(ReferenceMlp.Log1p(1.0), Is.EqualTo(Math.Log(2)).Within(1e-16));
        Assert.That(ReferenceMlp.Log1p(0.0), Is.EqualTo(0.0));
        Assert.That(ReferenceMlp.Log1p(-1.0), Is.EqualTo(double.NegativeInfinity));
    }
}

/// <summary>
/// <see cref="ExactMath"/> run in a kernel on every device (the CPU accelerator, the OpenCL device, CUDA where present),
/// against float64 over a sample of the sweeps and the special values: the same bound in ulp as on the host, whatever the
/// device's compiler fuses or reorders.
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.All))]
public sealed class ExactMathDeviceTests(DeviceCase deviceCase)
{
    ComputeDevice device = null!;

    [OneTimeSetUp] public void Open() => device = deviceCase.OpenOrIgnore();
    [OneTimeTearDown] public void Close() => device?.Dispose();

    static (double Worst, float At, int Differing) Run(ComputeDevice device, float[] xs, int function, Func<float, float> host, Func<double, double> exact)
    {
        var a = device.Accelerator;
        using var input = a.Allocate1D(xs);
        using var output = a.Allocate1D<float>(xs.Length);
        var kernel = a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(ExactMathProbeKernels.Apply);
        kernel((int)xs.Length, input.View, output.View, function);
        var got = output.GetAsArray1D();
        double worst = 0; float at = 0; int differing = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            double e = Ulp.Error(got[i], exact(xs[i]));
            if (e > worst || double.IsNaN(e)) (worst, at) = (e, xs[i]);
            if (Ulp.Bits(got[i]) != Ulp.Bits(host(xs[i])) && !(float.IsNaN(got[i]) && float.IsNaN(host(xs[i])))) differing++;
        }
        return (worst, at, differing);
    }

    void Check(string name, IEnumerable<float> sample, int function, Func<float, float> host, Func<double, double> exact)
    {
        var xs = sample.Concat(Ulp.Specials).ToArray();
        var (worst, at, differing) = Run(device, xs, function, host, exact);
        TestContext.Out.WriteLine($"{device.Id} {name}: worst {worst:F3} ulp at x = {at:R} over {xs.Length:N0} arguments; {differing:N0} results differ from the host's in some bit");
        Assert.That(worst, Is.LessThanOrEqualTo(ExactMathTests.MaxUlp), $"{name} at {at:R}");
    }

    [Test] public void Exp_on_the_device() => Check("exp", Ulp.ExpArguments(4001).Where((_, i) => i % 7 == 0), 0, ExactMath.Exp, Math.Exp);
    [Test] public void Log_on_the_device() => Check("log", Ulp.LogArguments(4001, 97), 1, ExactMath.Log, Math.Log);
    [Test] public void Log1p_on_the_device() => Check("log1p", Ulp.Log1pArguments(4001, 4001), 2, ExactMath.Log1p, Ulp.Log1p);
}

/// <summary>A kernel applying one <see cref="ExactMath"/> function (0: exp, 1: log, 2: log1p) to each element (in tests, so not in the kernel catalogue).</summary>
public static class ExactMathProbeKernels
{
    public static void Apply(Index1D i, ArrayView<float> x, ArrayView<float> y, int function) =>
        y[i] = function == 0 ? ExactMath.Exp(x[i]) : function == 1 ? ExactMath.Log(x[i]) : ExactMath.Log1p(x[i]);
}
