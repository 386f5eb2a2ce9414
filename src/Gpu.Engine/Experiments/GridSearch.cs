using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Engine.Experiments;

/// <summary>A grid axis: a hyperparameter and the values the search tries, in order.</summary>
internal sealed record GridAxis(Hyperparameter Key, IReadOnlyList<object> Values);

/// <summary>One point of the grid: its 1-based number in grid order, its value per axis, and the options it trains with.</summary>
internal sealed record Trial(int Number, IReadOnlyList<object> Values, TrainOptions Options)
{
    /// <summary>Its settings as search.csv writes them: the identity a rerun matches finished trials by.</summary>
    public string Key => string.Join(",", Values.Select(Hyperparameter.Format));
}

/// <summary>
/// A row of search.csv: a trial's settings (formatted, axis order) and what it measured on the
/// validation split. A diverged trial (loss NaN or infinite) has no metrics.
/// </summary>
internal sealed record TrialResult(IReadOnlyList<string> Settings, bool Diverged, double? ValAccuracy, double? ValLoss,
    double? TrainLoss, double? TrainAccuracy, int? EpochsTrained, double? Seconds)
{
    public string Key => string.Join(",", Settings);
}

/// <summary>What <see cref="GridSearch.Run"/> tells after each trial: trials done of the grid, this one, the best so far, time spent and an estimate of the time left.</summary>
internal sealed record TrialReport(int Done, int Total, Trial Trial, TrialResult Result, (Trial Trial, TrialResult Result)? Best,
    double ElapsedSeconds, double SecondsLeft);

/// <summary>The best trial trained again (or its earlier retraining reused): its test metrics and where the model is.</summary>
internal sealed record BestModel(Trial Trial, TrialResult Search, EvalStats Test, double? RetrainedValAccuracy, bool Reused, string Folder);

/// <summary>
/// The trials of a search: every combination of the axes' values (the first axis outermost) on top of
/// the settings all trials share. The axes are the grid keys of <see cref="Hyperparameter.All"/>
/// (hidden widths, learning rate, batch size, epochs, L2, momentum, seed), always all of them, so
/// search.csv has the same columns whatever was varied.
/// </summary>
internal sealed class SearchGrid
{
    /// <summary>The settings every trial shares (the axes' values replace theirs).</summary>
    public TrainOptions Base { get; }
    public IReadOnlyList<GridAxis> Axes { get; }
    public IReadOnlyList<Trial> Trials { get; }

    SearchGrid(TrainOptions baseOptions, IReadOnlyList<GridAxis> axes)
    {
        Base = baseOptions;
        Axes = axes;
        var trials = new List<Trial>();
        IEnumerable<object[]> points = [[]];
        foreach (var axis in axes) points = points.SelectMany(p => axis.Values.Select(v => (object[])[.. p, v]));
        foreach (var values in points)
        {
            var options = baseOptions;
            for (int a = 0; a < axes.Count; a++) options = axes[a].Key.Apply(options, values[a]);
            var trial = new Trial(trials.Count + 1, values, options);
            try { options.Validate(); }
            catch (UserError e) { throw new UserError($"trial {trial.Number} ({Describe(trial, all: true)}): {e.Message}"); }
            trials.Add(trial);
        }
        Trials = trials;
    }

    /// <summary>
    /// The grid from the shared settings <paramref name="baseOptions"/>, the grid file (optional) and the
    /// command line's lists (<paramref name="commandLine"/>: flag without dashes to text, e.g. "lr" to
    /// "0.01,0.1", "layers" to "256,128;512"). The command line wins over the file; an axis given by
    /// neither has the one value of <paramref name="baseOptions"/>.
    /// </summary>
    public static SearchGrid Build(TrainOptions baseOptions, ExperimentConfig? file, IReadOnlyDictionary<string, string> commandLine)
    {
        if (!(baseOptions.ValFraction > 0))
            throw new UserError($"--val-fraction {baseOptions.ValFraction}: a search scores every trial on the validation split; give a fraction in (0, 1), e.g. 0.1");
        var axes = new List<GridAxis>();
        foreach (var key in Hyperparameter.All.Where(h => h.IsGridAxis))
        {
            IReadOnlyList<object> values = commandLine.TryGetValue(key.Flag, out var text)
                ? ExperimentConfig.SplitChoices(text, key.Flag == "layers" ? ';' : ',', key, where: null)
                : file?.Entries.FirstOrDefault(e => e.Key == key)?.Values ?? [key.Get(baseOptions)];
            axes.Add(new GridAxis(key, values));
        }
        return new SearchGrid(baseOptions, axes);
    }

