using Gpu.Engine.Experiments;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// <c>gpu search merge DIR</c>: the shards of a search (<c>gpu search --shard K/N --output DIR</c>, one per task of an
/// array job) combined into DIR as the unsharded search leaves it, ranked on validation; with --retrain the best is
/// retrained and its test accuracy reported, as <c>gpu search</c> does. <see cref="Program"/> turns the two words
/// "search merge" into this verb.
/// </summary>
[Verb("search merge", HelpText = "Combines the shards of a search ('gpu search --shard K/N --output DIR', e.g. the tasks of a Slurm array job) into DIR: search.csv with every trial, search.json and best.json, as an unsharded search writes them. Refuses shards of different grids or settings; reports missing trials by number and the shard that runs them (exit code 2).")]
internal sealed class SearchMergeVerb : IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Stop);

    [Word("DIR", "The --output folder of the sharded search, holding shard-K-of-N/ folders.")]
    public string? Folder { get; set; }

    [Flag(nameof(Flags.Retrain))]
    public bool Retrain { get; set; }

    [Flag(nameof(Flags.MergeDevice))]
    public string Device { get; set; } = "";

    /// <summary>How many trials of the ranking are printed (search.csv holds them all).</summary>
    const int Shown = 10;

    public int Execute(TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        string dir = Folder ?? throw new UserError("give the folder to merge: gpu search merge DIR (the --output of the sharded search)");
        if (!Directory.Exists(dir))
            throw new UserError($"{dir}: no such folder; give the --output folder of the sharded search ('gpu search --shard K/N --output DIR')");

        using var held = RunFolder.Take(dir, "gpu search merge");
        var merge = SearchMerge.Run(dir);
        var grid = merge.Grid;
        int count = merge.Shards[0].Shard.Count;
        stdout.WriteLine($"merging {merge.Shards.Count} of {count} shard{(count == 1 ? "" : "s")} of search {merge.Fingerprint} in {dir}: {grid.Trials.Count} trials");
        foreach (var s in merge.Shards)
        {
            stdout.WriteLine($"  {s.Shard.FolderName}: {s.Done} of {s.Trials} trials");
            if (s.Torn != null) stdout.WriteLine($"  {s.Torn}: not counted; rerunning shard {s.Shard} runs that trial again");
        }
        stdout.WriteLine($"grid: {grid.Summary()}");

        var ranking = merge.Search.Ranking();
        stdout.WriteLine($"ranking on validation ({ranking.Count} finished trial{(ranking.Count == 1 ? "" : "s")}; highest accuracy first, ties: lower loss, then the earlier trial):");
        for (int i = 0; i < Math.Min(Shown, ranking.Count); i++)
        {
            var (t, r) = ranking[i];
            string settings = grid.Describe(t);
            stdout.WriteLine($"  {i + 1,3}. trial {t.Number}{(settings.Length > 0 ? " (" + settings + ")" : "")}: val acc {r.ValAccuracy:F4}, val loss {r.ValLoss:F4}");
        }
        if (ranking.Count > Shown) stdout.WriteLine($"  ... {ranking.Count - Shown} more in {Path.Combine(dir, GridSearch.CsvName)}");
        int diverged = grid.Trials.Count(t => merge.Search.Find(t) is { Diverged: true });
        if (diverged > 0) stdout.WriteLine($"  {diverged} trial{(diverged == 1 ? "" : "s")} diverged (not ranked)");
        stdout.WriteLine($"wrote {GridSearch.CsvName}, {GridSearch.SettingsName} and {GridSearch.BestName} in {dir}");

        if (merge.Missing.Count > 0)
        {
            var list = merge.Missing.Take(Shown).Select(m => $"{m.Trial.Number} (shard {m.Shard})");
            var shards = merge.Missing.Select(m => m.Shard.ToString()).Distinct().ToList();
            throw new UserError($"{merge.Missing.Count} of {grid.Trials.Count} trials missing: trial {string.Join(", ", list)}{(merge.Missing.Count > Shown ? ", ..." : "")}; " +
                $"run shard{(shards.Count == 1 ? "" : "s")} {string.Join(", ", shards.Take(Shown))} again ('gpu search --shard K/N' with the same settings and --output {dir}), then merge again");
        }
        if (!Retrain)
        {
            var (best, result) = merge.Search.Best
                ?? throw new UserError($"every trial diverged (see {Path.Combine(dir, GridSearch.CsvName)}); try lower --lr values", 3);
            stdout.WriteLine($"best: trial {best.Number} ({grid.Describe(best, all: true)}): val acc {result.ValAccuracy:F4}, val loss {result.ValLoss:F4}; " +
                $"'gpu search merge {dir} --retrain' retrains it and reports its test accuracy");
            return 0;
        }

        var (source, limit) = merge.Data;
        var data = source.Load();
        data = data.Limited(limit, note: null);   // the shards said so when they ran
        using var device = ComputeDevice.Open(Device);
        stdout.WriteLine($"device: {device.Describe()}");
        var search = GridSearch.Open(dir, grid, data, source, limit);
        return SearchVerb.RetrainAndReport(search, device, data, dir, stdout, stderr, stop);
    }
}
