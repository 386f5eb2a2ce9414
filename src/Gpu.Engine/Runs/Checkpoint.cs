using System.Text.Json.Nodes;
using System.Text.Json;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Engine.Runs;

/// <summary>
/// What a checkpoint records about the run besides the trainer's state: network, hyperparameters, data (where
/// it was, <paramref name="Limit"/>, the training images used, and its <see cref="DataFingerprint"/>, absent
/// in checkpoints of earlier versions), the device, and the settings changed on the way (<paramref name="SettingChanges"/>:
/// "epoch 1: lr 5 -> 0.1 after divergence", one line each, oldest first).
/// </summary>
internal sealed record CheckpointRun(int[] Sizes, TrainOptions Options, DataSource Data, int Limit, int TrainImages, string Device,
    DataFingerprint? Fingerprint = null, IReadOnlyList<string>? SettingChanges = null);

/// <summary>
/// A checkpoint as <see cref="Checkpoint.Read"/> found it: the run, the state, the folder it came from, and, when
/// the newest checkpoint was damaged and the older complete one (<c>checkpoint.old/</c>) was read instead,
/// what was wrong with the newest (<see cref="Damaged"/>).
/// </summary>
internal sealed record LoadedCheckpoint(CheckpointRun Run, TrainState State, string Folder, string? Damaged = null)
{
    public void Deconstruct(out CheckpointRun run, out TrainState state) { run = Run; state = State; }
}

/// <summary>
/// A resumable checkpoint: folder <c>OUT/checkpoint/</c> holding <c>model.npy</c> (the flat float32
/// parameter vector, P values), <c>optimizer.npy</c> (the optimizer state, 2 x P values: the momentum
/// or Adam's first-moment vector, then Adam's second-moment vector, zeros for SGD and Nesterov), with
/// early stopping <c>best.npy</c> (the best epoch's parameters), and <c>state.json</c> (layers,
/// hyperparameters with schedule and seed, position in the run, partial epoch sums, history, data
/// folder, SHA-256 of each .npy file, engine version), and <c>state.sha256</c>, the SHA-256 of state.json
/// (<see cref="DigestFile"/>; absent in checkpoints of earlier versions, which are read unchecked).
/// <para>Writing is atomic as a whole: the files go into <c>checkpoint.new/</c> (state.json and its digest last),
/// the old folder is renamed to <c>checkpoint.old/</c>, the new one to <c>checkpoint/</c>, and the old
/// one is deleted. A crash at any point leaves either a complete <c>checkpoint/</c> or a complete
/// <c>checkpoint.old/</c>, which <see cref="Read"/> falls back to.</para>
/// Reading validates everything (format, shapes, parameter count, checksums) before returning, and
/// reports any problem as one <see cref="UserError"/>: a corrupt checkpoint is never half-loaded.
/// </summary>
internal static class Checkpoint
{
    public const string FolderName = "checkpoint";
    const string StateName = "state.json", StateDigestName = "state.sha256";
    const string Format = "gpu-checkpoint";
    const int FormatVersion = 1;

    public static string EngineVersion => typeof(Checkpoint).Assembly.GetName().Version?.ToString(3) ?? "0";

    /// <summary>Writes the checkpoint of <paramref name="state"/> into <paramref name="outDir"/>/checkpoint; returns that folder.</summary>
    public static string Write(string outDir, CheckpointRun run, TrainState state)
    {
        string final = Path.Combine(outDir, FolderName), fresh = final + ".new", old = final + ".old";
        bool hadOne = File.Exists(Path.Combine(final, "state.json")) || File.Exists(Path.Combine(old, "state.json"));
        try
        {
            if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
            Directory.CreateDirectory(fresh);
            var model = Npy.Encode(state.Parameters);
            var optimizer = Npy.Encode(state.Velocity);
            WriteDurably(Path.Combine(fresh, "model.npy"), model);
            WriteDurably(Path.Combine(fresh, "optimizer.npy"), optimizer);
            var best = state.Best == null ? null : Npy.Encode(state.Best);
            if (best != null) WriteDurably(Path.Combine(fresh, "best.npy"), best);
            var json = ToJson(run, state, Sha256(model), Sha256(optimizer));
            if (best != null)
            {
                json["files"]!.AsObject()["best.npy"] = new JsonObject { ["sha256"] = Sha256(best), ["shape"] = new JsonArray(state.Best!.Length), ["dtype"] = "<f4" };
                json["position"]!.AsObject()["best_epoch"] = state.BestEpoch;
            }
            var stateBytes = System.Text.Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            WriteDurably(Path.Combine(fresh, StateName), stateBytes);
            WriteDurably(Path.Combine(fresh, StateDigestName), DigestFile.Text((StateName, stateBytes)));
            if (Directory.Exists(final))
            {
                if (Directory.Exists(old)) Directory.Delete(old, true);
                Directory.Move(final, old);
            }
            Directory.Move(fresh, final);
            if (Directory.Exists(old)) Directory.Delete(old, true);
            return final;
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            try { if (Directory.Exists(fresh)) Directory.Delete(fresh, true); } catch (Exception) { }   // no half-written checkpoint.new/ left behind
            throw new UserError($"cannot write the checkpoint of epoch {state.EpochsDone}{(state.MidEpoch ? $", step {state.StepInEpoch}" : "")} in {outDir}: {e.Message.TrimEnd('.')} " +
                (hadOne ? "(the previous checkpoint is kept)" : "(no checkpoint yet)"));
        }
    }

