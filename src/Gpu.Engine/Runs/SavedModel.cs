using System.Text;
using System.Text.Json.Nodes;
using System.Text.Json;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Runs;

/// <summary>
/// A trained model as <c>train --output DIR</c> leaves it: <c>DIR/model.npy</c>, the flat float32
/// parameter vector in the packing of <see cref="Model.MlpSpec"/> (weights layer by layer, row-major
/// [out, in], then all biases: what NumPy code that unpacks the flat vector reads), and <c>DIR/model.json</c>: layer sizes,
/// activation, loss, hyperparameters, seed, dataset, input preprocessing, final metrics, engine
/// version. Both are written atomically (temporary file + rename), model.npy first, so a model.json
/// always describes a complete model.npy; then <c>DIR/model.sha256</c> (<see cref="DigestFile"/>): the SHA-256 of
/// each, so a flipped bit in model.npy or an edit of model.json is refused on reading. Reading validates everything
/// and reports one <see cref="UserError"/>; a folder without model.sha256 (written by an earlier version, or
/// copied without it) is read unchecked.
/// </summary>
internal sealed record SavedModel(MlpSpec Spec, float[] Parameters, JsonObject Info, string Folder)
{
    public const string NpyName = "model.npy", JsonName = "model.json", DigestName = "model.sha256";
    const string Format = "gpu-model";
    const int FormatVersion = 1;

    /// <summary>The preprocessing every input goes through, as model.json states it.</summary>
    public const string Preprocessing = "pixels as uint8 0..255 (NPY and CSV values in [0, 1] scaled by 255 first, as --pixel-range says), then x / 255 - 0.5";

