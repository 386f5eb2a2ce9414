using System.Diagnostics;
using System.Globalization;
using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("gradcheck", HelpText = "Check the device's gradient against float64 central differences (like scipy.optimize.check_grad) on a few training examples; exit code 4 if the relative error is above --threshold. The network is --model DIR or a fresh one from --layers, --activation, --loss, --init and --seed.")]
[Settings("layers", "activation", "loss", "init", "seed", "precision")]
internal sealed class GradcheckVerb : NetworkOptions, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Given);

    [Flag(nameof(Flags.GradcheckModel))]
    public string? Model { get; set; }

    [Flag(nameof(Flags.GradcheckData))]
    public string? Data { get; set; }

    [Flag(nameof(Flags.Examples))]
    public int Examples { get; set; } = 5;

    [Flag(nameof(Flags.Params))]
    public string Params { get; set; } = "2000";

    [Flag(nameof(Flags.Epsilon))]
    public double Epsilon { get; set; }

    [Flag(nameof(Flags.Threshold))]
    public double Threshold { get; set; } = 1e-4;

    [Flag(nameof(Flags.Dump))]
    public string? Dump { get; set; }

    static readonly string[] NetworkFlags = ["--layers", "--activation", "--loss", "--init"];

    public int Execute(TextWriter stdout, IReadOnlySet<string> given)
    {
        if (TrainOptions().Precision is var precision and not Precision.Fp32)   // taken only to say why: a reduced precision's rounding is far above any threshold
            throw new UserError($"--precision {Words.Name(precision)}: gradcheck checks the fp32 gradient only; rounding the products' inputs to {Words.Name(precision)} changes a gradient by about {(precision == Precision.Tf32 ? "1e-3" : "1e-2")} of its size, far above --threshold, so no finite difference could check it (a model trained in {Words.Name(precision)} is checked in fp32)");
        if (Examples < 1) throw new UserError($"--examples {Examples}: give a whole number >= 1");
        if (!(Threshold > 0)) throw new UserError($"--threshold {Threshold}: give a positive number, e.g. 1e-4");
        int? count = Params.Trim().Equals("all", StringComparison.OrdinalIgnoreCase) ? null
            : int.TryParse(Params, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 ? n
            : throw new UserError($"--params '{Params}': give a whole number >= 1 or 'all'");
        if (Model != null && NetworkFlags.FirstOrDefault(given.Contains) is string clash)
            throw new UserError($"{clash} cannot be combined with --model: the model's own network is checked");

        var saved = Model == null ? null : Gpu.Network.Load(Model);
        var data = Data != null || saved == null ? new DataFiles { Folder = Data ?? DataFiles.DefaultFolder } : null;
        var settings = TrainOptions();
        Images train;
        Gpu.Network network;
        if (saved != null) (network, train) = (saved, saved.TrainImages(data));
        else
        {
            train = ImageData.Open(data!).Train;
            network = Gpu.Network.Create(train.Features, train.Classes, settings);
        }
        string what = saved != null ? $"model {saved.Folder}" : $"fresh, {Words.Name(settings.Init)} init, seed {settings.Seed}";
        if (Examples > train.Count) throw new UserError($"--examples {Examples}: {train.Origin} has only {train.Count} training images");
        var indices = network.SampleParameters(count ?? network.ParameterCount, settings.Seed);

        using var device = Gpu.Device.Open(Device);
        stdout.WriteLine($"device: {device.Description}");
        stdout.WriteLine($"network: {network.Description} ({network.ParameterCount:N0} parameters), {what}");
        stdout.WriteLine($"data: {train.Origin}, the first {Examples} training images; data loss only (the L2 term, which the optimizer adds, is not checked)");
        var groups = indices.GroupBy(network.PartOf).Select(g => $"{g.Key} {g.Count():N0}");
        stdout.WriteLine(indices.Count == network.ParameterCount
            ? $"checking all {network.ParameterCount:N0} parameters, epsilon {Sci(Epsilon)}"
            : $"checking a seeded sample of {indices.Count:N0} of {network.ParameterCount:N0} parameters ({string.Join(", ", groups)}), epsilon {Sci(Epsilon)}");

        var clock = Stopwatch.StartNew();
        var r = network.CheckGradients(device, train, Examples, indices, Epsilon, progress: ProgressDisplay.Counter(stdout.WriteLine, "parameters"));

        stdout.WriteLine($"loss: device {r.DeviceLoss:F6} (float32), reference {r.ReferenceLoss:F6} (float64)");
        stdout.WriteLine($"{"part",-12} {"checked",8} {"rel. error",10}");
        foreach (var g in r.Parameters.Where(p => !p.Kink).GroupBy(p => p.Part))
        {
            double d = Math.Sqrt(g.Sum(p => (p.Analytic - p.Numeric) * (p.Analytic - p.Numeric))), nn = Math.Sqrt(g.Sum(p => p.Numeric * p.Numeric));
            stdout.WriteLine($"{g.Key,-12} {g.Count(),8:N0} {Sci(nn > 0 ? d / nn : d),10}");
        }
        stdout.WriteLine($"||analytic - numeric|| = {Sci(r.DifferenceNorm)} (what check_grad returns), ||numeric|| = {Sci(r.NumericNorm)}");
        stdout.WriteLine($"relative error ||analytic - numeric|| / ||numeric|| = {Sci(r.RelativeError)} (threshold {Sci(Threshold)})");
        if (r.Worst is { } w)
            stdout.WriteLine($"largest element-wise relative error {Sci(w.RelativeError)} at {w.Where} (index {w.Index:N0}): analytic {w.Analytic.ToString("0.000000e+00", CultureInfo.InvariantCulture)}, numeric {w.Numeric.ToString("0.000000e+00", CultureInfo.InvariantCulture)} " +
                $"(|a - n| / max(|a|, |n|, {Sci(r.ElementFloor)}))");
        stdout.WriteLine(r.Kinks == 0
            ? "kinks: none (no ReLU switched within +-epsilon of a checked parameter)"
            : $"kinks: {r.Kinks} checked parameters have a ReLU switching within +-epsilon (their central difference is not the derivative); " +
              "they are left out of the norms" + (Dump != null ? " and marked in the dump" : ""));
        if (Dump != null)
        {
            r.WriteCsv(Dump);
            stdout.WriteLine($"wrote {r.Parameters.Count:N0} rows to {Dump}");
        }
        stdout.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s");
        if (!(r.RelativeError <= Threshold))
            throw new UserError($"gradient check failed: relative error {Sci(r.RelativeError)} is above --threshold {Sci(Threshold)}" +
                (r.Worst is { } worst ? $"; largest element-wise error at {worst.Where}" : ""), 4);
        stdout.WriteLine("gradient check passed");
        return 0;
    }

    /// <summary>"2.10e-07"</summary>
    static string Sci(double v) => v.ToString("0.00e+00", CultureInfo.InvariantCulture);
}
