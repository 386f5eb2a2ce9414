using Gpu.Engine;
using Gpu.Engine.Experiments;
using Gpu.Engine.Settings;

namespace Gpu;

/// <summary>
/// A hyperparameter grid search, as <c>gpu search</c> and <c>gpu search merge</c> run it: every combination of a <see cref="TrialGrid"/>
/// trains on the training split and is scored on the validation split, one row each in search.csv (a rerun skips the rows there), then
/// the best is trained again and scored on the test set, kept in best/ as <c>gpu train --output</c> keeps a model (<see cref="Network.Load"/> reads it).
/// A search can be split into shards run apart (<see cref="SearchOptions.Shard"/>, e.g. the tasks of a Slurm array job) and merged (<see cref="Merge"/>).
/// </summary>
public static class Search
{
    /// <summary>
    /// Runs the trials of <paramref name="grid"/> (those of <see cref="SearchOptions.Shard"/> only, for a shard) that <see cref="SearchOptions.Output"/>
    /// does not hold yet, on <paramref name="device"/>; then, unless a shard, retrains the best and reports its test accuracy. This is <c>gpu search</c>.
    /// </summary>
    /// <param name="device">The device every trial trains on (kernels are compiled once).</param>
    /// <param name="data">Training and test images (<see cref="ImageData.Open"/>'s are read here, with a note when the limit is more than the images).</param>
    /// <param name="grid">The trials.</param>
    /// <param name="options">The output folder, the shard, what is said, progress and stop.</param>
    /// <returns>The trials done, ranked, and for a whole search the best retrained with its test figures.</returns>
    /// <exception cref="UserError">A folder that holds a training run or a search of other settings, a bad shard, every trial diverged (exit code 3), a device failure (4).</exception>
    /// <exception cref="OperationCanceledException">Stopped by <see cref="SearchOptions.Cancel"/> (after the current trial); the message says where, and how to continue.</exception>
    public static SearchResult Run(Device device, ImageData data, TrialGrid grid, SearchOptions options)
    {
        if (string.IsNullOrEmpty(options.Output)) throw new UserError("a search needs an output folder (--output DIR): its trials are kept there");
        var shard = options.Shard != null ? Shard.Parse(options.Shard)
            : options.ShardFromEnvironment ? Shard.FromEnvironment(Environment.GetEnvironmentVariable) : null;
        var run = new FreshSearch(grid.Grid, data.Source, data.Limit, data.IsLoaded ? data.Pair : null, options.Output, options.Overwrite, shard);
        return Result(SearchRun.Start(device.Compute, run, Hooks(options.Say, options.Progress, options.Cancel)));
    }

    /// <summary>
    /// Combines the shards in <paramref name="folder"/> (the <see cref="SearchOptions.Output"/> of a sharded search, holding shard-K-of-N/ folders) into it, as
    /// the unsharded search leaves it (search.csv, search.json, best.json), ranked on validation; with <see cref="MergeOptions.Retrain"/> the best is
    /// retrained and its test accuracy reported. This is <c>gpu search merge</c>.
    /// </summary>
    /// <param name="folder">The sharded search's folder.</param>
    /// <param name="options">Whether to retrain, on which device; what is said and stop.</param>
    /// <exception cref="UserError">No shards, shards of different searches, missing trials (named, with their shards), every trial diverged (exit code 3).</exception>
    /// <exception cref="OperationCanceledException">Stopped by <see cref="MergeOptions.Cancel"/> while retraining.</exception>
    public static SearchResult Merge(string folder, MergeOptions? options = null)
    {
        var o = options ?? new MergeOptions();
        return Result(SearchRun.Merge(folder, o.Retrain, o.Device, Hooks(o.Say, null, o.Cancel)));
    }

    static SearchHooks Hooks(Action<string>? say, Action<SearchProgress>? progress, CancellationToken cancel) =>
        new(say ?? (_ => { }), progress == null ? null : (r, grid, line) => progress(new SearchProgress(r.Done, r.Total, Trial(grid, r.Trial, r.Result),
            r.Best is var (t, b) ? Trial(grid, t, b) : null, r.ElapsedSeconds, r.SecondsLeft, line)), cancel);

    static SearchTrial Trial(SearchGrid grid, Trial t, TrialResult r) =>
        new(t.Number, grid.Describe(t, all: true), r.Diverged, r.ValAccuracy, r.ValLoss, r.Seconds);