    /// <summary>The run's hyperparameters (absent in a hand-written model.json); an unreadable one is a <see cref="UserError"/>.</summary>
    public TrainOptions? Options
    {
        get
        {
            if (Info["hyperparameters"] is not JsonNode h) return null;
            try { return Hyperparameter.OptionsFromJson(h); }
            catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException or NullReferenceException or OverflowException)
            {
                throw new UserError($"bad model file {Path.Combine(Folder, JsonName)}: hyperparameters: {e.Message}; train the model again or give another --model folder");
            }
        }
    }

    /// <summary>The data the model was trained on (null when model.json names none); an unreadable entry is a <see cref="UserError"/>.</summary>
    public DataSource? Data => DataOf(Info, Folder);

    /// <summary>The data model.json's <paramref name="info"/> names (null: none); an unreadable entry is a <see cref="UserError"/> naming the file in <paramref name="folder"/>.</summary>
    public static DataSource? DataOf(JsonObject info, string folder)
    {
        try { return DataJson.ReadSource((info["data"] as JsonObject)?["source"]); }
        catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException)
        {
            throw new UserError($"bad model file {Path.Combine(folder, JsonName)}: data.source: {e.Message.Split('\n')[0].TrimEnd('.')}; give --data, or train the model again");
        }
    }

    /// <summary>A number model.json's metrics hold (test_loss, test_accuracy, ...); null when absent or not a number.</summary>
    public double? Metric(string key) => (Info["metrics"] as JsonObject)?[key] is JsonValue v && v.TryGetValue(out double d) ? d : null;

    /// <summary>
    /// Writes model.npy and model.json into <paramref name="dir"/>. <paramref name="extra"/> adds
    /// top-level fields (hyperparameters, data, metrics, device, ...); the format, engine version,
    /// layers, activation, loss, parameter count, packing and preprocessing are always written.
    /// </summary>
    public static void Write(string dir, MlpSpec spec, float[] parameters, JsonObject extra)
    {
        if (parameters.Length != spec.ParameterCount)
            throw new ArgumentException($"{parameters.Length} parameters for {spec} ({spec.ParameterCount})");
        var json = new JsonObject
        {
            ["format"] = Format,
            ["format_version"] = FormatVersion,
            ["engine_version"] = Checkpoint.EngineVersion,
            ["written_utc"] = DateTime.UtcNow.ToString("o"),
            ["layers"] = new JsonArray(spec.Sizes.Select(v => (JsonNode)v).ToArray()),
            ["activation"] = Words.Name(spec.Activation),
            ["loss"] = Words.Name(spec.Loss),
            ["parameter_count"] = spec.ParameterCount,
            ["packing"] = "model.npy: float32 vector; weights layer by layer, each row-major [out, in], then the biases layer by layer",
            ["preprocessing"] = Preprocessing,
        };
        foreach (var (key, value) in extra) json[key] = value?.DeepClone();
        byte[] npy = Npy.Encode(parameters), text = Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicFile.Write(Path.Combine(dir, NpyName), tmp => File.WriteAllBytes(tmp, npy));
        AtomicFile.Write(Path.Combine(dir, JsonName), tmp => File.WriteAllBytes(tmp, text));
        AtomicFile.Write(Path.Combine(dir, DigestName), tmp => File.WriteAllBytes(tmp, DigestFile.Text((NpyName, npy), (JsonName, text))));
    }

    /// <summary>Reads a model from <paramref name="path"/>: a folder holding model.json and model.npy, or model.json itself.</summary>
    public static SavedModel Read(string path)
    {
        string dir = File.Exists(path) && Path.GetFileName(path) == JsonName ? Path.GetDirectoryName(Path.GetFullPath(path))! : path;
        string jsonPath = Path.Combine(dir, JsonName), npyPath = Path.Combine(dir, NpyName);
        if (!Directory.Exists(dir)) throw new UserError($"--model {path}: folder not found; give the --output folder of a 'gpu train' run");
        if (!File.Exists(jsonPath))
            throw new UserError($"--model {path}: no {JsonName} there; give the --output folder of a 'gpu train' run (train writes {NpyName} and {JsonName} at its end)");
        UserError Bad(string file, string why) => new($"bad model file {file}: {why}; train the model again or give another --model folder");
        JsonObject info;
        byte[] jsonBytes;
        try
        {
            jsonBytes = File.ReadAllBytes(jsonPath);
            info = JsonText.Parse(jsonBytes).AsObject();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw Bad(jsonPath, $"not a JSON object ({e.Message.Split('\n')[0].TrimEnd('.')})"); }
        catch (IOException e) { throw Bad(jsonPath, $"cannot read it ({e.Message.TrimEnd('.')})"); }
        MlpSpec spec;
        try
        {
            if ((string?)info["format"] != Format) throw Bad(jsonPath, $"not a gpu model (no \"format\": \"{Format}\")");
            if ((int?)info["format_version"] != FormatVersion) throw Bad(jsonPath, $"format version {info["format_version"]}; this engine reads version {FormatVersion}");
            int[] sizes = info["layers"]!.AsArray().Select(n => (int)n!).ToArray();
            var loss = Words.ParseStored<LossKind>((string)info["loss"]!);
            spec = new MlpSpec(sizes, Words.ParseStored<Activation>((string)info["activation"]!), loss);
            if ((int)info["parameter_count"]! != spec.ParameterCount)
                throw Bad(jsonPath, $"parameter_count {info["parameter_count"]} does not match layers {spec} ({spec.ParameterCount} parameters)");
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or ArgumentException or JsonException)
        {
            throw Bad(jsonPath, $"missing or malformed field ({e.Message.Split('\n')[0].TrimEnd('.')})");
        }
        if (!File.Exists(npyPath)) throw Bad(npyPath, "file missing");
        float[] p;
        byte[] npyBytes;
        try { npyBytes = File.ReadAllBytes(npyPath); p = Npy.Decode(npyBytes, npyPath); }
        catch (IOException e) { throw Bad(npyPath, $"cannot read it ({e.Message.TrimEnd('.')})"); }
        if (p.Length != spec.ParameterCount) throw Bad(npyPath, $"holds {p.Length} values; layers {spec} need {spec.ParameterCount}");
        int bad = Array.FindIndex(p, v => !float.IsFinite(v));
        if (bad >= 0) throw Bad(npyPath, $"parameter {bad} is {p[bad]}");
        CheckDigests(dir, (jsonPath, jsonBytes), (npyPath, npyBytes));
        return new SavedModel(spec, p, info, dir);
    }

    /// <summary>
    /// Each file against its digest in model.sha256 (after the checks above, which say more precisely what is wrong with a malformed
    /// file); a mismatch is one <see cref="UserError"/> naming the file. Without model.sha256 nothing is checked.
    /// </summary>
    static void CheckDigests(string dir, params (string Path, byte[] Bytes)[] files)
    {
        string digestPath = Path.Combine(dir, DigestName);
        if (!File.Exists(digestPath)) return;
        foreach (var (path, bytes) in files)
            if (DigestFile.Mismatch(digestPath, Path.GetFileName(path), bytes) is string why)
                throw new UserError($"bad model file {path}: {why}; restore the model folder from a copy or train the model again");
    }
}