    /// <summary>
    /// The file in a checkpoint folder that says its run diverged after it was written (the last good checkpoint):
    /// a resume of it may then lower --lr, --momentum or --l2. A checkpoint written later is a new folder without it.
    /// </summary>
    public const string DivergedName = "diverged.json";

    /// <summary>Records in the newest checkpoint of <paramref name="outDir"/> that the run diverged after it (see <see cref="DivergedName"/>).</summary>
    public static void RecordDivergence(string outDir, Divergence d)
    {
        var json = new JsonObject { ["epoch"] = d.Epoch, ["step"] = d.Step, ["what"] = d.What, ["lr"] = d.LearningRate, ["suggested_lr"] = d.SuggestedRate };
        AtomicFile.WriteAllText(Path.Combine(Locate(outDir), DivergedName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The divergence recorded in checkpoint folder <paramref name="folder"/> (see <see cref="DivergedName"/>); null when its run did not diverge after it.</summary>
    public static Divergence? DivergenceAfter(string folder)
    {
        string path = Path.Combine(folder, DivergedName);
        if (!File.Exists(path)) return null;
        try
        {
            var j = JsonText.Parse(File.ReadAllText(path));
            return new Divergence((int)j["epoch"]!, (long?)j["step"], (string?)j["what"] ?? "", (double)j["lr"]!, (double)j["suggested_lr"]!);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException or FormatException)
        {
            throw Corrupt(path, $"not a divergence record ({e.Message.Split('\n')[0].TrimEnd('.')})");
        }
    }

    /// <summary>Whether <paramref name="outDir"/> holds a checkpoint (complete or not) that a resume could start from.</summary>
    public static bool Exists(string outDir) =>
        File.Exists(Path.Combine(outDir, FolderName, "state.json")) || File.Exists(Path.Combine(outDir, FolderName + ".old", "state.json"));

    /// <summary>
    /// After <see cref="Read"/> fell back to <c>checkpoint.old/</c>: moves the damaged <c>checkpoint/</c> to
    /// <c>checkpoint.damaged/</c> (replacing an earlier one) and the older checkpoint into its place, so that
    /// the next write never deletes the only good checkpoint. Returns where the damaged one went.
    /// </summary>
    public static string SetAsideDamaged(string outDir)
    {
        string final = Path.Combine(outDir, FolderName), old = final + ".old", damaged = final + ".damaged";
        try
        {
            if (Directory.Exists(damaged)) Directory.Delete(damaged, true);
            if (Directory.Exists(final)) Directory.Move(final, damaged);
            Directory.Move(old, final);
            return damaged;
        }
        catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
        {
            throw new UserError($"cannot move the damaged checkpoint in {outDir} aside: {e.Message.TrimEnd('.')}");
        }
    }

    static void WriteDurably(string path, byte[] bytes)
    {
        using var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
        f.Write(bytes);
        f.Flush(flushToDisk: true);
    }

    static string Sha256(byte[] bytes) => DigestFile.Sha256(bytes);

    static JsonObject ToJson(CheckpointRun run, TrainState s, string modelSha, string optimizerSha)
    {
        var o = run.Options;
        var history = new JsonArray();
        foreach (var e in s.History)
            history.Add(new JsonObject
            {
                ["epoch"] = e.Epoch, ["train_loss"] = e.TrainLoss, ["train_accuracy"] = e.TrainAccuracy,
                ["val_loss"] = Finite(e.ValLoss), ["val_accuracy"] = e.ValAccuracy, ["train_seconds"] = e.TrainSeconds,
                ["samples_per_s"] = Finite(e.SamplesPerSecond), ["eval_seconds"] = e.EvalSeconds,
            });
        return new JsonObject
        {
            ["format"] = Format,
            ["format_version"] = FormatVersion,
            ["engine_version"] = EngineVersion,
            ["written_utc"] = DateTime.UtcNow.ToString("o"),
            ["device"] = run.Device,
            ["layers"] = new JsonArray(run.Sizes.Select(v => (JsonNode)v).ToArray()),
            ["parameter_count"] = s.Parameters.Length,
            ["hyperparameters"] = Hyperparameter.OptionsToJson(o),
            ["setting_changes"] = run.SettingChanges is { Count: > 0 } changes ? new JsonArray(changes.Select(c => (JsonNode)c).ToArray()) : null,
            ["data"] = new JsonObject
            {
                ["source"] = DataJson.Source(run.Data), ["limit"] = run.Limit, ["train_images"] = run.TrainImages,
                ["fingerprint"] = run.Fingerprint == null ? null : DataJson.Fingerprint(run.Fingerprint),
            },
            ["position"] = new JsonObject
            {
                ["epochs_done"] = s.EpochsDone, ["step_in_epoch"] = s.StepInEpoch, ["steps_per_epoch"] = s.StepsPerEpoch,
                ["global_step"] = s.GlobalStep, ["partial_loss_sum"] = s.PartialLossSum, ["partial_correct"] = s.PartialCorrect,
            },
            ["history"] = history,
            ["files"] = new JsonObject
            {
                ["model.npy"] = new JsonObject { ["sha256"] = modelSha, ["shape"] = new JsonArray(s.Parameters.Length), ["dtype"] = "<f4" },
                ["optimizer.npy"] = new JsonObject { ["sha256"] = optimizerSha, ["shape"] = new JsonArray(s.Velocity.Length), ["dtype"] = "<f4" },
            },
        };
    }

    /// <summary>JSON has no NaN or infinity: such a value (an overflowing validation loss, a zero-second epoch) is written as null.</summary>
    static double? Finite(double? v) => v is double d && double.IsFinite(d) ? d : null;

    /// <summary>
    /// Reads and validates a checkpoint. <paramref name="dir"/> is the checkpoint folder itself or an
    /// output folder holding <c>checkpoint/</c> (or, after a crash mid-write, <c>checkpoint.old/</c>).
    /// </summary>
    /// When the newest checkpoint (<c>checkpoint/</c>) is damaged and a complete older one (<c>checkpoint.old/</c>,
    /// left by a crash between two steps of a write) lies beside it, the older one is read and the result says
    /// what was wrong with the newest.
    public static LoadedCheckpoint Read(string dir)
    {
        string folder = Locate(dir);
        try { return ReadFolder(folder); }
        catch (UserError damaged) when (Older(folder) is string older)
        {
            try { return ReadFolder(older) with { Damaged = damaged.Message }; }
            catch (UserError) { throw damaged; }
        }
    }

    /// <summary>checkpoint.old/ beside a checkpoint/ folder, when it holds a state.json.</summary>
    static string? Older(string folder)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        return Path.GetFileName(full) == FolderName && File.Exists(Path.Combine(full + ".old", "state.json")) ? full + ".old" : null;
    }

    static LoadedCheckpoint ReadFolder(string folder)
    {
        string statePath = Path.Combine(folder, StateName);
        JsonNode root;
        byte[] stateBytes;
        try
        {
            stateBytes = File.ReadAllBytes(statePath);
            root = JsonText.Parse(stateBytes);
        }
        catch (JsonException e) { throw Corrupt(statePath, $"not valid JSON ({e.Message.Split('\n')[0].TrimEnd('.')})"); }
        catch (IOException e) { throw Corrupt(statePath, $"cannot read it ({e.Message.TrimEnd('.')})"); }
        try
        {
            if ((string?)root["format"] != Format) throw Corrupt(statePath, "not a gpu checkpoint (no \"format\": \"gpu-checkpoint\")");
            if ((int?)root["format_version"] != FormatVersion) throw Corrupt(statePath, $"format version {root["format_version"]}; this engine reads version {FormatVersion}");
            int[] sizes = root["layers"]!.AsArray().Select(n => (int)n!).ToArray();
            var spec = new MlpSpec(sizes);
            int count = (int)root["parameter_count"]!;
            if (count != spec.ParameterCount)
                throw Corrupt(statePath, $"parameter_count {count} does not match layers {spec} ({spec.ParameterCount} parameters)");
            var h = root["hyperparameters"]!;
            var options = Hyperparameter.OptionsFromJson(h);
            if (!options.Hidden.SequenceEqual(sizes[1..^1])) throw Corrupt(statePath, "hidden widths do not match the layers");
            var d = root["data"]!;
            var p = root["position"]!;
            var history = root["history"]!.AsArray().Select(e => new EpochStats((int)e!["epoch"]!, (double)e["train_loss"]!, (double)e["train_accuracy"]!,
                (double?)e["val_loss"], (double?)e["val_accuracy"], (double)e["train_seconds"]!, (double?)e["samples_per_s"] ?? double.NaN, (double)e["eval_seconds"]!)).ToArray();
            var parameters = LoadVector(folder, "model.npy", root, count);
            var velocity = LoadVector(folder, "optimizer.npy", root, 2 * count);   // momentum / first moment, then second moment
            float[]? best = root["files"]!["best.npy"] != null ? LoadVector(folder, "best.npy", root, count) : null;
            var state = new TrainState((int)p["epochs_done"]!, (int)p["step_in_epoch"]!, (int)p["steps_per_epoch"]!, (long)p["global_step"]!,
                parameters, velocity, (double)p["partial_loss_sum"]!, (double)p["partial_correct"]!, history, best, (int?)p["best_epoch"] ?? 0);
            if (state.EpochsDone < 0 || state.StepInEpoch < 0 || state.StepInEpoch >= state.StepsPerEpoch || history.Length != state.EpochsDone
                || state.GlobalStep != (long)state.EpochsDone * state.StepsPerEpoch + state.StepInEpoch)
                throw Corrupt(statePath, "inconsistent position (epochs done, step in epoch, global step, history)");
            var source = DataJson.ReadSource(d["source"] ?? d["folder"]) ?? throw new FormatException("data.source is missing");   // "folder": earlier versions
            var run = new CheckpointRun(sizes, options, source, (int)d["limit"]!, (int)d["train_images"]!, (string?)root["device"] ?? "",
                DataJson.ReadFingerprint(d["fingerprint"]), root["setting_changes"]?.AsArray().Select(c => (string)c!).ToArray());
            // last, so a malformed state.json is reported as what it is; a changed one (another seed, rate, epoch count) is damage like a changed .npy
            string digestPath = Path.Combine(folder, StateDigestName);
            if (File.Exists(digestPath) && DigestFile.Mismatch(digestPath, StateName, stateBytes) is string why) throw Corrupt(statePath, why);
            return new LoadedCheckpoint(run, state, folder);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or ArgumentException or OverflowException or JsonException)
        {
            throw Corrupt(statePath, $"missing or malformed field ({e.Message.Split('\n')[0].TrimEnd('.')})");
        }
    }

    static string Locate(string dir)
    {
        if (File.Exists(Path.Combine(dir, "state.json"))) return dir;
        foreach (var name in new[] { FolderName, FolderName + ".old" })
            if (File.Exists(Path.Combine(dir, name, "state.json"))) return Path.Combine(dir, name);
        if (!Directory.Exists(dir)) throw new UserError($"--resume {dir}: folder not found");
        throw new UserError($"--resume {dir}: no checkpoint there (no {FolderName}/state.json); give the --output folder of an earlier run");
    }

    static float[] LoadVector(string folder, string name, JsonNode root, int count)
    {
        string path = Path.Combine(folder, name);
        if (!File.Exists(path)) throw Corrupt(path, "file missing");
        var bytes = File.ReadAllBytes(path);
        string want = (string)root["files"]![name]!["sha256"]!;
        if (!string.Equals(Sha256(bytes), want, StringComparison.OrdinalIgnoreCase))
            throw Corrupt(path, "SHA-256 checksum does not match state.json (the file is damaged or was changed)");
        var v = Npy.Decode(bytes, path);
        if (v.Length != count) throw Corrupt(path, $"holds {v.Length} values; expected {count} for this network");
        return v;
    }

    static UserError Corrupt(string path, string why) => new($"corrupt checkpoint {path}: {why}; resume from another checkpoint or start again");
}