    static SearchResult Result(FinishedSearch f)
    {
        var s = f.Search;
        return new SearchResult(s.Folder, s.Trials.Count, s.Done, s.Ranking().Select(x => Trial(s.Grid, x.Trial, x.Result)).ToArray())
        {
            TestAccuracy = f.Best?.Test.Accuracy, TestLoss = f.Best?.Test.Loss, BestModel = f.Best?.Folder,
        };
    }
}

/// <summary>
/// The trials of a <see cref="Search"/>: every combination of the grid axes' choices (hidden widths, learning rate, batch size, epochs, L2,
/// momentum, seed; the first axis outermost) on top of the settings all trials share. Built from the shared settings, the command line's
/// lists of choices and a YAML grid file, as <c>gpu search</c> builds it; every trial's settings are checked here.
/// </summary>
public sealed class TrialGrid
{
    internal SearchGrid Grid { get; }

    TrialGrid(SearchGrid grid) => Grid = grid;

    /// <summary>
    /// The grid: <paramref name="shared"/> for every setting, the single values of <paramref name="configFile"/> over them (except the settings
    /// <paramref name="givenOnCommandLine"/> names: flags override the file), and as axes the lists of <paramref name="choices"/> or else of the
    /// file; an axis given by neither has the shared value only.
    /// </summary>
    /// <param name="shared">The settings all trials share; null: the defaults. The validation fraction must be above 0 (trials are scored on it).</param>
    /// <param name="choices">Axis flag (without dashes) to its choices as <c>gpu search</c> takes them: "lr" to "0.01,0.1", "layers" to "256,128;512" (';' between width lists).</param>
    /// <param name="configFile">A YAML experiment file (Train: and Model: sections) whose lists are choices; null: none.</param>
    /// <param name="givenOnCommandLine">Whether a flag ("--lr") was given on the command line, so that the file's value for it is not applied; null: the flags of <paramref name="choices"/>.</param>
    /// <exception cref="UserError">An unreadable file, a bad choice, or a trial whose settings are out of range (the message names it).</exception>
    public static TrialGrid Build(TrainOptions? shared = null, IReadOnlyDictionary<string, string>? choices = null, string? configFile = null,
        Func<string, bool>? givenOnCommandLine = null)
    {
        var file = configFile == null ? null : ExperimentConfig.Read(configFile, grid: true);
        choices ??= new Dictionary<string, string>();
        var options = shared ?? new TrainOptions();
        if (file != null) options = file.ApplyTo(options, givenOnCommandLine ?? (flag => choices.ContainsKey(flag.TrimStart('-'))));
        return new TrialGrid(SearchGrid.Build(options, file, choices));
    }

    /// <summary>Number of trials.</summary>
    public int Count => Grid.Trials.Count;

    /// <summary>The settings every trial shares (the axes' values replace theirs).</summary>
    public TrainOptions Shared => Grid.Base;

    /// <summary>"layers 8 | 16; lr 0.01 | 0.1; ...": every axis and its choices.</summary>
    public string Summary => Grid.Summary();

    /// <summary>The summary with the number of trials: "layers 16; lr 0.01 | 0.1; ... = 2 trials".</summary>
    public override string ToString() => $"{Summary} = {Count} trial{(Count == 1 ? "" : "s")}";
}

/// <summary>Where a <see cref="Search.Run"/> keeps its trials, which of them it runs, what it says, and when it stops.</summary>
public sealed class SearchOptions
{
    /// <summary>
    /// The search's folder (<c>gpu search --output</c>): search.csv (a row per trial, rewritten after each), search.json, best.json and
    /// best/ (the best trial retrained); a shard writes shard-K-of-N/ inside it. Created if missing; one process writes to a folder at a time.
    /// A folder that holds the same search continues it; one of other settings, or a training run, is refused.
    /// </summary>
    public required string Output { get; init; }

    /// <summary>Replace an earlier run in <see cref="Output"/> (a training run, or a search of other settings): it is moved aside, and deleted when the new search writes its first trial (restored if it fails before that).</summary>
    public bool Overwrite { get; init; }

    /// <summary>Run one shard of the grid only: "K/N", shard K (0 to N-1) of N, which runs trials K+1, K+1+N, ...; <see cref="Search.Merge"/> combines the shards. Null: the whole grid (or see <see cref="ShardFromEnvironment"/>).</summary>
    public string? Shard { get; init; }

    /// <summary>Without <see cref="Shard"/>, take the shard from a Slurm array job's (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job's variables (JOB_COMPLETION_INDEX, JOB_COMPLETIONS), as <c>gpu search</c> does.</summary>
    public bool ShardFromEnvironment { get; init; }

