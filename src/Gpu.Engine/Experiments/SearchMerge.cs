using System.Text.Json;
using System.Text.Json.Nodes;
using Gpu.Engine.Data;
using Gpu.Engine.Runs;

namespace Gpu.Engine.Experiments;

/// <summary>A shard folder as the merge found it: its shard, its folder, and the trials its search.csv holds.</summary>
internal sealed record ShardReport(Shard Shard, string Folder, int Trials, int Done, string? Torn);

/// <summary>
/// Combines the shards of a search (<c>gpu search --shard K/N --output DIR</c> writes <c>DIR/shard-K-of-N/</c>)
/// into <c>DIR</c>, as an unsharded search would have left it: <c>search.csv</c> with a row per finished trial
/// in grid order, <c>search.json</c> and <c>best.json</c>. Only shards of one search are merged: the same
/// fingerprint (data, shared settings, grid; see <see cref="GridSearch.Fingerprint"/>) and the same count.
/// A trial no shard holds is missing; <c>DIR</c> can then be merged again once its shard has run.
/// </summary>
internal sealed class SearchMerge
{
    public SearchGrid Grid { get; }
    /// <summary>The merged search in the output folder, read back: its rows, ranking and best; its <see cref="GridSearch.RetrainBest"/> retrains the best.</summary>
    public GridSearch Search { get; }
    public string Fingerprint { get; }
    public IReadOnlyList<ShardReport> Shards { get; }
    /// <summary>Trials of the grid that no shard (and no earlier merge) holds, with the shard that runs them.</summary>
    public IReadOnlyList<(Trial Trial, Shard Shard)> Missing { get; }

    readonly string folder;
    readonly JsonObject settings;

    SearchMerge(string folder, JsonObject settings, SearchGrid grid, GridSearch search, string fingerprint, IReadOnlyList<ShardReport> shards,
        IReadOnlyList<(Trial, Shard)> missing)
    {
        this.folder = folder;
        this.settings = settings;
        Grid = grid;
        Search = search;
        Fingerprint = fingerprint;
        Shards = shards;
        Missing = missing;
    }