    /// <summary>
    /// The grid a search.json describes (its "shared" settings and its "grid" of values per axis), as
    /// <see cref="GridSearch"/> wrote it; a value that cannot be read is a <see cref="FormatException"/> naming it.
    /// </summary>
    public static SearchGrid FromJson(JsonNode settings)
    {
        var shared = settings["shared"] ?? throw new FormatException("no \"shared\" settings");
        var grid = settings["grid"] as JsonObject ?? throw new FormatException("no \"grid\"");
        var axes = new List<GridAxis>();
        foreach (var key in Hyperparameter.All.Where(h => h.IsGridAxis))
        {
            string column = GridSearch.Column(key);
            var values = grid[column] as JsonArray ?? throw new FormatException($"grid has no \"{column}\" list");
            if (values.Count == 0) throw new FormatException($"grid.{column} is empty");
            axes.Add(new GridAxis(key, values.Select(v =>
            {
                try { return key.FromJson(v ?? throw new FormatException("null")); }
                catch (Exception e) when (e is FormatException or OverflowException or UserError or InvalidOperationException)
                {
                    throw new FormatException($"grid.{column}: {v?.ToJsonString() ?? "null"} is not {key.Accepts}");
                }
            }).ToList()));
        }
        TrainOptions baseOptions;
        try { baseOptions = Hyperparameter.OptionsFromJson(shared); }
        catch (UserError e) { throw new FormatException(e.Message); }
        try { return new SearchGrid(baseOptions, axes); }
        catch (UserError e) { throw new FormatException(e.Message); }
    }

    /// <summary>"layers 16, lr 0.1, batch-size 32": the axes that vary (all of them with <paramref name="all"/>).</summary>
    public string Describe(Trial t, bool all = false) => string.Join(", ",
        Axes.Select((a, i) => (a, i)).Where(x => all || x.a.Values.Count > 1).Select(x => $"{x.a.Key.Flag} {Hyperparameter.Format(t.Values[x.i])}"));

    /// <summary>"layers 8 | 16; lr 0.01 | 0.1; ...": every axis and its values.</summary>
    public string Summary() => string.Join("; ", Axes.Select(a => $"{a.Key.Flag} {string.Join(" | ", a.Values.Select(Hyperparameter.Format))}"));

    /// <summary>
    /// The settings all trials share, as JSON (the hyperparameter object of model.json), with every axis
    /// at the engine's default so that only the shared settings are compared between runs.
    /// </summary>
    public JsonObject SharedSettings()
    {
        var defaults = new TrainOptions();
        return Hyperparameter.OptionsToJson(Axes.Aggregate(Base, (o, a) => a.Key.Apply(o, a.Key.Get(defaults))));
    }
}

/// <summary>
/// A hyperparameter grid search in an output folder. Each trial trains on the training split and is
/// scored on the validation split; all trials run on one device, so the kernels are compiled once
/// (<see cref="KernelSet.For"/> caches them per accelerator). Files in the folder:
/// <list type="bullet">
/// <item><c>search.csv</c>: one row per finished trial (settings, status, validation accuracy and loss,
/// training loss and accuracy, epochs trained, seconds), rewritten atomically after every trial; a
/// rerun skips the trials it holds, matched by their settings;</item>
/// <item><c>search.json</c>: the data and the settings all trials share; a rerun with other shared
/// settings is refused, since its rows would not be comparable;</item>
/// <item><c>best.json</c>: the best trial so far (highest validation accuracy; ties: lower validation
/// loss, then the earlier trial), and at the end its test metrics;</item>
/// <item><c>best/</c>: the best configuration trained again on the same split, as <c>train --output</c>
/// writes a model (model.npy, model.json, history.csv, curves.png).</item>
/// </list>
/// </summary>
internal sealed class GridSearch
{
    public const string CsvName = "search.csv", SettingsName = "search.json", BestName = "best.json", BestFolder = "best";
    internal const string Format = "gpu-search";
    static readonly string[] MetricColumns = ["status", "val_accuracy", "val_loss", "train_loss", "train_accuracy", "epochs_trained", "seconds"];

