using Gpu.Engine.Data;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Engine.Experiments;

/// <summary>
/// A search to run: the grid; where its data is (<c>Data</c>; <c>Loaded</c>: already read, else read here) and the first N training
/// images only (<c>Limit</c>, 0: all); the <c>Output</c> folder, which <c>Overwrite</c> lets it replace; and the part of the grid this
/// process runs (<c>Shard</c>; null: all of it).
/// </summary>
internal sealed record FreshSearch(SearchGrid Grid, DataSource Data, int Limit, DataPair? Loaded, string Output, bool Overwrite, Shard? Shard);

/// <summary>Who hears about a search: its lines (the ones <c>gpu search</c> prints), every trial (with its grid and its progress line), and the stop request.</summary>
internal sealed record SearchHooks(Action<string> Say, Action<TrialReport, SearchGrid, string>? Trial = null, CancellationToken Stop = default);

/// <summary>A search that ran to its end (a whole grid, a shard, or a merge): the search read back, and the best trial retrained (null for a shard, or a merge without retraining).</summary>
internal sealed record FinishedSearch(GridSearch Search, BestModel? Best);

/// <summary>
/// One grid search from settings to the best model, the one orchestration of search (<c>gpu search</c>, <c>gpu search merge</c> and the
/// library's <c>Search.Run</c> and <c>Search.Merge</c> all run it): the output folder taken (one writer) and an earlier run there refused
/// or moved aside; the data; the trials, with a line each; the end of a shard; the best trial retrained and its test accuracy reported;
/// and an interruption or failure before the first trial that restores a search moved aside. Errors are <see cref="UserError"/>s; an
/// interruption is an <see cref="OperationCanceledException"/> whose message is the line to print.
/// </summary>
internal static class SearchRun
{
    /// <summary>Runs <paramref name="run"/>'s trials on <paramref name="device"/> (the caller's: not disposed here) and, unless a shard, retrains the best.</summary>
    public static FinishedSearch Start(ComputeDevice device, FreshSearch run, SearchHooks hooks)
    {
        var (grid, shard, say) = (run.Grid, run.Shard, hooks.Say);
        if (run.Limit < 0) throw new UserError($"--limit {run.Limit}: give a whole number >= 0 (0: all)");
        string written = GridSearch.FolderFor(run.Output, shard);
        if (shard != null)   // the first line says where the shard came from
        {
            int mine = grid.Trials.Count(shard.Owns);
            say($"shard {shard} from {shard.Source}: {mine} of the {grid.Trials.Count} trials, into {written}");
        }

        using var folder = RunFolder.Take(written, shard == null ? "gpu search" : $"gpu search --shard {shard}");   // one writer per folder
        if (folder.Settled is { } settled) say($"note: {settled}");
        var previous = folder.Previous();
        if (previous is { Search: false } && !run.Overwrite)   // a search continues its own folder, never a training run's
            throw new UserError($"{written} holds {previous.Description}, not a grid search; choose another --output folder for the search, or pass --overwrite to replace it");
        var data = (run.Loaded ?? run.Data.Load()).Limited(run.Limit, note => say($"note: {note}"));
        say($"device: {device.Describe()}");
        if (device.PrecisionNote(run.Grid.Base.Precision) is string precisionNote) say(precisionNote);
        if (run.Overwrite && previous != null)   // only now, with the data read and the device open: a refused start loses nothing
        {
            folder.MoveRunAside();
            say($"--overwrite: moved {previous.Description} aside in {written}; it is removed when the new search writes its first trial, and restored if the search fails or is interrupted before that");
        }
        try { return Search(folder, device, run, data, written, hooks); }
        catch (Exception failed) when (folder.HoldsAside)   // failed before its first trial row: the earlier search comes back
        {
            string back = $"the earlier search in {written} is restored (the new search failed before its first trial)";
            folder.RestoreAside();
            if (failed is UserError e) throw new UserError($"{e.Message}; {back}", e.ExitCode);
            say(back);
            throw;
        }
    }

