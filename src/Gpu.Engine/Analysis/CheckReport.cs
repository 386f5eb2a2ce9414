using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Analysis;

/// <summary>
/// <c>gpu check</c> as lines: the kernel check on a device (every GEMM family it runs, or one, in a precision, and every other
/// kernel against the float64 reference) and the PTX check (every kernel compiled for CUDA with no GPU), each a table and a
/// summary through <c>say</c>; a failure is a <see cref="UserError"/> with exit code 4 after the table.
/// </summary>
internal static class CheckReport
{
    /// <summary>Checks the kernels of <paramref name="device"/>: only <paramref name="family"/>'s products when given, in <paramref name="precision"/>.</summary>
    public static void Kernels(ComputeDevice device, string? family, Precision precision, Action<string> say)
    {
        GemmFamily? only = null;
        try { if (family != null) only = GemmFamilies.Parse(family); }
        catch (FormatException e) { throw new UserError($"--family: {e.Message}"); }
        if (only is GemmFamily h && !h.Computes(precision))
            throw new UserError($"--family {h.Name} --precision {Words.Name(precision)}: the {h.Name} family does not compute {Words.Name(precision)}; the families that do are {string.Join(", ", GemmFamilies.All.Where(x => x.Computes(precision)))}");
        say($"device: {device.Describe()}");
        var runs = device.Profile.RunnableFamilies;
        if (only is GemmFamily f && !device.Profile.Runs(f))
            throw new UserError($"--family {f.Name}: {device.Id} does not run it; it runs {string.Join(", ", runs)}");
        var families = runs.Where(x => x.Computes(precision) && x.Fits(device.Profile)).ToList();
        say($"profile: {device.Profile.Describe()}; checking {(only is GemmFamily g ? $"the {g.Name} family" : $"every kernel family it runs ({string.Join(", ", families)})")}" +
            $"{(precision == Precision.Fp32 ? "" : $" in {Words.Name(precision)} (emulated; against inputs rounded as the hardware rounds them)")} and every other kernel");
        var results = KernelCheck.Run(device, only, precision: precision);
        say($"{"kernel",-40} {"variant",-11} {"shape",-12} {"rel. error",10}  result");
        foreach (var r in results)
            say($"{r.Kernel,-40} {r.Variant,-11} {r.Shape,-12} {r.RelativeError,10:E2}  " +
                (r.Passed ? "ok" : r.Unwritten > 0 ? $"FAILED ({r.Unwritten} outputs not written)" : "FAILED"));
        int failed = results.Count(r => !r.Passed);
        say($"{results.Count - failed} of {results.Count} checks passed (tolerance {KernelCheck.Tolerance:E0})");
        if (failed > 0) throw new UserError($"{failed} kernel checks failed on {device.Id} ({device.Name}); see the table above", 4);
    }

    /// <summary>Compiles every kernel to PTX and checks it; <paramref name="folder"/>: also write each kernel's PTX there.</summary>
    public static void Ptx(string? folder, Action<string> say)
    {
        folder = folder == null ? null : AtomicFile.EnsureFolder(folder);
        say($"PTX: ILGPU's PTX backend, instruction set {PtxCheck.InstructionSet}, no GPU; the CUDA profile ({DeviceProfile.For(DeviceKind.Cuda, 0).Describe().Split(',')[0]}); " +
            $"{KernelCatalogue.All.Count} kernels x {string.Join(", ", PtxCheck.Architectures.Select(a => a.ToString().ToLowerInvariant()))} x {string.Join(", ", PtxCheck.Levels.Select(PtxCheck.Name))}");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var results = PtxCheck.Run();
        say($"{"kernel",-38} {"launch",-8} {"arch",-6} {"target",-6} {"level",-5} {"lines",6} {"shared",7} {"local",6}  approximate instructions / result");
        foreach (var r in results)
        {
            string approx = r.Approximate.Count == 0 ? "-" : PtxCheck.Describe(r.Approximate);
            say($"{r.Kernel,-38} {(r.Grouping == KernelGrouping.Explicit ? "explicit" : "implicit"),-8} {r.Architecture,-6} {r.Target,-6} {r.LevelName,-5} {r.Lines,6} {r.SharedBytes,7} {r.LocalBytes,6}  " +
                $"{approx}; {(r.Passed ? "ok" : "FAILED: " + string.Join("; ", r.Problems))}");
            if (folder != null && r.Ptx.Length > 0) File.WriteAllText(Path.Combine(folder, r.FileName), r.Ptx);
        }
        int failed = results.Count(r => !r.Passed);
        var targets = results.Where(r => r.Target != r.Architecture && r.Target != "-").Select(r => $"{r.Architecture} -> {r.Target}").Distinct().ToList();
        if (targets.Count > 0)
            say($"note: ILGPU 1.5.3 targets at most sm_80, the newest architecture any of its instructions needs ({string.Join(", ", targets)}); the driver compiles that PTX for the GPU it runs on");
        say($"{results.Count - failed} of {results.Count} compilations passed ({watch.Elapsed.TotalSeconds:F1} s){(folder != null ? $"; PTX written to {folder}" : "")}");
        if (failed > 0) throw new UserError($"{failed} PTX checks failed; see the table above", 4);
    }
}
