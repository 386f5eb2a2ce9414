using CommandLine;
using Gpu.Engine;
using Gpu.Engine.Analysis;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Cli;

[Verb("check", HelpText = "Check every kernel on a device against the float64 reference (random awkward shapes, NaN-poisoned outputs); with --ptx, compile every kernel to CUDA PTX and check it, with no GPU needed.")]
internal sealed class CheckVerb : IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Flag(nameof(Flags.Device))]
    public string Device { get; set; } = "";

    [Flag(nameof(Flags.Family))]
    public string? Family { get; set; }

    [Flag(nameof(Flags.CheckPrecision))]
    public string PrecisionText { get; set; } = "";

    [Flag(nameof(Flags.Ptx))]
    public bool Ptx { get; set; }

    [Flag(nameof(Flags.PtxOut))]
    public string? PtxOut { get; set; }

    public int Execute(TextWriter stdout)
    {
        if (PtxOut != null && !Ptx) throw new UserError("--ptx-out needs --ptx");
        if (Ptx) return CheckPtx(stdout);
        GemmFamily? only = null;
        try { if (Family != null) only = GemmFamilies.Parse(Family); }
        catch (FormatException e) { throw new UserError($"--family: {e.Message}"); }
        Precision precision;
        try { precision = Words.Parse<Precision>(PrecisionText); }
        catch (FormatException e) { throw new UserError($"--precision: {e.Message}"); }
        if (only is GemmFamily h && !h.Computes(precision))
            throw new UserError($"--family {h.Name} --precision {Words.Name(precision)}: the {h.Name} family does not compute {Words.Name(precision)}; the families that do are {string.Join(", ", GemmFamilies.All.Where(x => x.Computes(precision)))}");
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        var runs = device.Profile.RunnableFamilies;
        if (only is GemmFamily f && !device.Profile.Runs(f))
            throw new UserError($"--family {f.Name}: {device.Id} does not run it; it runs {string.Join(", ", runs)}");
        var families = runs.Where(x => x.Computes(precision) && x.Fits(device.Profile)).ToList();
        stdout.WriteLine($"profile: {device.Profile.Describe()}; checking {(only is GemmFamily g ? $"the {g.Name} family" : $"every kernel family it runs ({string.Join(", ", families)})")}" +
            $"{(precision == Precision.Fp32 ? "" : $" in {Words.Name(precision)} (emulated; against inputs rounded as the hardware rounds them)")} and every other kernel");
        var results = KernelCheck.Run(device, only, precision: precision);
        stdout.WriteLine($"{"kernel",-40} {"variant",-11} {"shape",-12} {"rel. error",10}  result");
        foreach (var r in results)
            stdout.WriteLine($"{r.Kernel,-40} {r.Variant,-11} {r.Shape,-12} {r.RelativeError,10:E2}  " +
                (r.Passed ? "ok" : r.Unwritten > 0 ? $"FAILED ({r.Unwritten} outputs not written)" : "FAILED"));
        int failed = results.Count(r => !r.Passed);
        stdout.WriteLine($"{results.Count - failed} of {results.Count} checks passed (tolerance {KernelCheck.Tolerance:E0})");
        if (failed > 0) throw new UserError($"{failed} kernel checks failed on {device.Id} ({device.Name}); see the table above", 4);
        return 0;
    }

    int CheckPtx(TextWriter stdout)
    {
        if (Family != null) throw new UserError("--family does not go with --ptx: the PTX check compiles every kernel");
        if (!PrecisionText.Trim().Equals("fp32", StringComparison.OrdinalIgnoreCase)) throw new UserError("--precision does not go with --ptx: the PTX check compiles every kernel of every precision");
        string? folder = PtxOut == null ? null : AtomicFile.EnsureFolder(PtxOut);
        stdout.WriteLine($"PTX: ILGPU's PTX backend, instruction set {PtxCheck.InstructionSet}, no GPU; the CUDA profile ({DeviceProfile.For(DeviceKind.Cuda, 0).Describe().Split(',')[0]}); " +
            $"{KernelCatalogue.All.Count} kernels x {string.Join(", ", PtxCheck.Architectures.Select(a => a.ToString().ToLowerInvariant()))} x {string.Join(", ", PtxCheck.Levels.Select(PtxCheck.Name))}");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var results = PtxCheck.Run();
        stdout.WriteLine($"{"kernel",-38} {"launch",-8} {"arch",-6} {"target",-6} {"level",-5} {"lines",6} {"shared",7} {"local",6}  approximate instructions / result");
        foreach (var r in results)
        {
            string approx = r.Approximate.Count == 0 ? "-" : PtxCheck.Describe(r.Approximate);
            stdout.WriteLine($"{r.Kernel,-38} {(r.Grouping == KernelGrouping.Explicit ? "explicit" : "implicit"),-8} {r.Architecture,-6} {r.Target,-6} {r.LevelName,-5} {r.Lines,6} {r.SharedBytes,7} {r.LocalBytes,6}  " +
                $"{approx}; {(r.Passed ? "ok" : "FAILED: " + string.Join("; ", r.Problems))}");
            if (folder != null && r.Ptx.Length > 0) File.WriteAllText(Path.Combine(folder, r.FileName), r.Ptx);
        }
        int failed = results.Count(r => !r.Passed);
        var targets = results.Where(r => r.Target != r.Architecture && r.Target != "-").Select(r => $"{r.Architecture} -> {r.Target}").Distinct().ToList();
        if (targets.Count > 0)
            stdout.WriteLine($"note: ILGPU 1.5.3 targets at most sm_80, the newest architecture any of its instructions needs ({string.Join(", ", targets)}); the driver compiles that PTX for the GPU it runs on");
        stdout.WriteLine($"{results.Count - failed} of {results.Count} compilations passed ({watch.Elapsed.TotalSeconds:F1} s){(folder != null ? $"; PTX written to {folder}" : "")}");
        if (failed > 0) throw new UserError($"{failed} PTX checks failed; see the table above", 4);
        return 0;
    }
}
