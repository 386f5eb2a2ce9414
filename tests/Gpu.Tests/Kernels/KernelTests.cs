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
/// Only the cases a device runs are generated (a GEMM family it does not run, a tile its groups cannot hold: none), by
/// the device's nominal profile (<see cref="DeviceCase.NominalProfile"/>); each device is opened once for all its cases.
/// </summary>
public sealed class KernelTests
{
    static readonly Dictionary<DeviceCase, ComputeDevice?> opened = [];

    /// <summary>The device of a case, opened on its first case (a missing device, not required here, skips its cases).</summary>
    static ComputeDevice Open(DeviceCase d)
    {
        lock (opened)
        {
            if (!opened.TryGetValue(d, out var device))
            {
                try { device = d.OpenOrIgnore(); }
                catch (IgnoreException) { opened[d] = null; throw; }
                opened[d] = device;
            }
            return device ?? throw new IgnoreException($"skipped: {d} is not present");
        }
    }

    [OneTimeTearDown]
    public void Close()
    {
        lock (opened)
        {
            foreach (var d in opened.Values) d?.Dispose();
            opened.Clear();
        }
    }

    static IEnumerable<TestCaseData> Cases() =>
        from d in DeviceCase.All()
        let profile = d.NominalProfile
        from c in KernelCheck.All.Select((c, i) => (Case: c, Index: i))
        where c.Case.RunsOn(profile)
        select new TestCaseData(d, c.Index).SetArgDisplayNames(d.ToString(), c.Case.ToString());

    [TestCaseSource(nameof(Cases))]
    public void Kernel_matches_the_reference(DeviceCase deviceCase, int index)
    {
        var device = Open(deviceCase);
        var c = KernelCheck.All[index];
        if (!c.RunsOn(device.Profile)) Assert.Ignore($"skipped: {device.Id} is not the device kind its cases were made for, and does not run the {c.Variant} variant");
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
