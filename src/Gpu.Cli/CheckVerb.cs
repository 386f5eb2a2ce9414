using CommandLine;
using Gpu.Engine;
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
        if (Ptx)
        {
            if (Family != null) throw new UserError("--family does not go with --ptx: the PTX check compiles every kernel");
            if (!PrecisionText.Trim().Equals("fp32", StringComparison.OrdinalIgnoreCase)) throw new UserError("--precision does not go with --ptx: the PTX check compiles every kernel of every precision");
            Gpu.Device.CheckPtx(PtxOut, stdout.WriteLine);
            return 0;
        }
        Precision precision;
        try { precision = Words.Parse<Precision>(PrecisionText); }
        catch (FormatException e) { throw new UserError($"--precision: {e.Message}"); }
        using var device = Gpu.Device.Open(Device);
        device.CheckKernels(Family, precision, stdout.WriteLine);
        return 0;
    }
}
