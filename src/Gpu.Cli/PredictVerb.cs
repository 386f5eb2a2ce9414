using System.Globalization;
using System.Text;
using Gpu.Engine.Data;
using Gpu.Engine.Inference;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("predict", HelpText = "Classify images with a trained model: the predicted class and the class probabilities per image, and the accuracy when labels are known.")]
internal sealed class PredictVerb : ModelVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Flag(nameof(Flags.Input), Required = true)]
    public string Input { get; set; } = "";

    [Flag(nameof(Flags.PixelRange))]
    public string PixelRange { get; set; } = "";

    [Flag(nameof(Flags.Labels))]
    public string? Labels { get; set; }

    [Flag(nameof(Flags.PredictLimit))]
    public int Limit { get; set; }

    [Flag(nameof(Flags.Top))]
    public int Top { get; set; }

    [Flag(nameof(Flags.PredictOutput))]
    public string? Output { get; set; }

    [Flag(nameof(Flags.Device))]
    public string Device { get; set; } = "";

    /// <summary>Images per forward pass.</summary>
    const int Batch = 1000;

    public int Execute(TextWriter stdout)
    {
        var model = ReadSavedModel(stdout);
        var spec = model.Spec;
        if (Top < 0 || Top > spec.Classes) throw new UserError($"--top {Top}: give a number of classes from 1 to {spec.Classes} (0: all)");
        var (pixels, count, labels, scaling) = TableData.ReadImages(Input, Labels, spec.Inputs, spec.Classes, PixelRanges.Parse(PixelRange));
        if (Limit > 0 && Limit < count)
        {
            pixels = pixels[..(Limit * spec.Inputs)];
            labels = labels?[..Limit];
            count = Limit;
        }
        if (Output != null) AtomicFile.EnsureFolder(Path.GetDirectoryName(Path.GetFullPath(Output))!);

        using var device = ComputeDevice.Open(Device);
        bool sigmoid = spec.Loss == LossKind.SigmoidSquaredError;
        string[] names = model.ClassNames;
        stdout.WriteLine($"input: {Input}, {count:N0} images, " + (labels == null ? "no labels" : Labels != null ? $"labels from {Labels}" : "labels from its first column") + $"; pixels: {scaling}");
        stdout.WriteLine($"device: {device.Describe()}");
        var r = Predictor.Run(device, spec, model.Parameters, pixels, labels, Batch, faultAdvice: "retry with --device cpu");
        stdout.WriteLine(sigmoid
            ? "outputs: the sigmoid outputs of this sigmoid-sse model, each in [0, 1]; they are not probabilities and need not sum to 1"
            : "probabilities: softmax of the output layer");
        bool numbered = names.Select((n, c) => n == c.ToString()).All(x => x);
        if (Top == 0 && !numbered) stdout.WriteLine("classes: " + string.Join(", ", names.Select((n, c) => $"{c} {n}")));

        int nameWidth = names.Max(n => n.Length) + 2;
        string head = $"{"image",6}  {"predicted".PadRight(nameWidth)}" + (labels == null ? "" : $"{"label".PadRight(nameWidth)}  ");
        stdout.WriteLine(head + (Top > 0 ? $"top {Top}" : string.Concat(names.Select((_, c) => c.ToString().PadLeft(6)))));
        int correct = 0;
        for (int i = 0; i < count; i++)
        {
            int predicted = r.Predicted(i);
            var p = r.Probabilities(i);
            var line = new StringBuilder($"{i,6}  {names[predicted].PadRight(nameWidth)}");
            if (labels != null)
            {
                bool right = labels[i] == predicted;
                correct += right ? 1 : 0;
                line.Append(names[labels[i]].PadRight(nameWidth)).Append(right ? "   " : " * ");
            }
            if (Top > 0)
                line.AppendJoin(", ", Enumerable.Range(0, spec.Classes).OrderByDescending(c => p[c]).ThenBy(c => c).Take(Top).Select(c => $"{names[c]} {P(p[c])}"));
            else
                foreach (var v in p) line.Append(' ').Append(P(v));
            stdout.WriteLine(line.ToString());
        }
        if (labels != null)
            stdout.WriteLine($"accuracy {(double)correct / count:F4} ({correct:N0} of {count:N0} images; * marks a wrong prediction), " +
                $"mean loss {r.Loss:F4} ({Words.Name(spec.Loss)})");
        if (Output != null)
        {
            WriteCsv(Output, r, labels, sigmoid ? "sigmoid" : "p");
            stdout.WriteLine($"wrote {Output}");
        }
        return 0;
    }

    static string P(double v) => v.ToString("0.000", CultureInfo.InvariantCulture).PadLeft(5);

    static void WriteCsv(string path, InferenceResult r, int[]? labels, string prefix)
    {
        var sb = new StringBuilder("index,predicted");
        for (int c = 0; c < r.Spec.Classes; c++) sb.Append(CultureInfo.InvariantCulture, $",{prefix}{c}");
        sb.Append(labels == null ? "\n" : ",label\n");
        for (int i = 0; i < r.Count; i++)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{i},{r.Predicted(i)}");
            foreach (var v in r.Probabilities(i)) sb.Append(',').Append(v.ToString("R", CultureInfo.InvariantCulture));
            sb.Append(labels == null ? "\n" : $",{labels[i]}\n");
        }
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