    /// <summary>
    /// Merges the shards in <paramref name="folder"/> and writes search.csv, search.json and best.json there. A
    /// folder without shards, shards of different searches or counts, or an unreadable shard is a one-line
    /// <see cref="UserError"/>, before anything is written.
    /// </summary>
    public static SearchMerge Run(string folder)
    {
        if (!Directory.Exists(folder))
            throw new UserError($"{folder}: no such folder; give the --output folder of the sharded search ('gpu search --shard K/N --output DIR')");
        var found = Directory.EnumerateDirectories(folder)
            .Select(d => (Folder: d, Shard: Shard.FromFolderName(Path.GetFileName(d))))
            .Where(x => x.Shard != null && File.Exists(Path.Combine(x.Folder, GridSearch.SettingsName)))
            .OrderBy(x => x.Shard!.Count).ThenBy(x => x.Shard!.Index).ToList();
        if (found.Count == 0)
            throw new UserError($"{folder} holds no shards (shard-K-of-N/ folders with a {GridSearch.SettingsName}, written by 'gpu search --shard K/N --output {folder}'); nothing to merge");

        var read = found.Select(x => (x.Folder, Shard: x.Shard!, Settings: ReadSettings(x.Folder))).ToList();
        var first = read[0];
        foreach (var other in read.Skip(1))
        {
            if (other.Shard.Count != first.Shard.Count)
                throw new UserError($"{folder} holds shards of {first.Shard.Count} ({Path.GetFileName(first.Folder)}) and of {other.Shard.Count} ({Path.GetFileName(other.Folder)}); " +
                    "merge the shards of one split only: move the others to another folder");
            if ((string?)other.Settings["fingerprint"] != (string?)first.Settings["fingerprint"])
                throw new UserError($"{Path.GetFileName(other.Folder)} and {Path.GetFileName(first.Folder)} in {folder} are shards of different searches ({Difference(first.Settings, other.Settings)}); " +
                    "merge the shards of one search only: move the others to another folder");
        }

        string fingerprint = (string)first.Settings["fingerprint"]!;
        SearchGrid grid;
        try { grid = SearchGrid.FromJson(first.Settings); }
        catch (FormatException e) { throw new UserError($"{Path.Combine(first.Folder, GridSearch.SettingsName)}: {e.Message.TrimEnd('.')}; it cannot be merged"); }
        var data = first.Settings["data"]!.AsObject();
        int limit = (int?)data["limit"] ?? 0;

        // the merged search.json: a shard's, without the shard
        var merged = (JsonObject)first.Settings.DeepClone();
        merged.Remove("shard");
        if (GridSearch.Fingerprint(merged) != fingerprint || (int?)merged["trials"] != grid.Trials.Count)
            throw new UserError($"{Path.Combine(first.Folder, GridSearch.SettingsName)} does not read back as the search it describes (written by another version of gpu?); it cannot be merged");

        var shards = read.Select(x => new GridSearch(grid, x.Folder, data, null, limit, x.Shard)).ToList();
        AtomicFile.EnsureFolder(folder);
        var search = new GridSearch(grid, folder, data, null, limit, shard: null);   // search.csv of an earlier merge: its rows are kept
        if (File.Exists(Path.Combine(folder, GridSearch.CsvName))) GridSearch.CheckSameSettings(folder, merged);
        foreach (var trial in grid.Trials)
            foreach (var s in shards)
                if (s.Shard!.Owns(trial) && s.Find(trial) is { } row) search.Put(row);
        AtomicFile.WriteAllText(Path.Combine(folder, GridSearch.SettingsName), GridSearch.Json(merged));
        search.Save();

        int count = first.Shard.Count;
        var missing = grid.Trials.Where(t => search.Find(t) == null).Select(t => (t, new Shard(Shard.IndexOf(t.Number, count), count, "the grid's order"))).ToList();
        var reports = shards.Select(s => new ShardReport(s.Shard!, s.Folder, s.Trials.Count, s.Done, s.Torn)).ToList();
        return new SearchMerge(folder, merged, grid, search, fingerprint, reports, missing);
    }

    static JsonObject ReadSettings(string shardFolder)
    {
        string path = Path.Combine(shardFolder, GridSearch.SettingsName);
        try
        {
            var o = JsonText.Parse(File.ReadAllText(path)).AsObject();
            if ((string?)o["format"] != GridSearch.Format || (string?)o["fingerprint"] is not { Length: > 0 } || o["data"] is not JsonObject)
                throw new FormatException($"not a {GridSearch.Format} file with a fingerprint");
            return o;
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or FormatException or UnauthorizedAccessException)
        {
            throw new UserError($"cannot read {path} ({e.Message.Split('\n')[0].TrimEnd('.')}); rerun that shard, or move its folder away");
        }
    }

    /// <summary>The first part in which two search.json differ, in words: "grid lr: [0.01,0.1] there, [0.05] here".</summary>
    static string Difference(JsonObject a, JsonObject b)
    {
        foreach (var part in new[] { "data", "shared", "grid" })
        {
            var x = a[part] as JsonObject;
            var y = b[part] as JsonObject;
            foreach (var key in (x?.Select(p => p.Key) ?? []).Union(y?.Select(p => p.Key) ?? []))
            {
                string u = x?[key]?.ToJsonString() ?? "nothing", v = y?[key]?.ToJsonString() ?? "nothing";
                if (u != v) return $"{part} {key}: {u} in one, {v} in the other";
            }
        }
        return $"fingerprints {a["fingerprint"]} and {b["fingerprint"]}";
    }

    /// <summary>Where the merged search's data is found again (as the shards recorded it), and the training-image limit they used.</summary>
    public (DataSource Source, int Limit) Data
    {
        get
        {
            DataSource? source;
            try { source = DataJson.ReadSource(settings["data_source"]); }
            catch (Exception e) when (e is FormatException or InvalidOperationException) { source = null; }
            return (source ?? throw new UserError($"{Path.Combine(folder, GridSearch.SettingsName)} does not say where the data is; it cannot be retrained"),
                (int?)settings["data"]?["limit"] ?? 0);
        }
    }
}
