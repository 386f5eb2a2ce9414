using Gpu.Kernels;

namespace Gpu.Tests.Kernels;

/// <summary>
/// The tanh every device runs (<see cref="Activations.TanhF"/>), checked on the host against float64: its own error,
/// and how much of an error in exp reaches the result (its exp is <see cref="ExactMath.Exp"/>, within 1 ulp, but the bound
/// holds for any exp within 1e-5), so the kernel checks' 1e-5 holds on CUDA too, where XMath.Tanh would be tanh.approx.f32
/// (about 5e-4).
/// </summary>
public sealed class TanhTests
{
    /// <summary>A dense sample: an even grid over [-12, 12] (past 9.01 tanh rounds to +-1) and log-spaced magnitudes from 1e-30 to 16, both signs.</summary>
    static IEnumerable<float> Sample()
    {
        for (int i = 0; i <= 1_200_000; i++) yield return -12f + 24f * i / 1_200_000;
        for (int i = 0; i <= 200_000; i++)
        {
            float v = (float)Math.Pow(10, -30 + 31.2 * i / 200_000);
            yield return v;
            yield return -v;
        }
    }

    static double Relative(float got, double want) => want == 0 ? Math.Abs(got) : Math.Abs(got - want) / Math.Abs(want);

    [Test]
    public void Tanh_is_within_a_few_ulp_of_float64()
    {
        double worst = 0; float at = 0;
        foreach (var z in Sample())
        {
            double e = Relative(Activations.TanhF(z), Math.Tanh(z));
            if (e > worst) (worst, at) = (e, z);
        }
        TestContext.Out.WriteLine($"worst relative error {worst:E3} at z = {at}");
        Assert.That(worst, Is.LessThan(2e-7));
    }

    [Test]
    public void An_error_of_1e_5_in_exp_stays_below_1e_5_in_tanh()
    {
        // the exp branch only: |z| above the split, exp(2|z|) off by +-1e-5 (about a hundred ulp)
        double worst = 0;
        foreach (var z in Sample().Where(v => Math.Abs(v) > Activations.TanhSplit))
            foreach (var d in new[] { 1e-5, -1e-5 })
            {
                float a = Math.Abs(z), e = (float)(Math.Exp(2.0 * a) * (1 + d));
                float t = Activations.TanhFromExp(e);
                worst = Math.Max(worst, Relative(z < 0 ? -t : t, Math.Tanh(z)));
            }
        TestContext.Out.WriteLine($"worst relative error with exp off by 1e-5: {worst:E3}");
        Assert.That(worst, Is.LessThan(0.7e-5), "the result carries at most 0.62 of exp's relative error");
    }

    [Test]
    public void Tanh_saturates_and_keeps_nan()
    {
        Assert.That(Activations.TanhF(float.PositiveInfinity), Is.EqualTo(1f));
        Assert.That(Activations.TanhF(float.NegativeInfinity), Is.EqualTo(-1f));
        Assert.That(Activations.TanhF(100f), Is.EqualTo(1f));
        Assert.That(Activations.TanhF(-100f), Is.EqualTo(-1f));
        Assert.That(float.IsNaN(Activations.TanhF(float.NaN)), Is.True, "a diverging run is seen, not hidden");
        Assert.That(Activations.TanhF(0f), Is.EqualTo(0f));
    }
}
