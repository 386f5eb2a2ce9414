using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Training;

/// <summary>The grid search engine on its own (the CLI tests in Cli/SearchTests.cs run it end to end).</summary>
public sealed class GridSearchTests : TempFolderTest
{
    [Test]
    public void A_search_compiles_the_kernels_once_for_all_trials()
    {
        var data = DataSource.OfFolder(Repo.FashionMnist).Load();
        data = data with { Train = data.Train.Take(400) };
        using var device = ComputeDevice.Open("cpu");
        var grid = SearchGrid.Build(new TrainOptions(), null, new Dictionary<string, string> { ["layers"] = "6;10", ["lr"] = "0.05,0.1", ["epochs"] = "1" });
        var search = GridSearch.Open(Path.Combine(dir, "out"), grid, data, DataSource.OfFolder(Repo.FashionMnist), 400);
        int before = KernelSet.Compilations;
        var reports = new List<TrialReport>();
        Assert.That(search.Run(device, data, onTrial: reports.Add), Is.True);
        search.RetrainBest(device, data);
        Assert.That(KernelSet.Compilations - before, Is.EqualTo(1), "one kernel set for 4 trials and the retraining");
        Assert.That(reports.Select(r => r.Done), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(reports[^1].Best!.Value.Result.ValAccuracy, Is.EqualTo(reports.Max(r => r.Result.ValAccuracy)));
    }

    [Test]
    public void A_device_failure_names_the_trial_ends_with_the_callers_advice_and_keeps_the_finished_trials()
    {
        var data = DataSource.OfFolder(Repo.FashionMnist).Load();
        data = data with { Train = data.Train.Take(400) };
        var grid = SearchGrid.Build(new TrainOptions(), null, new Dictionary<string, string> { ["layers"] = "6", ["lr"] = "0.05,0.1", ["epochs"] = "1" });
        string folder = Path.Combine(dir, "out");
        using (var device = ComputeDevice.Open("cpu"))
        {
            var search = GridSearch.Open(folder, grid, data, DataSource.OfFolder(Repo.FashionMnist), 400);
            // the device goes away after the first trial: the second one's first kernel launch fails
            var e = Assert.Throws<Gpu.Engine.UserError>(() => search.Run(device, data, onTrial: _ => device.Accelerator.Dispose(), faultAdvice: "rerun to continue"))!;
            Assert.That(e.ExitCode, Is.EqualTo(4));
            Assert.That(e.Message, Does.StartWith($"trial 2 ({grid.Describe(grid.Trials[1], all: true)}): device error on cpu (CPUAccelerator) "));
            Assert.That(e.Message, Does.EndWith("; rerun to continue").And.Not.Contain("\n"));
            Assert.That(search.Done, Is.EqualTo(1));
        }
        using (var device = ComputeDevice.Open("cpu"))
        {
            var again = GridSearch.Open(folder, grid, data, DataSource.OfFolder(Repo.FashionMnist), 400);
            Assert.That(again.Skipped, Is.EqualTo(1), "search.csv kept the finished trial");
            Assert.That(again.Run(device, data), Is.True);
            device.Accelerator.Dispose();
            var e = Assert.Throws<Gpu.Engine.UserError>(() => again.RetrainBest(device, data, faultAdvice: "rerun to retrain it"))!;
            var (best, _) = again.Best!.Value;
            Assert.That(e.Message, Does.StartWith($"retraining the best trial, {best.Number} ({grid.Describe(best, all: true)}): device error on cpu (CPUAccelerator) "));
            Assert.That(e.Message, Does.EndWith("; rerun to retrain it"));
        }
    }
}
