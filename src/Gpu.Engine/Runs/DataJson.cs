using System.Text.Json.Nodes;
using Gpu.Engine.Data;

namespace Gpu.Engine.Runs;

/// <summary>
/// How run files (state.json, model.json) write where the data came from and what it was:
/// <c>"source": {"folder": "data/fashion-mnist", "folder_resolved": "/home/me/gpu/data/fashion-mnist"}</c>
/// (or <c>train_images</c>, <c>train_labels</c>, <c>test_images</c>, <c>test_labels</c>, each with its
/// <c>_resolved</c> twin), and <c>"fingerprint": {"train_images": ..., "sha256": ...}</c>.
/// </summary>
internal static class DataJson
{
    public static JsonObject Source(DataSource s)
    {
        var o = new JsonObject();
        foreach (var (key, e) in s.Entries())
        {
            o[key] = e.Given;
            o[key + "_resolved"] = e.Resolved;
        }
        if (s.PixelRange != PixelRange.Auto) o["pixel_range"] = PixelRanges.Name(s.PixelRange);
        return o;
    }

    /// <summary>
    /// A source as <see cref="Source"/> writes it, or as files of earlier versions wrote it: one string, a
    /// folder or <c>train-images=A;train-labels=B;test-images=C;test-labels=D</c>. Null when absent.
    /// </summary>
    public static DataSource? ReadSource(JsonNode? node)
    {
        if (node == null) return null;
        if (node is JsonValue v && v.TryGetValue(out string? text))
        {
            if (!text.StartsWith("train-images=")) return DataSource.OfFolder(text);
            // the one-string form of earlier versions (whose paths could not hold ';')
            var parts = text.Split(';').Select(p => p.Split('=', 2)).Where(p => p.Length == 2 && p[1].Length > 0)
                .ToDictionary(p => p[0].Replace('-', '_'), p => new DataSource.Entry(p[1], p[1]));
            return DataSource.FromEntries(parts);
        }
        var o = node.AsObject();
        var entries = new Dictionary<string, DataSource.Entry>();
        foreach (var key in new[] { "folder", "train_images", "train_labels", "test_images", "test_labels" })
            if ((string?)o[key] is string given)
                entries[key] = new DataSource.Entry(given, (string?)o[key + "_resolved"] is string resolved && Path.IsPathRooted(resolved) ? resolved : Path.GetFullPath(given));
        var range = (string?)o["pixel_range"] is string r ? PixelRanges.Parse(r) : PixelRange.Auto;
        return DataSource.FromEntries(entries) with { PixelRange = range };
    }

    public static JsonObject Fingerprint(DataFingerprint f) => new()
    {
        ["train_images"] = f.TrainImages, ["test_images"] = f.TestImages, ["features"] = f.Features, ["classes"] = f.Classes, ["sha256"] = f.Sha256,
    };

    /// <summary>A fingerprint as <see cref="Fingerprint"/> writes it; null when absent (files of earlier versions).</summary>
    public static DataFingerprint? ReadFingerprint(JsonNode? node)
    {
        if (node == null) return null;
        int Count(string key) => (int?)node[key] is int v && v >= 0 ? v : throw new FormatException($"fingerprint.{key} is not a count");
        string sha = (string?)node["sha256"] is { Length: 64 } s && s.All(Uri.IsHexDigit) ? s : throw new FormatException("fingerprint.sha256 is not a SHA-256");
        return new DataFingerprint(Count("train_images"), Count("test_images"), Count("features"), Count("classes"), sha);
    }
}