    public SearchGrid Grid { get; }
    public string Folder { get; }
    /// <summary>The part of the grid this process runs; null: all of it.</summary>
    public Shard? Shard { get; }
    /// <summary>The trials this search runs: the grid's, or those of its shard.</summary>
    public IReadOnlyList<Trial> Trials { get; }
    /// <summary>Trials of <see cref="Trials"/> that search.csv already held when the search was opened.</summary>
    public int Skipped { get; }
    /// <summary>
    /// What was wrong with the end of search.csv when it was read, or null: a last line without its line
    /// end is a row cut off by a crash or a copy (a torn line). It is dropped, so its trial counts as not run.
    /// </summary>
    public string? Torn { get; private set; }

    readonly List<TrialResult> rows;   // every row of search.csv, in file order (rows of other grids are kept)
    readonly JsonObject data;
    readonly DataSource? dataSource;   // null: opened to read its rows only (SearchMerge)
    readonly int limit;

    internal GridSearch(SearchGrid grid, string folder, JsonObject data, DataSource? dataSource, int limit, Shard? shard)
    {
        Grid = grid;
        Folder = folder;
        Shard = shard;
        Trials = shard == null ? grid.Trials : grid.Trials.Where(shard.Owns).ToList();
        this.data = data;
        this.dataSource = dataSource;
        this.limit = limit;
        rows = ReadCsv();
        Skipped = Done;
    }

    string CsvPath => Path.Combine(Folder, CsvName);
    string[] Header => [.. Grid.Axes.Select(a => Column(a.Key)), .. MetricColumns];
    internal static string Column(Hyperparameter h) => h.Flag.Replace('-', '_');

    /// <summary>Where a search with output folder <paramref name="output"/> writes: that folder, or for a shard its folder inside it (shard-1-of-3/).</summary>
    public static string FolderFor(string output, Shard? shard) => shard == null ? output : Path.Combine(output, shard.FolderName);

    /// <summary>
    /// Opens the search in <paramref name="folder"/> (created if missing; for a shard, its own folder, see
    /// <see cref="FolderFor"/>): reads the trials search.csv already holds, refuses a folder whose earlier
    /// search had other data or shared settings, and records this search's settings in search.json.
    /// <paramref name="dataSource"/> and <paramref name="limit"/> say where <paramref name="data"/> came from;
    /// <paramref name="shard"/> limits the search to that shard's trials.
    /// </summary>
    public static GridSearch Open(string folder, SearchGrid grid, DataPair data, DataSource dataSource, int limit, Shard? shard = null)
    {
        AtomicFile.EnsureFolder(folder);
        var dataJson = new JsonObject { ["source"] = Identity(dataSource), ["limit"] = limit, ["train_images"] = data.Train.Count };
        var settings = SettingsJson(grid, dataJson, dataSource, shard);
        var search = new GridSearch(grid, folder, dataJson, dataSource, limit, shard);
        if (search.rows.Count > 0) CheckSameSettings(folder, settings);
        AtomicFile.WriteAllText(Path.Combine(folder, SettingsName), Json(settings));
        return search;
    }

    /// <summary>
    /// search.json: the format, the fingerprint of the search (<see cref="Fingerprint"/>), the data (as
    /// matched between runs, and where to find it again), the shared settings, the grid, its size, and the
    /// shard when the folder holds one.
    /// </summary>
    internal static JsonObject SettingsJson(SearchGrid grid, JsonObject dataJson, DataSource dataSource, Shard? shard)
    {
        var settings = new JsonObject
        {
            ["format"] = Format,
            ["data"] = dataJson.DeepClone(),
            ["shared"] = grid.SharedSettings(),
            ["grid"] = new JsonObject(grid.Axes.Select(a => KeyValuePair.Create(Column(a.Key), (JsonNode?)new JsonArray(a.Values.Select(v => (JsonNode?)a.Key.ToJson(v)).ToArray())))),
            ["trials"] = grid.Trials.Count,
        };
        settings["fingerprint"] = Fingerprint(settings);
        settings["data_source"] = DataJson.Source(dataSource);
        if (shard != null) settings["shard"] = new JsonObject { ["index"] = shard.Index, ["count"] = shard.Count };
        return settings;
    }

