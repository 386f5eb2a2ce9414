using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Model;
using Gpu.Engine.Reference;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Training;

/// <summary>The grid search engine on its own (the CLI tests in Cli/SearchTests.cs run it end to end).</summary>
public sealed class GridSearchTests : TempFolderTest
{
    [Test]
    public void A_search_compiles_the_kernels_once_for_all_trials()
    {
        var data = DataSource.Load(Repo.FashionMnist);
        data = data with { Train = data.Train.Take(400) };
        using var device = ComputeDevice.Open("cpu");
        var grid = SearchGrid.Build(new TrainOptions(), null, new Dictionary<string, string> { ["layers"] = "6;10", ["lr"] = "0.05,0.1", ["epochs"] = "1" });
        var search = GridSearch.Open(Path.Combine(dir, "out"), grid, data, "fashion-mnist", 400);
        int before = KernelSet.Compilations;
        var reports = new List<TrialReport>();
        Assert.That(search.Run(device, data, onTrial: reports.Add), Is.True);
        search.RetrainBest(device, data);
        Assert.That(KernelSet.Compilations - before, Is.EqualTo(1), "one kernel set for 4 trials and the retraining");
        Assert.That(reports.Select(r => r.Done), Is.EqualTo(new[] { 1, 2, 3, 4 }));
        Assert.That(reports[^1].Best!.Value.Result.ValAccuracy, Is.EqualTo(reports.Max(r => r.Result.ValAccuracy)));
    }
}
