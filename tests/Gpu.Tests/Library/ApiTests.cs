using System.Globalization;
using Gpu.Engine;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Library;

/// <summary>The library API (namespace Gpu) in-process: the common job end to end, determinism, cancellation and one-message errors.</summary>
public sealed class ApiTests : TempFolderTest
{
    static readonly TrainOptions Small = new() { Hidden = [16], Epochs = 2, BatchSize = 64, Seed = 3 };

    [Test]
    public void Trains_evaluates_predicts_saves_and_loads_what_gpu_eval_reads()
    {
        using var device = Device.Open("cpu");
        var data = ImageData.Load(Repo.FashionMnist).TakeTrain(600);
        Assert.That((data.Train.Count, data.Test.Count, data.Train.Features, data.Train.Classes), Is.EqualTo((600, 10_000, 784, 10)));
        var progress = new List<TrainingProgress>();
        var network = Network.Train(device, data, Small, progress.Add);
        Assert.That(progress.Select(p => (p.Epoch, p.Epochs)), Is.EqualTo(new[] { (1, 2), (2, 2) }));
        Assert.That(progress[1].ToString(), Does.StartWith("epoch   2/2 loss ").And.Contain("| val "));
        Assert.That(progress[1].ValidationAccuracy, Is.Not.Null, "10% of the 600 images held out");
        Assert.That(network.Layers, Is.EqualTo(new[] { 784, 16, 10 }));
        Assert.That(network.ParameterCount, Is.EqualTo(784 * 16 + 16 * 10 + 16 + 10));
        Assert.That(network.Description, Is.EqualTo("784-16-10 relu, softmax-ce"));
        Assert.That(network.ClassNames[9], Is.EqualTo("Ankle boot"), "Fashion-MNIST's names");

        var test = network.Evaluate(device, data.Test);
        Assert.That(test.Count, Is.EqualTo(10_000));
        Assert.That(test.Accuracy, Is.GreaterThan(0.4), "well above chance (0.1) after 2 epochs on 540 images");
        Assert.That(test.Predictions.Select(p => p.Class), Is.EqualTo(network.Predict(device, data.Test).Select(p => p.Class)), "the evaluation's own forward pass predicts as Predict does");

        var first = data.Test.Take(50);
        var predicted = network.Predict(device, first);
        Assert.That(predicted, Has.Count.EqualTo(50));
        Assert.That(predicted.Select(p => p.Probabilities.Sum()), Has.All.EqualTo(1.0).Within(1e-9));
        Assert.That(predicted.Select(p => p.Probabilities.ToList().IndexOf(p.Probabilities.Max())), Is.EqualTo(predicted.Select(p => p.Class)));
        double agree = Enumerable.Range(0, 50).Count(i => predicted[i].Class == first.Labels.Span[i]) / 50.0;
        Assert.That(agree, Is.GreaterThan(0.3));

        string folder = Path.Combine(dir, "model");
        network.Save(folder);
        var loaded = Network.Load(folder);
        Assert.That(loaded.GetParameters(), Is.EqualTo(network.GetParameters()), "model.npy round trip is exact");
        Assert.That(loaded.Predict(device, first.Pixels.Span).Select(p => p.Class), Is.EqualTo(predicted.Select(p => p.Class)));

        // Export writes what gpu export writes for the saved folder, byte for byte
        foreach (var (format, word) in new[] { (ExportFormat.Onnx, "onnx"), (ExportFormat.Safetensors, "safetensors") })
        {
            string mine = Path.Combine(dir, "api." + word), theirs = Path.Combine(dir, "cli." + word);
            Assert.That(network.Export(mine, format), Does.StartWith($"wrote {mine}: "));
            var e = CliRun.Run("export", "--model", folder, "--format", word, "--output", theirs);
            Assert.That(e.Code, Is.Zero, e.Err);
            Assert.That(File.ReadAllBytes(mine), Is.EqualTo(File.ReadAllBytes(theirs)), word);
        }

        // the saved folder is a gpu model: gpu eval reads it and finds the same score
        var r = CliRun.Run("eval", "--model", folder, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain($"accuracy {test.Accuracy.ToString("F4", CultureInfo.InvariantCulture)} (10,000 images)"));
        Assert.That(r.Out, Does.Contain($"training reported test loss {test.Loss.ToString("F4", CultureInfo.InvariantCulture)}"), "Train scored the test set as Evaluate does");
    }

