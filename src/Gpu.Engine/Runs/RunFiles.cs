using System.Globalization;
using System.Text.Json.Nodes;
using System.Text;
using Gpu.Engine.Analysis;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Engine.Runs;

/// <summary>
/// The files a training run leaves in its output folder, written the same way by <c>train --output</c>
/// and by <c>search</c> for its best configuration: history.csv + curves.png and model.npy + model.json.
/// </summary>
internal static class RunFiles
{
    public const string HistoryName = "history.csv", CurvesName = "curves.png";

    /// <summary>history.csv (one row per epoch) and curves.png (loss and accuracy per epoch) in <paramref name="dir"/>.</summary>
    public static void WriteHistory(string dir, IReadOnlyList<EpochStats> history, string title)
    {
        if (history.Count == 0)   // no finished epoch: no history yet (a resume from the first epoch drops what a failed write left)
        {
            foreach (var name in new[] { HistoryName, CurvesName })
                try { File.Delete(Path.Combine(dir, name)); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UserError($"cannot remove {Path.Combine(dir, name)}: {e.Message.TrimEnd('.')}"); }
            return;
        }
        var sb = new StringBuilder("epoch,train_loss,train_accuracy,val_loss,val_accuracy,train_seconds,samples_per_s,eval_seconds\n");
        foreach (var e in history)
            sb.Append(CultureInfo.InvariantCulture, $"{e.Epoch},{F(e.TrainLoss)},{F(e.TrainAccuracy)},{(e.ValLoss is double vl ? F(vl) : "")},{(e.ValAccuracy is double va ? F(va) : "")},{F(e.TrainSeconds)},{F(e.SamplesPerSecond)},{F(e.EvalSeconds)}\n");
        AtomicFile.WriteAllText(Path.Combine(dir, HistoryName), sb.ToString());
        Plots.TrainingCurves(history, Path.Combine(dir, CurvesName), title);
    }

    static string F(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The title curves.png carries: network, data and seed.</summary>
    public static string CurvesTitle(MlpSpec spec, DataPair data, TrainOptions o) => $"{spec} on {data.Train.Name}, seed {o.Seed}";

    /// <summary>model.npy and model.json: the trained weights and everything needed to use and reproduce them.</summary>
    public static void WriteModel(string dir, ComputeDevice device, DataPair data, DataSource dataSource, int limit, TrainOptions o, TrainResult r,
        string? initFrom = null) =>
        SavedModel.Write(dir, r.Spec, r.Parameters, ModelInfo(device, data, dataSource, limit, o, r, initFrom));

    /// <summary>What model.json says of a finished run beyond the network itself: device, seed, hyperparameters, data and metrics.</summary>
    public static JsonObject ModelInfo(ComputeDevice device, DataPair data, DataSource dataSource, int limit, TrainOptions o, TrainResult r,
        string? initFrom = null)
    {
        var last = r.History[^1];
        return new JsonObject
        {
            ["init_from"] = initFrom,
            ["device"] = $"{device.Id} ({device.Name})",
            ["seed"] = o.Seed,
            ["hyperparameters"] = Hyperparameter.OptionsToJson(o),
            ["data"] = new JsonObject
            {
                ["name"] = data.Train.Name, ["source"] = DataJson.Source(dataSource), ["limit"] = limit, ["features"] = data.Train.Features, ["classes"] = data.Train.Classes,
                ["train_count"] = r.TrainCount, ["val_count"] = r.ValCount, ["test_count"] = r.Test.Count,
                ["data_path"] = Words.Name(r.DataPath),
            },
            ["metrics"] = new JsonObject
            {
                ["test_accuracy"] = r.Test.Accuracy, ["test_loss"] = r.Test.Loss,
                ["epochs_trained"] = r.History.Count, ["stopped_early_at_best_epoch"] = r.StoppedEarlyAtBestEpoch,
                ["final_train_loss"] = last.TrainLoss, ["final_train_accuracy"] = last.TrainAccuracy,
                ["final_val_loss"] = last.ValLoss is double vl && double.IsFinite(vl) ? vl : null, ["final_val_accuracy"] = last.ValAccuracy,
                ["train_samples_per_s"] = r.TrainSamplesPerSecond, ["seconds"] = r.Seconds,
            },
            ["warnings"] = new JsonArray(r.Warning is string w ? [(JsonNode)w] : []),   // TrainResult.Warning: a run that learned nothing
        };
    }

    /// <summary>An epoch's line, under 80 columns so a terminal never wraps it under a live progress bar.</summary>
    public static string EpochLine(EpochStats e, int epochs)
    {
        string val = e.ValLoss is double vl ? $" | val {vl:F3} acc {e.ValAccuracy:F3}" : "";
        return $"epoch {e.Epoch,3}/{epochs} loss {e.TrainLoss:F3} acc {e.TrainAccuracy:F3}{val} | {e.TrainSeconds:F1}s {Rate(e.SamplesPerSecond)} samples/s";
    }

    /// <summary>A rate in at most 4 characters: 950, 2320, 181k.</summary>
    static string Rate(double perSecond) => perSecond >= 10000 ? $"{perSecond / 1000:F0}k" : $"{perSecond:F0}";
}
