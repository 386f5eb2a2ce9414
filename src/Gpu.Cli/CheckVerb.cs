using CommandLine;
using Gpu.Engine;
using Gpu.Engine.Analysis;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Cli;

[Verb("check", HelpText = "Check every kernel on a device against the float64 reference (random awkward shapes, NaN-poisoned outputs).")]
public sealed class CheckVerb
{
    [Option("device", Default = "auto", HelpText = "auto, cpu, cuda[:N] or opencl[:N].")]
    public string Device { get; set; } = "auto";

    [Option("family", HelpText = "Check only this family of the dense-layer products (scalar, vector4, tiled or cl-vector; the device must run it), and every other kernel.")]
    public string? Family { get; set; }

    public int Execute(TextWriter stdout)
    {
        GemmFamily? only = null;
        try { if (Family != null) only = Words.Parse<GemmFamily>(Family); }
        catch (FormatException e) { throw new UserError($"--family: {e.Message}"); }
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        var runs = device.Profile.RunnableFamilies;
        if (only is GemmFamily f && !runs.Contains(f))
            throw new UserError($"--family {Words.Name(f)}: {device.Id} does not run it; it runs {string.Join(", ", runs.Select(Words.Name))}");
        stdout.WriteLine($"profile: {device.Profile.Describe()}; checking {(only is GemmFamily g ? $"the {Words.Name(g)} family" : $"every kernel family it runs ({string.Join(", ", runs.Select(Words.Name))})")} and every other kernel");
        var results = KernelCheck.Run(device, only);
        stdout.WriteLine($"{"kernel",-40} {"variant",-11} {"shape",-12} {"rel. error",10}  result");
        foreach (var r in results)
            stdout.WriteLine($"{r.Kernel,-40} {r.Variant,-11} {r.Shape,-12} {r.RelativeError,10:E2}  " +
                (r.Passed ? "ok" : r.Unwritten > 0 ? $"FAILED ({r.Unwritten} outputs not written)" : "FAILED"));
        int failed = results.Count(r => !r.Passed);
        stdout.WriteLine($"{results.Count - failed} of {results.Count} checks passed (tolerance {KernelCheck.Tolerance:E0})");
        if (failed > 0) throw new UserError($"{failed} kernel checks failed on {device.Id} ({device.Name}); see the table above", 4);
        return 0;
    }
}
