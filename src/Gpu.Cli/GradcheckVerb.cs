using System.Diagnostics;
using System.Globalization;
using System.Text;
using Gpu.Engine.Analysis;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("gradcheck", HelpText = "Check the device's gradient against float64 central differences (like scipy.optimize.check_grad) on a few training examples; exit code 4 if the relative error is above --threshold. The network is --model DIR or a fresh one from --layers, --activation, --loss, --init and --seed.")]
[Settings("layers", "activation", "loss", "init", "seed", "precision")]
internal sealed class GradcheckVerb : NetworkOptions, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Args);

    [Option("model", HelpText = "Check a trained model: the --output folder of a 'gpu train' run. Without it a fresh network is built from --layers, --activation, --loss, --init and --seed.")]
    public string? Model { get; set; }

    [Option("data", HelpText = "Data folder (or explicit files as train writes them) whose first --examples training images are used. Default: the model's training data with --model, else data/fashion-mnist.")]
    public string? Data { get; set; }

    [Option("examples", Default = 5, HelpText = "Training examples the loss is averaged over (the first N of the training set).")]
    public int Examples { get; set; } = 5;

    [Option("params", Default = "2000", HelpText = "How many parameters to check: a number N (a seeded sample, shared equally among every layer's W and b, so each is covered) or 'all'. Each costs two float64 forward passes on the host: 'all' on the default 235,146-parameter network takes many minutes.")]
    public string Params { get; set; } = "2000";

    [Option("epsilon", Default = GradientCheck.DefaultEpsilon, HelpText = "Central-difference step (f(p+e) - f(p-e)) / 2e in float64. Its truncation error grows as e^2 and its rounding error as 1e-16/e, so 1e-6 keeps both near 1e-10; far larger or smaller steps make the numeric gradient worse, not better.")]
    public double Epsilon { get; set; } = GradientCheck.DefaultEpsilon;

    [Option("threshold", Default = 1e-4, HelpText = "Fail (exit code 4) when ||analytic - numeric|| / ||numeric|| is above this. The device computes in float32, so a correct gradient gives about 1e-7 to 1e-6. Parameters with a ReLU switching within +-epsilon (a kink: the one-sided differences disagree) are reported and left out of the norms.")]
    public double Threshold { get; set; } = 1e-4;

    [Option("dump", HelpText = "Write every checked parameter (index, layer, W or b, row, col, analytic, numeric, errors, kink) to this CSV file.")]
    public string? Dump { get; set; }

    static readonly string[] NetworkFlags = ["--layers", "--activation", "--loss", "--init"];

    public int Execute(TextWriter stdout, string[] args)
    {
        if (Examples < 1) throw new UserError($"--examples {Examples}: give a whole number >= 1");
        if (!(Threshold > 0)) throw new UserError($"--threshold {Threshold}: give a positive number, e.g. 1e-4");
        int? count = Params.Trim().Equals("all", StringComparison.OrdinalIgnoreCase) ? null
            : int.TryParse(Params, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 1 ? n
            : throw new UserError($"--params '{Params}': give a whole number >= 1 or 'all'");
        if (TrainOptions().Precision is var precision and not Precision.Fp32)   // taken only to say why: a reduced precision's rounding is far above any threshold
            throw new UserError($"--precision {Words.Name(precision)}: gradcheck checks the fp32 gradient only; rounding the products' inputs to {Words.Name(precision)} changes a gradient by about {(precision == Precision.Tf32 ? "1e-3" : "1e-2")} of its size, far above --threshold, so no finite difference could check it (a model trained in {Words.Name(precision)} is checked in fp32)");
        var given = args.Where(a => a.StartsWith("--")).Select(a => a.Split('=')[0]).ToHashSet();
        if (Model != null && NetworkFlags.FirstOrDefault(given.Contains) is string clash)
            throw new UserError($"{clash} cannot be combined with --model: the model's own network is checked");

        var saved = Model == null ? null : SavedModel.Read(Model);
        var from = Data != null || saved == null ? DataSource.OfFolder(Data ?? DataLocator.DefaultFolder)
            : saved.Data ?? throw new UserError($"{Model}: the model does not name its training data; give --data");
        string source = from.Describe();
        if (from.Folder == null && from.TrainImages == null) throw new UserError($"{Model}: the model names only test images; give --data");
        var train = from.Load().Train;
        var spec = saved?.Spec ?? Network(train.Features, train.Classes);
        var settings = TrainOptions();
        var parameters = saved?.Parameters ?? spec.Initialize(settings.Seed, settings.BiasInit, settings.Init);
        string what = saved != null ? $"model {saved.Folder}" : $"fresh, {Words.Name(settings.Init)} init, seed {settings.Seed}";
        if (train.Features != spec.Inputs || train.Classes != spec.Classes)
            throw new UserError($"the network takes {spec.Inputs} inputs and {spec.Classes} classes but {source} has {train.Features} and {train.Classes}; give the --data it was trained on");
        if (Examples > train.Count) throw new UserError($"--examples {Examples}: {source} has only {train.Count} training images");
        var x = train.Features32(0, Examples);
        var y = train.Labels[..Examples];
        var indices = GradientCheck.Sample(spec, count ?? spec.ParameterCount, settings.Seed);

        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        stdout.WriteLine($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters), {what}");
        stdout.WriteLine($"data: {source}, the first {Examples} training images; data loss only (the L2 term, which the optimizer adds, is not checked)");
        var groups = indices.GroupBy(i => Group(spec, i)).Select(g => $"{g.Key} {g.Count():N0}");
        stdout.WriteLine(indices.Length == spec.ParameterCount
            ? $"checking all {spec.ParameterCount:N0} parameters, epsilon {Sci(Epsilon)}"
            : $"checking a seeded sample of {indices.Length:N0} of {spec.ParameterCount:N0} parameters ({string.Join(", ", groups)}), epsilon {Sci(Epsilon)}");

        var clock = Stopwatch.StartNew();
        var r = GradientCheck.Run(device, spec, parameters, x, y, indices, Epsilon,
            progress: ProgressDisplay.Counter(stdout.WriteLine, "parameters"), faultAdvice: "retry with --device cpu");

        stdout.WriteLine($"loss: device {r.DeviceLoss:F6} (float32), reference {r.ReferenceLoss:F6} (float64)");
        stdout.WriteLine($"{"part",-12} {"checked",8} {"rel. error",10}");
        foreach (var g in r.Parameters.Where(p => !p.Kink).GroupBy(p => Group(spec, p.Index)))
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
            WriteDump(Dump, r);
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

    /// <summary>"layer 1 W" or "layer 1 b".</summary>
    static string Group(MlpSpec spec, int index)
    {
        var at = ParameterLocation.Of(spec, index);
        return $"layer {at.Layer + 1} {(at.IsWeight ? "W" : "b")}";
    }

    static void WriteDump(string path, GradientCheckResult r)
    {
        var sb = new StringBuilder("index,layer,param,row,col,analytic,numeric,abs_diff,rel_error,kink\n");
        foreach (var p in r.Parameters)
            sb.Append(CultureInfo.InvariantCulture,
                $"{p.Index},{p.Where.Layer + 1},{(p.Where.IsWeight ? "W" : "b")},{p.Where.Row},{(p.Where.IsWeight ? p.Where.Col.ToString(CultureInfo.InvariantCulture) : "")}," +
                $"{p.Analytic:R},{p.Numeric:R},{Math.Abs(p.Analytic - p.Numeric):R},{p.RelativeError:R},{(p.Kink ? 1 : 0)}\n");
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
