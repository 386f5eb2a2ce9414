using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using Gpu.Engine.Data;
using Gpu.Engine.Inference;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
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
        var model = ReadSavedModel(stdout);
        var spec = model.Spec;
        if (BatchSize < 1) throw new UserError($"--batch-size {BatchSize}: give a whole number >= 1, e.g. 1000");
        if (Data != null && TestImages != null) throw new UserError("give either --data or --test-images, not both");
        if (TestLabels != null && TestImages == null) throw new UserError("--test-labels needs --test-images");
        string source;
        Dataset test;
        string[] names;
        if (TestImages != null)
        {
            source = TestLabels == null ? Path.GetFullPath(TestImages) : $"{Path.GetFullPath(TestImages)} with labels {Path.GetFullPath(TestLabels)}";
            test = TableData.Read(TestImages, TestLabels, "test", spec.Classes, range: PixelRanges.Parse(PixelRange));
            names = ClassNames.For(source, spec.Classes);
        }
        else
        {
            var from = (Data != null ? DataSource.OfFolder(Data) with { PixelRange = PixelRanges.Parse(PixelRange) } : model.Data)
                ?? throw new UserError($"{Path.Combine(model.Folder, SavedModel.JsonName)} names no training data; give --data DIR or --test-images FILE");
            source = from.Describe();
            test = from.LoadTest(spec.Classes);
            names = Data == null ? model.ClassNames : ClassNames.For(source, spec.Classes);
        }
        if (test.Features != spec.Inputs || test.Classes != spec.Classes)
            throw new UserError($"the model {spec} takes {spec.Inputs} inputs and {spec.Classes} classes, but the test images from {source} have " +
                $"{test.Features} pixels and {test.Classes} classes; give data of the kind it was trained on");
        string outDir = AtomicFile.EnsureFolder(Output ?? model.Folder);

        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"data: {source}, {test.Count:N0} test images; pixels: {test.Scaling}");
        stdout.WriteLine($"device: {device.Describe()}");
        var result = Predictor.Run(device, spec, model.Parameters, test.Pixels, test.Labels, BatchSize, faultAdvice: "retry with --device cpu");
        var report = result.Report(test.Labels);
        double loss = result.Loss!.Value;
        stdout.WriteLine($"test loss {loss:F4}, accuracy {report.OverallAccuracy:F4} ({report.Total:N0} images)");
        if (Data == null && TestImages == null && model.Metric("test_loss") is double reportedLoss && model.Metric("test_accuracy") is double reportedAccuracy)
            stdout.WriteLine($"training reported test loss {reportedLoss:F4}, accuracy {reportedAccuracy:F4} ({SavedModel.JsonName})");
        stdout.WriteLine();
        WriteTables(stdout, report, names);

        var json = new JsonObject
        {
            ["model"] = Path.GetFullPath(model.Folder),
            ["layers"] = spec.ToString(),
            ["data"] = source,
            ["device"] = $"{device.Id} ({device.Name})",
            ["loss"] = loss,
            ["accuracy"] = report.OverallAccuracy,
            ["count"] = report.Total,
            ["classes"] = new JsonArray(Enumerable.Range(0, spec.Classes).Select(c => (JsonNode)new JsonObject
            {
                ["class"] = c, ["name"] = names[c], ["count"] = report.Count(c), ["correct"] = report.Correct(c), ["accuracy"] = report.Accuracy(c),
            }).ToArray()),
            ["confusion"] = new JsonArray(Enumerable.Range(0, spec.Classes).Select(t =>
                (JsonNode)new JsonArray(Enumerable.Range(0, spec.Classes).Select(p => (JsonNode)report.Confusion[t, p]).ToArray())).ToArray()),
            ["confusion_layout"] = "confusion[true class][predicted class] = number of images",
        };
        AtomicFile.WriteAllText(Path.Combine(outDir, "eval.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        var csv = new StringBuilder("true\\predicted," + string.Join(",", names.Select(Csv)) + "\n");
        for (int t = 0; t < spec.Classes; t++)
            csv.Append(Csv(names[t])).Append(',').AppendJoin(",", Enumerable.Range(0, spec.Classes).Select(p => report.Confusion[t, p])).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(outDir, "confusion.csv"), csv.ToString());
        stdout.WriteLine($"wrote eval.json and confusion.csv in {outDir}");
        return 0;
    }

    /// <summary>The per-class accuracy table, then the confusion matrix (rows: true class, columns: predicted class).</summary>
    static void WriteTables(TextWriter stdout, ClassReport report, string[] names)
    {
        int classes = report.Classes;
        string Label(int c) => names[c] == c.ToString() ? $"{c}" : $"{c} {names[c]}";
        int labelWidth = Math.Max("true \\ predicted".Length, Enumerable.Range(0, classes).Max(c => Label(c).Length)) + 2;
        stdout.WriteLine($"{"class".PadRight(labelWidth)}{"images",8}{"correct",9}{"accuracy",10}");
        for (int c = 0; c < classes; c++)
        {
            double? a = report.Accuracy(c);
            stdout.WriteLine($"{Label(c).PadRight(labelWidth)}{report.Count(c),8:N0}{report.Correct(c),9:N0}{(a is double v ? v.ToString("F3", CultureInfo.InvariantCulture) : "-"),10}");
        }
        stdout.WriteLine();
        stdout.WriteLine("confusion matrix (rows: true class, columns: predicted class)");
        int cell = Math.Max(5, Enumerable.Range(0, classes).Max(report.Count).ToString().Length + 1);
        stdout.WriteLine("true \\ predicted".PadRight(labelWidth) + string.Concat(Enumerable.Range(0, classes).Select(c => c.ToString().PadLeft(cell))));
        for (int t = 0; t < classes; t++)
            stdout.WriteLine(Label(t).PadRight(labelWidth) + string.Concat(Enumerable.Range(0, classes).Select(p => report.Confusion[t, p].ToString().PadLeft(cell))));
    }

    static string Csv(string field) => field.Contains(',') || field.Contains('"') ? $"\"{field.Replace("\"", "\"\"")}\"" : field;
}