    /// <summary>Opens the search in <paramref name="written"/>, runs its trials and, unless a shard, retrains the best; an earlier search moved aside is discarded at the first trial row, restored when interrupted before it.</summary>
    static FinishedSearch Search(RunFolder folder, ComputeDevice device, FreshSearch run, DataPair data, string written, SearchHooks hooks)
    {
        var (grid, shard, say) = (run.Grid, run.Shard, hooks.Say);
        say($"data: {data.Folder}, {data.Train.Count:N0} training images ({grid.Base.ValFraction * 100:0.#}% held out to score the trials), {data.Test.Count:N0} test images");
        say($"grid: {grid.Summary()} = {grid.Trials.Count} trial{(grid.Trials.Count == 1 ? "" : "s")}");
        var search = GridSearch.Open(written, grid, data, run.Data, run.Limit, shard);
        if (search.Torn != null) say($"{search.Torn}: dropped; its trial runs again");
        int total = search.Trials.Count;
        if (search.Skipped > 0)
            say($"{Path.Combine(written, GridSearch.CsvName)} holds {search.Skipped} of the {total} trials already: skipping them, {total - search.Skipped} to run");

        string csv = Path.Combine(written, GridSearch.CsvName);
        bool complete = search.Run(device, data, hooks.Stop, r =>
            {
                if (folder.HoldsAside) folder.DiscardAside();   // the new search has its first row: the earlier one goes
                string line = ProgressLine(grid, r);
                say(line);
                hooks.Trial?.Invoke(r, grid, line);
            },
            faultAdvice: $"{csv} keeps the finished trials; rerun the same command (e.g. with --device cpu) to continue");
        if (!complete && folder.HoldsAside)
        {
            folder.RestoreAside();
            throw new OperationCanceledException($"interrupted before the first trial ended; the earlier search in {written} is restored", hooks.Stop);
        }
        if (!complete)
            throw new OperationCanceledException($"interrupted after {search.Done} of {total} trials; {csv} keeps them; " +
                "continue with the same command (finished trials are skipped)", hooks.Stop);
        if (shard != null)
        {
            say($"shard {shard} done: its {total} trials are in {csv}; when every shard is done: gpu search merge {run.Output} [--retrain]");
            return new FinishedSearch(search, null);
        }
        return RetrainAndReport(search, device, data, run.Output, hooks);
    }

    /// <summary>How many trials of the ranking a merge says (search.csv holds them all).</summary>
    const int Shown = 10;

    /// <summary>
    /// Merges the shards of the search in <paramref name="dir"/> (see <see cref="SearchMerge"/>), saying what it found and the ranking;
    /// with <paramref name="retrain"/> the best trial is retrained on <paramref name="deviceSpec"/> (opened here) and its test accuracy reported.
    /// Missing trials are a <see cref="UserError"/> naming them and their shards.
    /// </summary>
    public static FinishedSearch Merge(string dir, bool retrain, string deviceSpec, SearchHooks hooks)
    {
        var say = hooks.Say;
        if (!Directory.Exists(dir))
            throw new UserError($"{dir}: no such folder; give the --output folder of the sharded search ('gpu search --shard K/N --output DIR')");

        using var held = RunFolder.Take(dir, "gpu search merge");
        var merge = SearchMerge.Run(dir);
        var grid = merge.Grid;
        int count = merge.Shards[0].Shard.Count;
        say($"merging {merge.Shards.Count} of {count} shard{(count == 1 ? "" : "s")} of search {merge.Fingerprint} in {dir}: {grid.Trials.Count} trials");
        foreach (var s in merge.Shards)
        {
            say($"  {s.Shard.FolderName}: {s.Done} of {s.Trials} trials");
            if (s.Torn != null) say($"  {s.Torn}: not counted; rerunning shard {s.Shard} runs that trial again");
        }
        say($"grid: {grid.Summary()}");

        var ranking = merge.Search.Ranking();
        say($"ranking on validation ({ranking.Count} finished trial{(ranking.Count == 1 ? "" : "s")}; highest accuracy first, ties: lower loss, then the earlier trial):");
        for (int i = 0; i < Math.Min(Shown, ranking.Count); i++)
        {
            var (t, r) = ranking[i];
            string settings = grid.Describe(t);
            say($"  {i + 1,3}. trial {t.Number}{(settings.Length > 0 ? " (" + settings + ")" : "")}: val acc {r.ValAccuracy:F4}, val loss {r.ValLoss:F4}");
        }
        if (ranking.Count > Shown) say($"  ... {ranking.Count - Shown} more in {Path.Combine(dir, GridSearch.CsvName)}");
        int diverged = grid.Trials.Count(t => merge.Search.Find(t) is { Diverged: true });
        if (diverged > 0) say($"  {diverged} trial{(diverged == 1 ? "" : "s")} diverged (not ranked)");
        say($"wrote {GridSearch.CsvName}, {GridSearch.SettingsName} and {GridSearch.BestName} in {dir}");

        if (merge.Missing.Count > 0)
        {
            var list = merge.Missing.Take(Shown).Select(m => $"{m.Trial.Number} (shard {m.Shard})");
            var shards = merge.Missing.Select(m => m.Shard.ToString()).Distinct().ToList();
            throw new UserError($"{merge.Missing.Count} of {grid.Trials.Count} trials missing: trial {string.Join(", ", list)}{(merge.Missing.Count > Shown ? ", ..." : "")}; " +
                $"run shard{(shards.Count == 1 ? "" : "s")} {string.Join(", ", shards.Take(Shown))} again ('gpu search --shard K/N' with the same settings and --output {dir}), then merge again");
        }
        if (!retrain)
        {
            var (best, result) = merge.Search.Best
                ?? throw new UserError($"every trial diverged (see {Path.Combine(dir, GridSearch.CsvName)}); try lower --lr values", 3);
            say($"best: trial {best.Number} ({grid.Describe(best, all: true)}): val acc {result.ValAccuracy:F4}, val loss {result.ValLoss:F4}; " +
                $"'gpu search merge {dir} --retrain' retrains it and reports its test accuracy");
            return new FinishedSearch(merge.Search, null);
        }

        var (source, limit) = merge.Data;
        var data = source.Load();
        data = data.Limited(limit, note: null);   // the shards said so when they ran
        using var device = ComputeDevice.Open(deviceSpec);
        say($"device: {device.Describe()}");
        var search = GridSearch.Open(dir, grid, data, source, limit);
        return RetrainAndReport(search, device, data, dir, hooks);
    }

