using System.Globalization;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("eval", HelpText = "Evaluate a trained model on a test split: loss, accuracy, per-class accuracy and the confusion matrix; writes eval.json and confusion.csv.")]
internal sealed class EvalVerb : ModelVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    [Flag(nameof(Flags.EvalData))]
    public string? Data { get; set; }

    [Flag(nameof(Flags.EvalTestImages))]
    public string? TestImages { get; set; }

    [Flag(nameof(Flags.EvalTestLabels))]
    public string? TestLabels { get; set; }

    [Flag(nameof(Flags.PixelRange))]
    public string PixelRange { get; set; } = "";

    [Flag(nameof(Flags.Device))]
    public string Device { get; set; } = "";

    [Flag(nameof(Flags.EvalOutput))]
    public string? Output { get; set; }

    [Flag(nameof(Flags.BatchSize))]
    public int BatchSize { get; set; } = 1000;

    public int Execute(TextWriter stdout)
    {
        var network = ReadModel(stdout);
        if (BatchSize < 1) throw new UserError($"--batch-size {BatchSize}: give a whole number >= 1, e.g. 1000");
        if (Data != null && TestImages != null) throw new UserError("give either --data or --test-images, not both");
        if (TestLabels != null && TestImages == null) throw new UserError("--test-labels needs --test-images");
        var test = network.TestImages(Data == null && TestImages == null ? null
            : new DataFiles { Folder = Data ?? DataFiles.DefaultFolder, TestImages = TestImages, TestLabels = TestLabels, PixelRange = PixelRange });
        using var device = Gpu.Device.Open(Device);
        stdout.WriteLine($"data: {test.Origin}, {test.Count:N0} test images; pixels: {test.Scaling}");
        stdout.WriteLine($"device: {device.Description}");
        var result = network.Evaluate(device, test, BatchSize);
        stdout.WriteLine($"test loss {result.Loss:F4}, accuracy {result.Accuracy:F4} ({result.Count:N0} images)");
        if (Data == null && TestImages == null && network.Metrics.TryGetValue("test_loss", out double reportedLoss) && network.Metrics.TryGetValue("test_accuracy", out double reportedAccuracy))
            stdout.WriteLine($"training reported test loss {reportedLoss:F4}, accuracy {reportedAccuracy:F4} (model.json)");
        stdout.WriteLine();
        WriteTables(stdout, result);
        string outDir = result.Save(Output ?? network.Folder!);
        stdout.WriteLine($"wrote eval.json and confusion.csv in {outDir}");
        return 0;
    }

    /// <summary>The per-class accuracy table, then the confusion matrix (rows: true class, columns: predicted class).</summary>
    static void WriteTables(TextWriter stdout, Evaluation report)
    {
        var names = report.ClassNames;
        int classes = names.Count;
        string Label(int c) => names[c] == c.ToString() ? $"{c}" : $"{c} {names[c]}";
        int labelWidth = Math.Max("true \\ predicted".Length, Enumerable.Range(0, classes).Max(c => Label(c).Length)) + 2;
        stdout.WriteLine($"{"class".PadRight(labelWidth)}{"images",8}{"correct",9}{"accuracy",10}");
        for (int c = 0; c < classes; c++)
        {
            double? a = report.ClassAccuracy(c);
            stdout.WriteLine($"{Label(c).PadRight(labelWidth)}{report.ClassCount(c),8:N0}{report.ClassCorrect(c),9:N0}{(a is double v ? v.ToString("F3", CultureInfo.InvariantCulture) : "-"),10}");
        }
        stdout.WriteLine();
        stdout.WriteLine("confusion matrix (rows: true class, columns: predicted class)");
        int cell = Math.Max(5, Enumerable.Range(0, classes).Max(report.ClassCount).ToString().Length + 1);
        stdout.WriteLine("true \\ predicted".PadRight(labelWidth) + string.Concat(Enumerable.Range(0, classes).Select(c => c.ToString().PadLeft(cell))));
        for (int t = 0; t < classes; t++)
            stdout.WriteLine(Label(t).PadRight(labelWidth) + string.Concat(Enumerable.Range(0, classes).Select(p => report.Confusion[t][p].ToString().PadLeft(cell))));
    }
}
