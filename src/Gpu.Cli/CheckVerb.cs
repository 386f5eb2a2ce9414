using Gpu.Engine.Analysis;
using Gpu.Engine.Experiments;
using Gpu.Engine.Inference;
using Gpu.Engine.Model;
using Gpu.Engine.Reference;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Training;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("check", HelpText = "Check every kernel on a device against the float64 reference (random awkward shapes, NaN-poisoned outputs).")]
public sealed class CheckVerb
{
    [Option("device", Default = "auto", HelpText = "auto, cpu, cuda[:N] or opencl[:N].")]
    public string Device { get; set; } = "auto";

    public int Execute(TextWriter stdout)
    {
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        var results = KernelCheck.Run(KernelSet.For(device.Accelerator));
        stdout.WriteLine($"{"kernel",-32} {"variant",-8} {"shape",-12} {"rel. error",10}  result");
        foreach (var r in results)
            stdout.WriteLine($"{r.Kernel,-32} {r.Variant,-8} {r.Shape,-12} {r.RelativeError,10:E2}  " +
                (r.Passed ? "ok" : r.Unwritten > 0 ? $"FAILED ({r.Unwritten} outputs not written)" : "FAILED"));
        int failed = results.Count(r => !r.Passed);
        stdout.WriteLine($"{results.Count - failed} of {results.Count} checks passed (tolerance {KernelCheck.Tolerance:E0})");
        if (failed > 0) throw new UserError($"{failed} kernel checks failed on {device.Id} ({device.Name}); see the table above", 4);
        return 0;
    }
}
