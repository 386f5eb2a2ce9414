using Gpu.Engine.Data;
using Gpu.Engine.Experiments;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("search", HelpText = "Hyperparameter grid search: train every combination on the training split, score it on the validation split, then retrain the best and report its test accuracy.")]
[Settings("val-fraction", "precision", GridAxes = true)]
internal sealed class SearchVerb : SettingsVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Args, c.Stop);

    [Option("output", Required = true, HelpText = "Folder for search.csv (a row per finished trial), best.json (the best trial, then its test metrics), search.json (the shared settings) and best/ (the best retrained: model.npy, model.json, history.csv, curves.png). Rerunning with the same folder skips the trials search.csv holds. A shard (--shard) writes the same files, but no best/, in its own folder inside it, shard-K-of-N/.")]
    public string Output { get; set; } = "";

    [Option("config", HelpText = "YAML grid file: Train: and Model: sections as for 'train --config', where a list gives the choices (learning_rate: [0.01, 0.1]); hidden_size choices are numbers, lists ([[256, 128], [512]]) or strings ('256,128;512'). Other keys (optimizer, schedule, activation, ...) set what all trials share. Flags override it.")]
    public string? Config { get; set; }

    [Option("data", Default = DataLocator.DefaultFolder, HelpText = "Data folder (IDX, .npy or .csv files), as for train.")]
    public string Data { get; set; } = DataLocator.DefaultFolder;

    [Option("limit", Default = 0, HelpText = SharedFlags.LimitHelp + " For quick searches.")]
    public int Limit { get; set; }

    [Option("device", Default = SharedFlags.DeviceDefault, HelpText = SharedFlags.DeviceHelp + " Every trial runs on it; kernels are compiled once.")]
    public string Device { get; set; } = SharedFlags.DeviceDefault;

    [Option("shard", HelpText = "K/N: run only shard K (0 to N-1) of N, the trials whose grid index (trial number - 1) is K modulo N, into --output's shard-K-of-N/ folder, without retraining; 'gpu search merge DIR' combines the shards. Without it, a Slurm array job (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) gives the shard.")]
    public string? ShardText { get; set; }

    [Option("overwrite", HelpText = "Start the search afresh in an --output folder that holds an earlier search or run: once the data and device are ready, its files (search.csv, search.json, best.json, best/, shard folders, a run's checkpoint and model) are moved into DIR/.replaced/, deleted when the new search writes its first trial row, and moved back if it fails or is interrupted before that. Without it a search folder is continued and a training run's folder refused.")]
    public bool Overwrite { get; set; }

    public int Execute(TextWriter stdout, TextWriter stderr, string[] args, CancellationToken stop)
    {
        var given = args.Where(a => a.StartsWith("--")).Select(a => a.Split('=')[0]).ToHashSet();
        var file = Config == null ? null : ExperimentConfig.Read(Config, grid: true);
        var shared = new TrainOptions();
        if (file != null) shared = file.ApplyTo(shared, given.Contains);
        shared = Settings.ApplyTo(shared);
        var grid = SearchGrid.Build(shared, file, Settings.Choices);
        var shard = ShardText != null ? Shard.Parse(ShardText) : Shard.FromEnvironment(Environment.GetEnvironmentVariable);
        string written = GridSearch.FolderFor(Output, shard);
        if (shard != null)   // the first line says where the shard came from
        {
            int mine = grid.Trials.Count(shard.Owns);
            stdout.WriteLine($"shard {shard} from {shard.Source}: {mine} of the {grid.Trials.Count} trials, into {written}");
        }

        using var folder = RunFolder.Take(written, shard == null ? "gpu search" : $"gpu search --shard {shard}");   // one writer per folder
        if (folder.Settled is { } settled) stdout.WriteLine($"note: {settled}");
        var previous = folder.Previous();
        if (previous is { Search: false } && !Overwrite)   // a search continues its own folder, never a training run's
            throw new UserError($"{written} holds {previous.Description}, not a grid search; choose another --output folder for the search, or pass --overwrite to replace it");
        var source = DataSource.OfFolder(Data);
        var data = source.Load();
        data = data.Limited(Limit, note => stdout.WriteLine($"note: {note}"));
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        if (device.PrecisionNote(shared.Precision) is string precisionNote) stdout.WriteLine(precisionNote);
        if (Overwrite && previous != null)   // only now, with the data read and the device open: a refused start loses nothing
        {
            folder.MoveRunAside();
            stdout.WriteLine($"--overwrite: moved {previous.Description} aside in {written}; it is removed when the new search writes its first trial, and restored if the search fails or is interrupted before that");
        }
        try { return Search(folder, device, grid, shared, data, source, shard, written, stdout, stderr, stop); }
        catch (Exception failed) when (folder.HoldsAside)   // failed before its first trial row: the earlier search comes back
        {
            if (OverwrittenRun.Restore(folder, failed, $"the earlier search in {written} is restored (the new search failed before its first trial)", stderr) is UserError e) throw e;
            throw;
        }
    }

    /// <summary>Opens the search in <paramref name="written"/>, runs its trials and, unless a shard, retrains the best; an earlier search moved aside is discarded at the first trial row, restored when interrupted before it.</summary>
    int Search(RunFolder folder, ComputeDevice device, SearchGrid grid, TrainOptions shared, DataPair data, DataSource source, Shard? shard, string written, TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        stdout.WriteLine($"data: {data.Folder}, {data.Train.Count:N0} training images ({shared.ValFraction * 100:0.#}% held out to score the trials), {data.Test.Count:N0} test images");
        stdout.WriteLine($"grid: {grid.Summary()} = {grid.Trials.Count} trial{(grid.Trials.Count == 1 ? "" : "s")}");
        var search = GridSearch.Open(written, grid, data, source, Limit, shard);
        if (search.Torn != null) stdout.WriteLine($"{search.Torn}: dropped; its trial runs again");
        int total = search.Trials.Count;
        if (search.Skipped > 0)
            stdout.WriteLine($"{Path.Combine(written, GridSearch.CsvName)} holds {search.Skipped} of the {total} trials already: skipping them, {total - search.Skipped} to run");

        string csv = Path.Combine(written, GridSearch.CsvName);
        bool complete = search.Run(device, data, stop, r =>
            {
                if (folder.HoldsAside) folder.DiscardAside();   // the new search has its first row: the earlier one goes
                stdout.WriteLine(ProgressLine(grid, r));
            },
            faultAdvice: $"{csv} keeps the finished trials; rerun the same command (e.g. with --device cpu) to continue");
        if (!complete && folder.HoldsAside)
        {
            folder.RestoreAside();
            stderr.WriteLine($"interrupted before the first trial ended; the earlier search in {written} is restored");
            return 130;
        }
        if (!complete)
        {
            stderr.WriteLine($"interrupted after {search.Done} of {total} trials; {csv} keeps them; " +
                "continue with the same command (finished trials are skipped)");
            return 130;
        }
        if (shard != null)
        {
            stdout.WriteLine($"shard {shard} done: its {total} trials are in {csv}; when every shard is done: gpu search merge {Output} [--retrain]");
            return 0;
        }
        return RetrainAndReport(search, device, data, Output, stdout, stderr, stop);
    }

    /// <summary>
    /// The end of a complete search (or merge, in <paramref name="output"/>): names the best trial, retrains it (or
    /// reuses best/), reports its test accuracy and the files written. Exit code 0, 3 when every trial diverged, 130 when interrupted.
    /// </summary>
    internal static int RetrainAndReport(GridSearch search, ComputeDevice device, DataPair data, string output, TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        var grid = search.Grid;
        string csv = Path.Combine(output, GridSearch.CsvName);
        var (bestTrial, bestResult) = search.Best
            ?? throw new UserError($"every trial diverged (see {csv}); try lower --lr values", 3);
        stdout.WriteLine($"best: trial {bestTrial.Number} ({grid.Describe(bestTrial, all: true)}): val acc {bestResult.ValAccuracy:F4}, val loss {bestResult.ValLoss:F4}");
        if (stop.IsCancellationRequested)
        {
            stderr.WriteLine($"interrupted before retraining the best trial; all {grid.Trials.Count} trials are in {csv}; rerun the same command to retrain it");
            return 130;
        }

        BestModel best;
        try
        {
            best = search.RetrainBest(device, data, stop, e => stdout.WriteLine("  " + RunFiles.EpochLine(e, bestTrial.Options.Epochs)),
                faultAdvice: $"all {grid.Trials.Count} trials are in {csv}; rerun the same command (e.g. with --device cpu) to retrain the best");
        }
        catch (TrainingInterrupted)
        {
            stderr.WriteLine($"interrupted while retraining the best trial; all {grid.Trials.Count} trials are in {csv}; rerun the same command to retrain it");
            return 130;
        }
        stdout.WriteLine(best.Reused
            ? $"best/ already holds trial {bestTrial.Number} retrained (from an earlier run): reused it"
            : $"retrained trial {bestTrial.Number} on the same split: val acc {best.RetrainedValAccuracy:F4} (in the search: {bestResult.ValAccuracy:F4})");
        stdout.WriteLine($"test accuracy {best.Test.Accuracy:F4}, test loss {best.Test.Loss:F4} ({best.Test.Count:N0} images)");
        stdout.WriteLine($"wrote {GridSearch.CsvName}, {GridSearch.BestName}, {GridSearch.SettingsName} and {GridSearch.BestFolder}/ (model.npy, model.json, {RunFiles.HistoryName}, {RunFiles.CurvesName}) in {output}");
        return 0;
    }

    /// <summary>"[3/8] trial 3: layers 16, lr 0.01 | val acc 0.7533, loss 0.702 | best 0.8000 (trial 2) | 2.1s; 9s elapsed, ~8s left"</summary>
    internal static string ProgressLine(SearchGrid grid, TrialReport r)
    {
        string settings = grid.Describe(r.Trial);
        string score = r.Result.Diverged ? "diverged" : $"val acc {r.Result.ValAccuracy:F4}, loss {r.Result.ValLoss:F4}";
        string best = r.Best is { } b ? $"best {b.Result.ValAccuracy:F4} (trial {b.Trial.Number})" : "best: none yet";
        return $"[{r.Done}/{r.Total}] trial {r.Trial.Number}{(settings.Length > 0 ? ": " + settings : "")} | {score} | {best} | " +
            $"{r.Result.Seconds:F1}s; {ProgressDisplay.Duration(r.ElapsedSeconds)} elapsed, ~{ProgressDisplay.Duration(r.SecondsLeft)} left";
    }
}
