using System.Globalization;
using System.Text;
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

    public int Execute(TextWriter stdout)
    {
        var network = ReadModel(stdout);
        int classes = network.Layers[^1];
        if (Top < 0 || Top > classes) throw new UserError($"--top {Top}: give a number of classes from 1 to {classes} (0: all)");
        var images = network.ReadImages(Input, Labels, PixelRange);
        if (Limit > 0 && Limit < images.Count) images = images.Take(Limit);
        int count = images.Count;
        var labels = images.HasLabels ? images.Labels.ToArray() : null;

        using var device = Gpu.Device.Open(Device);
        bool sigmoid = network.Loss == LossKind.SigmoidSquaredError;
        var names = network.ClassNames;
        stdout.WriteLine($"input: {Input}, {count:N0} images, " + (labels == null ? "no labels" : Labels != null ? $"labels from {Labels}" : "labels from its first column") + $"; pixels: {images.Scaling}");
        stdout.WriteLine($"device: {device.Description}");
        var scored = labels == null ? null : network.Evaluate(device, images);   // labelled: the loss from the same forward pass
        var predictions = scored?.Predictions ?? network.Predict(device, images);
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
            int predicted = predictions[i].Class;
            var p = predictions[i].Probabilities;
            var line = new StringBuilder($"{i,6}  {names[predicted].PadRight(nameWidth)}");
            if (labels != null)
            {
                bool right = labels[i] == predicted;
                correct += right ? 1 : 0;
                line.Append(names[labels[i]].PadRight(nameWidth)).Append(right ? "   " : " * ");
            }
            if (Top > 0)
                line.AppendJoin(", ", Enumerable.Range(0, classes).OrderByDescending(c => p[c]).ThenBy(c => c).Take(Top).Select(c => $"{names[c]} {P(p[c])}"));
            else
                foreach (var v in p) line.Append(' ').Append(P(v));
            stdout.WriteLine(line.ToString());
        }
        if (labels != null)
            stdout.WriteLine($"accuracy {(double)correct / count:F4} ({correct:N0} of {count:N0} images; * marks a wrong prediction), " +
                $"mean loss {scored!.Loss:F4} ({Words.Name(network.Loss)})");
        if (Output != null)
        {
            Prediction.WriteCsv(Output, predictions, labels, sigmoid ? "sigmoid" : "p");
            stdout.WriteLine($"wrote {Output}");
        }
        return 0;
    }

    static string P(double v) => v.ToString("0.000", CultureInfo.InvariantCulture).PadLeft(5);
}
