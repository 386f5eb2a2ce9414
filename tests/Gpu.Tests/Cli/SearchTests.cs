using System.Globalization;
using System.Text.Json;
using Gpu.Engine.Runs;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>gpu search end to end on a slice of Fashion-MNIST: 8 trials, an interruption and its resume, the choice of the best, YAML grids, bad input.</summary>
public sealed class SearchTests : TempFolderTest
{
    static string[] Grid(string output, params string[] more) =>
        ["search", "--data", Repo.FashionMnist, "--limit", "1500", "--layers", "8;16", "--lr", "0.01,0.1", "--batch-size", "32,64", "--epochs", "1",
         "--device", "cpu", "--output", output, .. more];

    /// <summary>A stdout that requests a stop (as Ctrl-C does) when the program prints a line starting with <paramref name="trigger"/>.</summary>
    sealed class StopOnLine(string trigger, CancellationTokenSource stop) : StringWriter
    {
        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value?.StartsWith(trigger) == true) stop.Cancel();
        }
    }

    static List<string[]> Rows(string output) =>
        File.ReadAllLines(Path.Combine(output, "search.csv")).Skip(1).Select(l => l.Split(',')).ToList();

    static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    [Test]
    public void Eight_trials_interrupted_then_resumed_pick_the_best_validation_accuracy()
    {
        var output = Path.Combine(dir, "out");
        using var stop = new CancellationTokenSource();
        var first = new StopOnLine("[3/8]", stop);
        var err = new StringWriter();
        int code = Gpu.Cli.Program.Run(Grid(output), first, err, stop.Token);
        Assert.That(code, Is.EqualTo(130), err.ToString());
        Assert.That(err.ToString(), Does.Contain("interrupted after 3 of 8 trials").And.Contain("continue with the same command"));
        Assert.That(Rows(output), Has.Count.EqualTo(3), "search.csv keeps the trials finished before the stop");
        Assert.That(Directory.Exists(Path.Combine(output, "best")), Is.False, "no retraining after an interruption");

        var r = Run(Grid(output));
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("holds 3 of the 8 trials already: skipping them, 5 to run"));
        var progress = r.Out.Split('\n').Where(l => l.StartsWith('[')).ToList();
        Assert.That(progress, Has.Count.EqualTo(5), "only the missing trials run");
        Assert.That(progress[^1], Does.StartWith("[8/8]").And.Contain("best").And.Contain("elapsed").And.Contain("left"));

        // 8 distinct rows: every combination once
        var rows = Rows(output);
        var header = File.ReadLines(Path.Combine(output, "search.csv")).First().Split(',');
        Assert.That(header[..8], Is.EqualTo(new[] { "layers", "lr", "batch_size", "epochs", "l2", "momentum", "seed", "status" }));
        var combos = rows.Select(c => $"{c[0]}/{c[1]}/{c[2]}").ToList();
        Assert.That(combos, Is.EquivalentTo(from l in new[] { "8", "16" } from lr in new[] { "0.01", "0.1" } from bs in new[] { "32", "64" } select $"{l}/{lr}/{bs}"));
        Assert.That(rows.All(c => c[7] == "ok" && D(c[8]) is >= 0 and <= 1 && D(c[9]) > 0), "every trial finished with a validation score");

        // the best: highest validation accuracy, ties broken by lower validation loss, then grid order (layers, lr, batch size)
        var want = rows.OrderByDescending(c => D(c[8])).ThenBy(c => D(c[9]))
            .ThenBy(c => int.Parse(c[0])).ThenBy(c => D(c[1])).ThenBy(c => int.Parse(c[2])).First();
        using var best = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "best.json")));
        var b = best.RootElement.GetProperty("best");
        var s = b.GetProperty("settings");
        Assert.That(s.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32().ToString()).Single(), Is.EqualTo(want[0]));
        Assert.That(s.GetProperty("lr").GetDouble(), Is.EqualTo(D(want[1])).Within(1e-9));
        Assert.That(s.GetProperty("batch_size").GetInt32().ToString(), Is.EqualTo(want[2]));
        Assert.That(b.GetProperty("val_accuracy").GetDouble(), Is.EqualTo(rows.Max(c => D(c[8]))));
        Assert.That(best.RootElement.GetProperty("trials_done").GetInt32(), Is.EqualTo(8));

        // retrained on the same split: the CPU accelerator reproduces the trial's validation accuracy; the model is saved as train saves it
        var test = best.RootElement.GetProperty("test");
        Assert.That(test.GetProperty("retrained_val_accuracy").GetDouble(), Is.EqualTo(b.GetProperty("val_accuracy").GetDouble()));
        var model = SavedModel.Read(Path.Combine(output, "best"));
        Assert.That(model.Spec.Sizes, Is.EqualTo(new[] { 784, int.Parse(want[0]), 10 }));
        Assert.That(model.Options!.LearningRate, Is.EqualTo((float)D(want[1])));
        Assert.That((double)model.Info["metrics"]!["test_accuracy"]!, Is.EqualTo(test.GetProperty("accuracy").GetDouble()));
        Assert.That(test.GetProperty("accuracy").GetDouble(), Is.InRange(0.3, 1.0));
        Assert.That(File.Exists(Path.Combine(output, "best", "curves.png")) && File.Exists(Path.Combine(output, "best", "history.csv")));
        Assert.That(r.Out, Does.Contain($"test accuracy {test.GetProperty("accuracy").GetDouble():F4}"));

        // other shared settings are refused; the same command again runs nothing and reuses best/
        AssertOneLineError(Run(Grid(output, "--val-fraction", "0.2")), "other settings (shared val_fraction: 0.1 there, 0.2 now)", 2);
        var again = Run(Grid(output));
        Assert.That(again.Code, Is.Zero, again.Err);
        Assert.That(again.Out, Does.Contain("skipping them, 0 to run").And.Contain("reused it"));
        Assert.That(Rows(output), Has.Count.EqualTo(8));
    }

    [Test]
    public void Yaml_grid_file_with_command_line_override()
    {
        var grid = Path.Combine(dir, "grid.yaml");
        File.WriteAllText(grid, """
            Train:
              learning_rate: [0.05, 0.1]
              batch_size: 64
              epochs: 1
              optimizer: adam
              val_fraction: 0.2
            Model:
              hidden_size: "8;12"
            """);
        var output = Path.Combine(dir, "out");
        var r = Run("search", "--config", grid, "--lr", "0.01", "--data", Repo.FashionMnist, "--limit", "600", "--device", "cpu", "--output", output);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("grid: layers 8 | 12; lr 0.01; batch-size 64; epochs 1").And.Contain("= 2 trials").And.Contain("20% held out"));
        var rows = Rows(output);
        Assert.That(rows.Select(c => (c[0], c[1], c[2], c[3])), Is.EqualTo(new[] { ("8", "0.01", "64", "1"), ("12", "0.01", "64", "1") }));
        using var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "search.json")));
        Assert.That(settings.RootElement.GetProperty("shared").GetProperty("optimizer").GetString(), Is.EqualTo("adam"));
        Assert.That(SavedModel.Read(Path.Combine(output, "best")).Options!.Optimizer, Is.EqualTo(Gpu.Engine.Settings.OptimizerKind.Adam));
    }

    [Test]
    public void Example_grid_file_parses_into_twelve_trials()
    {
        var file = Gpu.Engine.Settings.ExperimentConfig.Read(Path.Combine(Repo.Root, "src", "Gpu.Cli", "examples", "search_grid.yaml"), grid: true);
        var grid = Gpu.Engine.Experiments.SearchGrid.Build(file.ApplyTo(new(), _ => false), file, new Dictionary<string, string>());
        Assert.That(grid.Trials, Has.Count.EqualTo(12));
        Assert.That(grid.Summary(), Does.StartWith("layers 128 | 256-128; lr 0.01 | 0.05 | 0.1; batch-size 64; epochs 5; l2 0.0001 | 0.001"));
    }

    static IEnumerable<TestCaseData> BadInput()
    {
        yield return new TestCaseData(new[] { "--lr", "0.1,abc" }, "--lr: 'abc' is not valid; give a positive number").SetName("Search_bad_number");
        yield return new TestCaseData(new[] { "--lr", "0.1," }, "--lr '0.1,': empty choice").SetName("Search_empty_choice");
        yield return new TestCaseData(new[] { "--layers", "8;" }, "--layers '8;': empty choice").SetName("Search_empty_layers_choice");
        yield return new TestCaseData(new[] { "--lr", "0.1,-1" }, "--lr -1: give a positive number").SetName("Search_negative_lr");
        yield return new TestCaseData(new[] { "--batch-size", "32,32" }, "the value 32 is listed twice").SetName("Search_duplicate_choice");
        yield return new TestCaseData(new[] { "--val-fraction", "0" }, "--val-fraction 0: a search scores every trial on the validation split").SetName("Search_no_validation_split");
        yield return new TestCaseData(new[] { "--epochs", "0,1" }, "--epochs 0").SetName("Search_zero_epochs");
    }

    [TestCaseSource(nameof(BadInput))]
    public void Bad_input(string[] flags, string message) =>
        AssertOneLineError(Run(["search", "--device", "cpu", "--output", Path.Combine(dir, "out"), .. flags]), message, 2);

    [Test]
    public void Bad_grid_files()
    {
        string Yaml(string name, string text) { var p = Path.Combine(dir, name); File.WriteAllText(p, text); return p; }
        string Search(string file) => Run("search", "--config", file, "--device", "cpu", "--output", Path.Combine(dir, "out")).Err;
        var empty = Yaml("empty.yaml", "Train:\n  learning_rate: []\n");
        AssertOneLineError(Run("search", "--config", empty, "--output", dir), $"{empty} line 2: Train.learning_rate: empty list", 2);
        var shared = Yaml("shared.yaml", "Train:\n  optimizer: [sgd, adam]\n");
        AssertOneLineError(Run("search", "--config", shared, "--output", dir), "Train.optimizer: a list of choices is only allowed for hidden_size, learning_rate, batch_size, epochs, reg, momentum, seed", 2);
        var word = Yaml("word.yaml", "Model:\n  hidden_size: [8, many]\n");
        Assert.That(Search(word), Does.Contain("Model.hidden_size: 'many' is not valid"));
    }

    [Test]
    public void Damaged_search_csv_is_reported_with_its_line()
    {
        var output = Path.Combine(dir, "out");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "search.csv"),
            "layers,lr,batch_size,epochs,l2,momentum,seed,status,val_accuracy,val_loss,train_loss,train_accuracy,epochs_trained,seconds\n8,0.1,32,1,0.0001,0.9,1,ok,high,1,1,0.5,1,1\n");
        AssertOneLineError(Run("search", "--data", Repo.FashionMnist, "--limit", "300", "--layers", "8", "--epochs", "1", "--device", "cpu", "--output", output),
            "search.csv line 2: val_accuracy 'high' is not a number; fix or delete that line", 2);
    }
}