    /// <summary>
    /// What makes two searches the same search (their rows comparable, their shards mergeable): the first 16
    /// hex digits of the SHA-256 of the data (as matched), the shared settings and the grid, as search.json holds them.
    /// </summary>
    internal static string Fingerprint(JsonNode settings)
    {
        string text = string.Join("\n", new[] { "data", "shared", "grid" }.Select(p => $"{p}={settings[p]?.ToJsonString() ?? "null"}"));
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>The data as search.json names it, to match reruns by: the resolved folder (or the resolved files).</summary>
    static string Identity(DataSource s) => s.Folder?.Resolved ?? string.Join(";", s.Entries().Select(e => $"{e.Key}={e.Entry.Resolved}"));

    internal static string Json(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>The rows of an earlier run are only comparable with this one when the data and the shared settings are the same.</summary>
    internal static void CheckSameSettings(string folder, JsonObject now)
    {
        string path = Path.Combine(folder, SettingsName);
        JsonObject then;
        try { then = JsonText.Parse(File.ReadAllText(path)).AsObject(); }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException)
        {
            throw new UserError($"{folder} holds a {CsvName} but no readable {SettingsName} ({e.Message.Split('\n')[0].TrimEnd('.')}), so its trials cannot be matched; use another --output");
        }
        foreach (var part in new[] { "data", "shared" })
            foreach (var (name, value) in now[part]!.AsObject())
            {
                string was = (part == "shared" ? Canonical(name, then[part]?[name]) : then[part]?[name])?.ToJsonString() ?? "nothing", is_ = value?.ToJsonString() ?? "null";
                if (was != is_)
                    throw new UserError($"{folder} holds a search with other settings ({part} {name}: {was} there, {is_} now), whose results are not comparable; " +
                        "use another --output, or the same settings to continue that search");
            }
    }

    /// <summary>A shared setting as this version writes it: search.json files of earlier versions hold enum member names ("SoftmaxCrossEntropy") where it writes words.</summary>
    static JsonNode? Canonical(string key, JsonNode? value)
    {
        var setting = Hyperparameter.All.FirstOrDefault(h => h.JsonKey == key);
        if (setting == null || value == null) return value;
        try { return setting.ToJson(setting.FromJson(value)); }
        catch (Exception e) when (e is FormatException or OverflowException or UserError or InvalidOperationException) { return value; }
    }

    List<TrialResult> ReadCsv()
    {
        var list = new List<TrialResult>();
        if (!File.Exists(CsvPath)) return list;
        string[] lines;
        try { lines = File.ReadAllLines(CsvPath); }
        catch (IOException e) { throw new UserError($"cannot read {CsvPath}: {e.Message.TrimEnd('.')}; use another --output"); }
        if (lines.Length == 0) return list;
        if (!EndsWithNewline(CsvPath))
        {
            string cut = lines[^1].Length > 40 ? lines[^1][..40] + "..." : lines[^1];
            Torn = $"{CsvPath} line {lines.Length} is torn (the file ends in the middle of it: '{cut}')";
            lines = lines[..^1];
            if (lines.Length == 0) return list;
        }
        string header = string.Join(",", Header);
        if (lines[0].Trim() != header)
            throw new UserError($"{CsvPath}: the header is not '{header}'; this is not a gpu search result file: use another --output");
        for (int n = 1; n < lines.Length; n++)
            if (lines[n].Trim().Length > 0) list.Add(ParseRow(lines[n], n + 1));
        return list;
    }

    /// <summary>Whether the file's last byte is a line end (every row search.csv writes ends with one).</summary>
    static bool EndsWithNewline(string path)
    {
        try
        {
            using var f = File.OpenRead(path);
            if (f.Length == 0) return true;
            f.Seek(-1, SeekOrigin.End);
            return f.ReadByte() == '\n';
        }
        catch (IOException e) { throw new UserError($"cannot read {path}: {e.Message.TrimEnd('.')}; use another --output"); }
    }

    TrialResult ParseRow(string line, int lineNumber)
    {
        string where = $"{CsvPath} line {lineNumber}";
        var cells = line.Split(',').Select(c => c.Trim()).ToArray();
        if (cells.Length != Header.Length)
            throw new UserError($"{where}: {cells.Length} cells, expected {Header.Length} ({string.Join(",", Header)}); fix or delete that line");
        // canonical settings: each cell parsed as its axis and formatted again (widths are written 256-128)
        var settings = Grid.Axes.Select((a, i) => Hyperparameter.Format(a.Key.Parse(cells[i], $"{where}, {Column(a.Key)}"))).ToArray();
        var m = cells[Grid.Axes.Count..];
        double? Number(int i)
        {
            if (m[i].Length == 0) return null;
            return double.TryParse(m[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new UserError($"{where}: {MetricColumns[i]} '{m[i]}' is not a number; fix or delete that line");
        }
        bool diverged = m[0] switch
        {
            "ok" => false,
            "diverged" => true,
            _ => throw new UserError($"{where}: status '{m[0]}' is not ok or diverged; fix or delete that line"),
        };
        var result = new TrialResult(settings, diverged, Number(1), Number(2), Number(3), Number(4), (int?)Number(5), Number(6));
        if (!diverged && (result.ValAccuracy == null || result.ValLoss == null))
            throw new UserError($"{where}: a finished trial needs val_accuracy and val_loss; fix or delete that line");
        return result;
    }

    void WriteCsv()
    {
        var sb = new StringBuilder(string.Join(",", Header)).Append('\n');
        foreach (var r in rows)
            sb.AppendJoin(",", [.. r.Settings, r.Diverged ? "diverged" : "ok", F(r.ValAccuracy), F(r.ValLoss), F(r.TrainLoss), F(r.TrainAccuracy),
                r.EpochsTrained?.ToString(CultureInfo.InvariantCulture) ?? "", F(r.Seconds)]).Append('\n');
        AtomicFile.WriteAllText(CsvPath, sb.ToString());
    }

    static string F(double? v) => v is double d ? d.ToString("R", CultureInfo.InvariantCulture) : "";

    /// <summary>The row of search.csv that holds <paramref name="t"/>, if it ran.</summary>
    public TrialResult? Find(Trial t) => rows.LastOrDefault(r => r.Key == t.Key);

    /// <summary>Trials of <see cref="Trials"/> with a row in search.csv.</summary>
    public int Done => Trials.Count(t => Find(t) != null);

    /// <summary>Records <paramref name="r"/> as its trial's row, in place of an earlier row of the same settings (SearchMerge).</summary>
    internal void Put(TrialResult r)
    {
        rows.RemoveAll(x => x.Key == r.Key);
        rows.Add(r);
    }

    /// <summary>Writes search.csv and best.json as they stand (SearchMerge).</summary>
    internal void Save()
    {
        WriteCsv();
        WriteBest(null);
    }

    /// <summary>
    /// The finished trials of <see cref="Trials"/> from best to worst, as <see cref="Best"/> ranks them:
    /// highest validation accuracy; ties: lower validation loss, then the earlier trial. Diverged trials are not ranked.
    /// </summary>
    public IReadOnlyList<(Trial Trial, TrialResult Result)> Ranking() =>
        Trials.Select(t => (Trial: t, Result: Find(t))).Where(x => x.Result is { Diverged: false })
            .Select(x => (x.Trial, Result: x.Result!))
            .OrderByDescending(x => x.Result.ValAccuracy).ThenBy(x => x.Result.ValLoss).ThenBy(x => x.Trial.Number).ToList();

    /// <summary>The best finished trial of <see cref="Trials"/>: the first of <see cref="Ranking"/>.</summary>
    public (Trial Trial, TrialResult Result)? Best => Ranking() is { Count: > 0 } r ? r[0] : null;

    /// <summary>
    /// Runs every trial of <see cref="Trials"/> that search.csv does not hold yet, in grid order, on
    /// <paramref name="device"/>; after each, search.csv and best.json (not for a shard: the merge writes it) are rewritten and
    /// <paramref name="onTrial"/> is told. A trial whose loss diverges is recorded as such and the
    /// search goes on. When <paramref name="stop"/> is cancelled the current trial finishes and the
    /// search returns. Returns true when every trial of <see cref="Trials"/> is done. A device failure is a one-line
    /// <see cref="UserError"/> (exit code 4) naming the trial and ending with <paramref name="faultAdvice"/>;
    /// search.csv keeps the trials finished before it.
    /// </summary>
    public bool Run(ComputeDevice device, DataPair data, CancellationToken stop = default, Action<TrialReport>? onTrial = null,
        string faultAdvice = TrainControl.DefaultFaultAdvice)
    {
        var todo = Trials.Where(t => Find(t) == null).ToList();
        var clock = Stopwatch.StartNew();
        // time left is estimated from the time per epoch so far: trials of more epochs take longer
        double epochsRun = 0, epochsLeft = todo.Sum(t => t.Options.Epochs);
        foreach (var trial in todo)
        {
            if (stop.IsCancellationRequested) return false;
            var result = RunTrial(device, data, trial, faultAdvice);
            rows.Add(result);
            WriteCsv();
            if (Shard == null) WriteBest(null);
            epochsRun += trial.Options.Epochs;
            epochsLeft -= trial.Options.Epochs;
            double elapsed = clock.Elapsed.TotalSeconds;
            onTrial?.Invoke(new TrialReport(Done, Trials.Count, trial, result, Best, elapsed, elapsed / epochsRun * epochsLeft));
        }
        return Done == Trials.Count;
    }

    TrialResult RunTrial(ComputeDevice device, DataPair data, Trial trial, string faultAdvice)
    {
        var sw = Stopwatch.StartNew();
        var settings = trial.Values.Select(Hyperparameter.Format).ToArray();
        try
        {
            // trials are scored on validation; the test set waits for the best
            var r = Trainer.Run(device, data, trial.Options, control: new TrainControl { EvaluateTest = false, FaultAdvice = faultAdvice });
            var scored = Scored(r);
            return new TrialResult(settings, false, scored.ValAccuracy, scored.ValLoss, scored.TrainLoss, scored.TrainAccuracy, r.History.Count, sw.Elapsed.TotalSeconds);
        }
        catch (UserError e) when (e.ExitCode == 3)   // diverged: a result of this setting, not a failure of the search
        {
            return new TrialResult(settings, true, null, null, null, null, null, sw.Elapsed.TotalSeconds);
        }
        catch (UserError e) when (e.ExitCode == 4)
        {
            throw new UserError($"trial {trial.Number} ({Grid.Describe(trial, all: true)}): {e.Message}", 4);
        }
    }

    /// <summary>The epoch whose weights the run ended with: the last, or the best one early stopping went back to.</summary>
    static EpochStats Scored(TrainResult r) => r.StoppedEarlyAtBestEpoch is int b ? r.History[b - 1] : r.History[^1];

    void WriteBest(BestModel? model)
    {
        var best = Best;
        var json = new JsonObject
        {
            ["format"] = Format + "-best",
            ["chosen_by"] = "highest validation accuracy; ties: lower validation loss, then the earlier trial",
            ["trials"] = Grid.Trials.Count,
            ["trials_done"] = Done,
            ["data"] = data.DeepClone(),
        };
        if (best is var (trial, r))
        {
            json["best"] = new JsonObject
            {
                ["trial"] = trial.Number,
                ["settings"] = new JsonObject(Grid.Axes.Select((a, i) => KeyValuePair.Create(Column(a.Key), (JsonNode?)a.Key.ToJson(trial.Values[i])))),
                ["val_accuracy"] = r.ValAccuracy, ["val_loss"] = Finite(r.ValLoss), ["train_loss"] = Finite(r.TrainLoss), ["train_accuracy"] = r.TrainAccuracy,
                ["epochs_trained"] = r.EpochsTrained, ["seconds"] = r.Seconds,
            };
            json["hyperparameters"] = Hyperparameter.OptionsToJson(trial.Options);
        }
        else json["best"] = null;
        if (model != null)
            json["test"] = new JsonObject
            {
                ["accuracy"] = model.Test.Accuracy, ["loss"] = model.Test.Loss, ["images"] = model.Test.Count,
                ["model"] = model.Folder,
                ["how"] = model.Reused ? $"the model in {BestFolder}/ was already this trial retrained; reused" : "the best trial trained again with the same settings, seed and split",
                ["retrained_val_accuracy"] = model.RetrainedValAccuracy,
            };
        AtomicFile.WriteAllText(Path.Combine(Folder, BestName), Json(json));
    }

    /// <summary>JSON has no NaN or infinity: such a loss is written as null.</summary>
    static double? Finite(double? v) => v is double d && double.IsFinite(d) ? d : null;

    /// <summary>
    /// Trains the best trial again on the same split (same options and seed), evaluates it on the test
    /// set and saves it in best/ as <c>train --output</c> does; or, when best/ already holds this very
    /// configuration trained on the same data, reuses it. Writes best.json with the test metrics.
    /// <paramref name="stop"/> interrupts the retraining (<see cref="TrainingInterrupted"/>); a device failure
    /// ends with <paramref name="faultAdvice"/>.
    /// </summary>
    public BestModel RetrainBest(ComputeDevice device, DataPair data, CancellationToken stop = default, Action<EpochStats>? onEpoch = null,
        string faultAdvice = TrainControl.DefaultFaultAdvice)
    {
        var (trial, searched) = Best ?? throw new InvalidOperationException("no finished trial to retrain");
        if (dataSource == null || Shard != null) throw new InvalidOperationException("a shard, or a search opened to read, is not retrained");
        string dir = AtomicFile.EnsureFolder(Path.Combine(Folder, BestFolder));
        var model = Reusable(dir, trial, searched) ?? Retrain(device, data, trial, searched, dir, stop, onEpoch, faultAdvice);
        WriteBest(model);
        return model;
    }

    BestModel Retrain(ComputeDevice device, DataPair data, Trial trial, TrialResult searched, string dir, CancellationToken stop, Action<EpochStats>? onEpoch,
        string faultAdvice)
    {
        var history = new List<EpochStats>();
        var spec = MlpSpec.FromHidden(data.Train.Features, trial.Options.Hidden, data.Train.Classes, trial.Options.Activation, trial.Options.Loss);
        TrainResult r;
        try
        {
            r = Trainer.Run(device, data, trial.Options, e =>
            {
                history.Add(e);
                onEpoch?.Invoke(e);
                RunFiles.WriteHistory(dir, history, RunFiles.CurvesTitle(spec, data, trial.Options));
            }, new TrainControl { Stop = stop, FaultAdvice = faultAdvice });
        }
        catch (UserError e) when (e.ExitCode == 4)
        {
            throw new UserError($"retraining the best trial, {trial.Number} ({Grid.Describe(trial, all: true)}): {e.Message}", 4);
        }
        RunFiles.WriteModel(dir, device, data, dataSource!, limit, trial.Options, r);
        return new BestModel(trial, searched, r.Test, Scored(r).ValAccuracy, Reused: false, dir);
    }

    /// <summary>best/ from an earlier run, when it holds this trial's settings trained on the same data.</summary>
    BestModel? Reusable(string dir, Trial trial, TrialResult searched)
    {
        if (!File.Exists(Path.Combine(dir, SavedModel.JsonName))) return null;
        SavedModel saved;
        try { saved = SavedModel.Read(dir); }
        catch (UserError) { return null; }   // damaged: train it again
        try
        {
            var d = saved.Info["data"] as JsonObject;
            bool same = saved.Options is TrainOptions o && Hyperparameter.OptionsToJson(o).ToJsonString() == Hyperparameter.OptionsToJson(trial.Options).ToJsonString()
                && saved.Data is DataSource was && Identity(was) == Identity(dataSource!) && (int?)d?["limit"] == limit;
            if (!same || saved.Metric("test_accuracy") is not double accuracy || saved.Metric("test_loss") is not double loss || (int?)d?["test_count"] is not int count) return null;
            return new BestModel(trial, searched, new EvalStats(loss, accuracy, count), saved.Metric("final_val_accuracy"), Reused: true, dir);
        }
        catch (Exception e) when (e is UserError or InvalidOperationException or FormatException or OverflowException) { return null; }   // a damaged model.json: train it again
    }
}