    [Test]
    public void Same_seed_gives_the_same_network_and_another_seed_another()
    {
        using var device = Device.Open("cpu");
        var data = ImageData.Load(Repo.FashionMnist).TakeTrain(300);
        var one = new TrainOptions { Hidden = [8], Epochs = 1, BatchSize = 32, Seed = 5 };
        var a = Network.Train(device, data, one).GetParameters();
        var b = Network.Train(device, data, one).GetParameters();
        var c = Network.Train(device, data, one with { Seed = 6 }).GetParameters();
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));
    }

    [Test]
    public void Starts_from_exported_weights_as_gpu_train_init_from_does()
    {
        using var device = Device.Open("cpu");
        var data = ImageData.Load(Repo.FashionMnist).TakeTrain(300);
        var one = new TrainOptions { Hidden = [8], Epochs = 1, BatchSize = 32, Seed = 5 };
        var first = Network.Train(device, data, one);
        string weights = Path.Combine(dir, "first.safetensors");
        first.Export(weights, ExportFormat.Safetensors);

        // the same start and options through the CLI give the same network, bit for bit; a seed that would initialise differently is not used
        var again = Network.Train(device, data, one with { Seed = 9 }, initFrom: weights);
        string cliOut = Path.Combine(dir, "cli");
        var r = CliRun.Run("train", "--data", Repo.FashionMnist, "--limit", "300", "--layers", "8", "--epochs", "1", "--batch-size", "32", "--seed", "9",
            "--device", "cpu", "--init-from", weights, "--output", cliOut);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(Network.Load(cliOut).GetParameters(), Is.EqualTo(again.GetParameters()));
        Assert.That(again.GetParameters(), Is.Not.EqualTo(Network.Train(device, data, one with { Seed = 9 }).GetParameters()), "seed 9's own initialisation differs");

        var wide = new TrainOptions { Hidden = [9], Epochs = 1, Seed = 5 };
        Assert.That(Assert.Throws<UserError>(() => Network.Train(device, data, wide, initFrom: weights))!.Message, Does.Contain("[9, 784]").And.Contain("[8, 784]"));
    }

    [Test]
    public void A_cancelled_run_throws_OperationCanceledException()
    {
        using var device = Device.Open("cpu");
        var data = ImageData.Load(Repo.FashionMnist).TakeTrain(300);
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.Throws<OperationCanceledException>(() => Network.Train(device, data, Small, cancel: cancel.Token));
    }

    [Test]
    public void Mistakes_are_one_message_UserErrors()
    {
        using var device = Device.Open("cpu");
        var data = ImageData.Load(Repo.FashionMnist);
        Assert.That(Assert.Throws<UserError>(() => data.TakeTrain(0))!.Message, Does.Contain(">= 1"));
        Assert.That(Assert.Throws<UserError>(() => Network.Load(Path.Combine(dir, "none")))!.Message, Does.Contain("folder not found"));
        Assert.That(Assert.Throws<UserError>(() => ImageData.Load(Path.Combine(dir, "none")))!.Message, Does.Not.Contain("\n"));
        Assert.That(Assert.Throws<UserError>(() => Network.Train(device, data.TakeTrain(100), Small with { Epochs = 0 }))!.Message, Does.Contain("epochs"));
        var network = Network.Train(device, data.TakeTrain(100), Small with { Epochs = 1 });
        Assert.That(Assert.Throws<UserError>(() => network.Predict(device, new byte[100]))!.Message, Does.Contain("not whole images of 784 pixels"));
    }

    [Test]
    public void A_run_kept_in_a_folder_stops_and_resumes_to_the_uninterrupted_result()
    {
        using var device = Device.Open("cpu");
        var files = new DataFiles { Folder = Repo.FashionMnist };
        var three = Small with { Epochs = 3 };
        var whole = Network.Train(device, ImageData.Open(files, limit: 500), three, new RunOptions { Output = Path.Combine(dir, "whole") });
        Assert.That(File.Exists(Path.Combine(dir, "whole", "model.npy")) && File.Exists(Path.Combine(dir, "whole", "checkpoint", "state.json")));

        // stop after the first epoch's line, as Ctrl-C does: the call throws, saying how to continue, and leaves a checkpoint
        using var stop = new CancellationTokenSource();
        var said = new List<string>();
        string folder = Path.Combine(dir, "stopped");
        var stopped = Assert.Throws<OperationCanceledException>(() => Network.Train(device, ImageData.Open(files, limit: 500), three,
            new RunOptions { Output = folder, Say = said.Add, Progress = _ => stop.Cancel(), Cancel = stop.Token, Command = "mytool" }))!;
        Assert.That(stopped.Message, Does.Contain("checkpoint written").And.Contain($"mytool train --resume {folder}"));
        Assert.That(said, Has.Some.StartWith("network: 784-16-10").And.Some.StartWith("training: batch 64"));

        var steps = new List<StepReport>();
        var resumed = Network.Resume(folder, run: new RunOptions { Step = steps.Add });
        Assert.That(resumed.GetParameters(), Is.EqualTo(whole.GetParameters()), "bit for bit the uninterrupted run");
        Assert.That(steps[0].Epoch, Is.EqualTo(2), "continues where it stopped");
        Assert.That(steps[^1].GlobalStep, Is.EqualTo(steps[^1].TotalSteps));
        Assert.That(Network.Load(folder).GetParameters(), Is.EqualTo(whole.GetParameters()), "and saved it");

        var refused = Assert.Throws<UserError>(() => Network.Resume(folder, new ResumeOptions { LearningRate = 0.01f }))!;
        Assert.That(refused.Message, Does.Contain("--lr cannot be changed").And.Contain("did not diverge"));
    }

    [Test]
    public void A_saved_network_exports_and_draws_into_its_folder_and_keeps_its_metrics()
    {
        using var device = Device.Open("cpu");
        string folder = Path.Combine(dir, "run");
        var trained = Network.Train(device, ImageData.Open(new DataFiles { Folder = Repo.FashionMnist }, limit: 300), Small with { Epochs = 1 }, new RunOptions { Output = folder });
        Assert.That(trained.Folder, Is.EqualTo(folder));
        var network = Network.Load(folder);
        Assert.That(network.Metrics["test_accuracy"], Is.InRange(0.0, 1.0));
        Assert.That(network.Export(ExportFormat.Onnx), Does.Contain(Path.Combine(folder, "model.onnx")));
        Assert.That(File.Exists(Path.Combine(folder, "model.onnx")));
        Assert.That(network.DrawWeights(count: 4), Does.StartWith($"wrote {Path.Combine(folder, "weights.png")}: 4 tiles of 28 x 28 in 2 columns"));
        Assert.That(Assert.Throws<UserError>(() => network.DrawWeights(count: 17))!.Message, Does.Contain("--count 17: the first layer has 16 units"));
        var inMemory = Network.Train(device, ImageData.Load(Repo.FashionMnist).TakeTrain(100), Small with { Epochs = 1 });
        Assert.That(inMemory.Folder, Is.Null);
        Assert.That(Assert.Throws<UserError>(() => inMemory.Export(ExportFormat.Onnx))!.Message, Does.Contain("no folder"));
    }

    [Test]
    public void A_grid_search_ranks_its_trials_retrains_the_best_and_merges_shards_as_gpu_search_does()
    {
        using var device = Device.Open("cpu");
        var files = new DataFiles { Folder = Repo.FashionMnist };
        var grid = TrialGrid.Build(Small with { Epochs = 1 }, new Dictionary<string, string> { ["layers"] = "8;16", ["lr"] = "0.05,0.1" });
        Assert.That(grid.Count, Is.EqualTo(4));
        Assert.That(grid.ToString(), Does.StartWith("layers 8 | 16; lr 0.05 | 0.1; ").And.EndWith(" = 4 trials"));

        string output = Path.Combine(dir, "search");
        var said = new List<string>();
        var progress = new List<SearchProgress>();
        var result = Search.Run(device, ImageData.Open(files, limit: 600), grid, new SearchOptions { Output = output, Say = said.Add, Progress = progress.Add });
        Assert.That(progress.Select(p => (p.Done, p.Total, p.Trial.Number)), Is.EqualTo(new[] { (1, 4, 1), (2, 4, 2), (3, 4, 3), (4, 4, 4) }));
        Assert.That(progress[3].ToString(), Does.StartWith("[4/4] trial 4: layers 16, lr 0.1 | val acc "));
        Assert.That(said, Does.Contain(progress[3].Line), "the progress line is one of the lines said");
        Assert.That((result.Trials, result.Done, result.Ranking.Count), Is.EqualTo((4, 4, 4)));
        Assert.That(result.Ranking.Select(t => t.ValidationAccuracy), Is.Ordered.Descending);
        var best = result.Best!;
        Assert.That(best.Settings, Does.StartWith($"layers {(best.Number <= 2 ? 8 : 16)}, lr {(best.Number % 2 == 1 ? "0.05" : "0.1")}, batch-size 64, epochs 1"));
        Assert.That(result.TestAccuracy, Is.GreaterThan(0.3));
        Assert.That(Network.Load(result.BestModel!).Metrics["test_accuracy"], Is.EqualTo(result.TestAccuracy!.Value).Within(1e-12), "best/ is the retrained best");

        // gpu search with the same grid finds the same scores and prints the same best line
        string cliOutput = Path.Combine(dir, "cli");
        var r = CliRun.Run("search", "--data", Repo.FashionMnist, "--limit", "600", "--layers", "8;16", "--lr", "0.05,0.1", "--epochs", "1", "--batch-size", "64",
            "--seed", "3", "--device", "cpu", "--output", cliOutput);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain(said.First(l => l.StartsWith("best: "))));
        static IEnumerable<string> Scores(string folder) => File.ReadLines(Path.Combine(folder, "search.csv")).Select(l => string.Join(",", l.Split(',')[..^1]));
        Assert.That(Scores(cliOutput), Is.EqualTo(Scores(output)), "search.csv, but for the seconds");

        // two shards run apart and merged: the same ranking, and the best retrained to the same test accuracy
        string sharded = Path.Combine(dir, "sharded");
        foreach (var shard in new[] { "0/2", "1/2" })
        {
            var part = Search.Run(device, ImageData.Open(files, limit: 600), grid, new SearchOptions { Output = sharded, Shard = shard });
            Assert.That((part.Trials, part.Done, part.TestAccuracy), Is.EqualTo((2, 2, (double?)null)));
            Assert.That(part.Folder, Is.EqualTo(Path.Combine(sharded, $"shard-{shard[0]}-of-2")));
        }
        var named = Search.Merge(sharded);
        Assert.That(named.Ranking.Select(t => t.Number), Is.EqualTo(result.Ranking.Select(t => t.Number)));
        Assert.That(named.TestAccuracy, Is.Null, "without Retrain the merge names the best only");
        var merged = Search.Merge(sharded, new MergeOptions { Retrain = true, Device = "cpu" });
        Assert.That(merged.TestAccuracy, Is.EqualTo(result.TestAccuracy));

        Assert.That(Assert.Throws<UserError>(() => Search.Run(device, ImageData.Open(files, limit: 600), grid, new SearchOptions { Output = output, Shard = "2/2" }))!.Message,
            Does.Contain("there is no shard 2 of 2"));
        Assert.That(Assert.Throws<UserError>(() => TrialGrid.Build(choices: new Dictionary<string, string> { ["lr"] = "0.1,0.1" }))!.Message, Does.Contain("0.1"));
    }

    [Test]
    public void Device_list_has_the_cpu_accelerator_and_says_what_each_device_is()
    {
        var list = Device.List();
        Assert.That(list.Select(d => d.Id), Does.Contain("cpu"));
        var cpu = list.First(d => d.Id == "cpu");
        Assert.That((cpu.Kind, cpu.Usable), Is.EqualTo(("CPU", true)));
        Assert.That(list.Where(d => !d.Usable).Select(d => d.Note), Has.None.Empty, "a refused device says why");
    }

    [Test]
    public void A_fresh_networks_gradient_checks_against_float64_differences()
    {
        using var device = Device.Open("cpu");
        var train = ImageData.Load(Repo.FashionMnist).TakeTrain(20).Train;
        var network = Network.Create(train.Features, train.Classes, Small with { Activation = Activation.Tanh });
        Assert.That(network.GetParameters(), Is.EqualTo(Network.Create(784, 10, Small with { Activation = Activation.Tanh }).GetParameters()), "seeded");
        var indices = network.SampleParameters(300, seed: 3);
        Assert.That(indices.Select(network.PartOf).Distinct(), Is.EquivalentTo(new[] { "layer 1 W", "layer 1 b", "layer 2 W", "layer 2 b" }));
        var report = network.CheckGradients(device, train, examples: 5, indices);
        Assert.That(report.Parameters, Has.Count.EqualTo(300));
        Assert.That(report.RelativeError, Is.LessThan(1e-4), "float32 device gradient against float64 central differences");
        Assert.That(report.Kinks, Is.Zero, "tanh has no kinks");
        string csv = Path.Combine(dir, "grad.csv");
        report.WriteCsv(csv);
        Assert.That(File.ReadAllLines(csv), Has.Length.EqualTo(301));
    }
}
