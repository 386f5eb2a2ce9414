using System.Reflection;
using System.Text.RegularExpressions;
using Gpu.Engine.Analysis;
using Gpu.Engine.Runtime;
using Gpu.Kernels;
using Gpu.Kernels.OpenCl;

namespace Gpu.Tests.Kernels;

/// <summary>
/// Every kernel against the float64 reference through the one case list `gpu check` runs
/// (<see cref="KernelCheck.All"/>): shapes that are not multiples of any tile, outputs poisoned with NaN
/// before the launch, on the CPU accelerator and the OpenCL device at O1 and O2 (and CUDA where present).
/// A case of a GEMM family the device does not run is reported skipped with the reason.
/// </summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.All))]
public sealed class KernelTests(DeviceCase deviceCase)
{
    ComputeDevice device = null!;

    [OneTimeSetUp] public void Open() => device = deviceCase.OpenOrIgnore();
    [OneTimeTearDown] public void Close() => device?.Dispose();

    static IEnumerable<TestCaseData> Cases() =>
        KernelCheck.All.Select((c, i) => new TestCaseData(i).SetArgDisplayNames(c.ToString()));

    [TestCaseSource(nameof(Cases))]
    public void Kernel_matches_the_reference(int index)
    {
        var c = KernelCheck.All[index];
        if (!c.RunsOn(device.Profile)) Assert.Ignore($"skipped: {device.Id} does not run the {c.Variant} family (it runs {string.Join(", ", device.Profile.RunnableFamilies)})");
        var results = c.Run(device, seed: 1000 + index);
        Assert.That(results, Is.Not.Empty);
        var failed = results.Where(r => !r.Passed).Select(r => $"{r.Kernel} {r.Shape}: relative error {r.RelativeError:E3}, {r.Unwritten} outputs never written").ToList();
        Assert.That(failed, Is.Empty, string.Join("\n", failed));
    }
}

/// <summary>The case list covers every kernel: a new kernel method without a case fails here.</summary>
public sealed class KernelCaseCoverageTests
{
    /// <summary>Kernel entry points: public static void methods taking an ArrayView (helpers return values), and every __kernel in the OpenCL C sources.</summary>
    static IEnumerable<string> KernelMethods()
    {
        foreach (var t in typeof(GemmKernels).Assembly.GetTypes().Where(t => !t.IsNested && t.IsAbstract && t.IsSealed))   // static classes
            foreach (var m in t.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly))
                if (m.ReturnType == typeof(void) && m.GetParameters().Any(p => p.ParameterType.Name.StartsWith("ArrayView")))
                    yield return $"{t.Name}.{m.Name}";
        foreach (Match k in Regex.Matches(OpenClSources.DenseLayers, @"__kernel\s+void\s+(\w+)"))
            yield return $"dense_layers.cl:{k.Groups[1].Value}";
    }

    [Test]
    public void Every_kernel_method_has_a_case()
    {
        var covered = KernelCheck.All.SelectMany(c => c.Covers).ToHashSet();
        var kernels = KernelMethods().ToList();
        Assert.That(kernels, Has.Count.GreaterThan(15), "the kernel scan found the kernels");
        Assert.That(kernels.Where(k => !covered.Contains(k)), Is.Empty, "kernel methods with no case in KernelCheck.All");
        Assert.That(covered.Where(c => !kernels.Contains(c)), Is.Empty, "cases naming kernels that do not exist");
    }

    [Test]
    public void Every_gemm_family_has_forward_weight_and_input_cases()
    {
        foreach (var f in GemmFamilies.All)
            foreach (var what in new[] { "dense forward", "weight gradient", "weight and bias gradient", "input gradient" })
                Assert.That(KernelCheck.All.Count(c => c.Family?.Name == f.Name && c.Name.StartsWith(what)), Is.GreaterThanOrEqualTo(6), $"{f} {what}");
    }
}