    /// <summary>
    /// The end of a complete search (or merge, in <paramref name="output"/>): names the best trial, retrains it (or
    /// reuses best/), reports its test accuracy and the files written. Every trial diverged: a <see cref="UserError"/> with exit code 3;
    /// interrupted: an <see cref="OperationCanceledException"/>.
    /// </summary>
    static FinishedSearch RetrainAndReport(GridSearch search, ComputeDevice device, DataPair data, string output, SearchHooks hooks)
    {
        var (grid, say) = (search.Grid, hooks.Say);
        string csv = Path.Combine(output, GridSearch.CsvName);
        var (bestTrial, bestResult) = search.Best
            ?? throw new UserError($"every trial diverged (see {csv}); try lower --lr values", 3);
        say($"best: trial {bestTrial.Number} ({grid.Describe(bestTrial, all: true)}): val acc {bestResult.ValAccuracy:F4}, val loss {bestResult.ValLoss:F4}");
        if (hooks.Stop.IsCancellationRequested)
            throw new OperationCanceledException($"interrupted before retraining the best trial; all {grid.Trials.Count} trials are in {csv}; rerun the same command to retrain it", hooks.Stop);

        BestModel best;
        try
        {
            best = search.RetrainBest(device, data, hooks.Stop, e => say("  " + RunFiles.EpochLine(e, bestTrial.Options.Epochs)),
                faultAdvice: $"all {grid.Trials.Count} trials are in {csv}; rerun the same command (e.g. with --device cpu) to retrain the best");
        }
        catch (TrainingInterrupted stopped)
        {
            throw new OperationCanceledException($"interrupted while retraining the best trial; all {grid.Trials.Count} trials are in {csv}; rerun the same command to retrain it", stopped, hooks.Stop);
        }
        say(best.Reused
            ? $"best/ already holds trial {bestTrial.Number} retrained (from an earlier run): reused it"
            : $"retrained trial {bestTrial.Number} on the same split: val acc {best.RetrainedValAccuracy:F4} (in the search: {bestResult.ValAccuracy:F4})");
        say($"test accuracy {best.Test.Accuracy:F4}, test loss {best.Test.Loss:F4} ({best.Test.Count:N0} images)");
        say($"wrote {GridSearch.CsvName}, {GridSearch.BestName}, {GridSearch.SettingsName} and {GridSearch.BestFolder}/ (model.npy, model.json, {RunFiles.HistoryName}, {RunFiles.CurvesName}) in {output}");
        return new FinishedSearch(search, best);
    }

    /// <summary>"[3/8] trial 3: layers 16, lr 0.01 | val acc 0.7533, loss 0.702 | best 0.8000 (trial 2) | 2.1s; 9s elapsed, ~8s left"</summary>
    internal static string ProgressLine(SearchGrid grid, TrialReport r)
    {
        string settings = grid.Describe(r.Trial);
        string score = r.Result.Diverged ? "diverged" : $"val acc {r.Result.ValAccuracy:F4}, loss {r.Result.ValLoss:F4}";
        string best = r.Best is { } b ? $"best {b.Result.ValAccuracy:F4} (trial {b.Trial.Number})" : "best: none yet";
        return $"[{r.Done}/{r.Total}] trial {r.Trial.Number}{(settings.Length > 0 ? ": " + settings : "")} | {score} | {best} | " +
            $"{r.Result.Seconds:F1}s; {Duration(r.ElapsedSeconds)} elapsed, ~{Duration(r.SecondsLeft)} left";
    }

    /// <summary>"42s", "3m 07s", "1h 02m"; "?" when unknown (the same words as the CLI's progress bar, ProgressDisplay.Duration, which cannot call it).</summary>
    internal static string Duration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0) return "?";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h {t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m {t.Seconds:D2}s" : $"{t.Seconds}s";
    }
}