    /// <summary>Each line <c>gpu search</c> prints: the shard, device, data, grid, every trial, the best and its retraining, what was written.</summary>
    public Action<string>? Say { get; init; }

    /// <summary>Called after every trial with its result, the best so far and the time left.</summary>
    public Action<SearchProgress>? Progress { get; init; }

    /// <summary>Stops the search after the current trial (or the best's retraining after the current step); the call then throws <see cref="OperationCanceledException"/>, whose message says where it stopped. The trials done are kept.</summary>
    public CancellationToken Cancel { get; init; }
}

/// <summary>What a <see cref="Search.Merge"/> does after merging: retrain the best or not, on which device; what it says, and when it stops.</summary>
public sealed class MergeOptions
{
    /// <summary>Retrain the best trial on the data the shards recorded, report its test accuracy and keep it in best/; without it the merge names the best only.</summary>
    public bool Retrain { get; init; }

    /// <summary>The device to retrain on (as <see cref="Gpu.Device.Open"/> takes it), opened only to retrain.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>Each line <c>gpu search merge</c> prints: the shards found, the ranking, what was written, the best.</summary>
    public Action<string>? Say { get; init; }

    /// <summary>Stops the retraining after the current step; the call then throws <see cref="OperationCanceledException"/>.</summary>
    public CancellationToken Cancel { get; init; }
}

/// <summary>A finished trial of a search, a row of search.csv.</summary>
/// <param name="Number">Its number in grid order, from 1.</param>
/// <param name="Settings">Its value of every axis: "layers 16, lr 0.1, batch-size 128, epochs 10, l2 0.0001, momentum 0.9, seed 1".</param>
/// <param name="Diverged">Whether its loss diverged (then it has no scores and is not ranked).</param>
/// <param name="ValidationAccuracy">Accuracy on the validation split.</param>
/// <param name="ValidationLoss">Loss on the validation split.</param>
/// <param name="Seconds">How long it trained.</param>
public sealed record SearchTrial(int Number, string Settings, bool Diverged, double? ValidationAccuracy, double? ValidationLoss, double? Seconds);

/// <summary>Where a search stands after a trial; <see cref="ToString"/> is the line <c>gpu search</c> prints.</summary>
/// <param name="Done">Trials of the search (or shard) done, this one included.</param>
/// <param name="Total">Trials of the search (or shard).</param>
/// <param name="Trial">The trial just finished.</param>
/// <param name="Best">The best trial so far; null while every trial diverged.</param>
/// <param name="ElapsedSeconds">Seconds since the search started.</param>
/// <param name="SecondsLeft">Estimated seconds left, from the time per epoch so far.</param>
/// <param name="Line">"[3/8] trial 3: layers 16, lr 0.01 | val acc 0.7533, loss 0.702 | best 0.8000 (trial 2) | 2.1s; 9s elapsed, ~8s left"</param>
public sealed record SearchProgress(int Done, int Total, SearchTrial Trial, SearchTrial? Best, double ElapsedSeconds, double SecondsLeft, string Line)
{
    /// <summary>The <see cref="Line"/>.</summary>
    public override string ToString() => Line;
}

/// <summary>What a <see cref="Search.Run"/> or <see cref="Search.Merge"/> ended with.</summary>
/// <param name="Folder">The folder it wrote: the output folder, or a shard's folder inside it.</param>
/// <param name="Trials">Trials of the search (for a shard, of the shard).</param>
/// <param name="Done">Of those, the trials search.csv holds.</param>
/// <param name="Ranking">The finished trials that did not diverge, best first: highest validation accuracy; ties: lower validation loss, then the earlier trial.</param>
public sealed record SearchResult(string Folder, int Trials, int Done, IReadOnlyList<SearchTrial> Ranking)
{
    /// <summary>The best trial: the first of <see cref="Ranking"/>; null when none finished without diverging.</summary>
    public SearchTrial? Best => Ranking.Count > 0 ? Ranking[0] : null;

    /// <summary>The best trial's accuracy on the test set, retrained; null for a shard or a merge without retraining.</summary>
    public double? TestAccuracy { get; init; }

    /// <summary>The best trial's loss on the test set, retrained; null as <see cref="TestAccuracy"/>.</summary>
    public double? TestLoss { get; init; }

    /// <summary>The folder of the best trial retrained (best/, which <see cref="Network.Load"/> reads); null as <see cref="TestAccuracy"/>.</summary>
    public string? BestModel { get; init; }
}
