using System.Reflection;
using Gpu.Engine.Settings;

namespace Gpu.Cli;

/// <summary>
/// A flag of the program that is not a setting (the settings' flags are rows of the setting table, <see cref="Hyperparameter.All"/>):
/// its name, what its value looks like in help (empty for a switch), its default, its help text and the rule its value must
/// meet (null: any non-empty value of the property's type). A verb's property takes its value through <see cref="FlagAttribute"/>.
/// </summary>
internal sealed record CliFlag(string Name, string Metavar, object? Default, string Help, Func<string, string?>? Rule = null)
{
    public string Dashed => "--" + Name;
    public bool IsSwitch => Metavar.Length == 0;
}

/// <summary>The property of a verb that <see cref="Flags"/>' field <see cref="Field"/> sets; <see cref="Required"/>: the verb needs it.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class FlagAttribute(string field) : Attribute
{
    public string Field { get; } = field;
    public bool Required { get; init; }
    public CliFlag Flag => Flags.Named(Field);
}

/// <summary>The word a verb takes without a flag ("gpu search merge DIR"): what it looks like and means; one at most.</summary>
[AttributeUsage(AttributeTargets.Property)]
internal sealed class WordAttribute(string metavar, string help) : Attribute
{
    public string Metavar { get; } = metavar;
    public string Help { get; } = help;
}

/// <summary>
/// Every flag of every verb besides the settings, the CLI's twin of the setting table: each is stated once here (name,
/// metavar, default, help, value rule) and a verb names the ones it takes. A flag with the same name means the same
/// thing wherever it is one field (--device, --data, --pixel-range, --limit); a field of its own per verb says how it
/// differs there (--output is a run folder for train, a CSV file for predict).
/// </summary>
internal static class Flags
{
    const string DeviceHelp = "auto (CUDA, then OpenCL, then CPU), cpu, cuda[:N] or opencl[:N].";
    const string PixelRangeHelp = "Range of the values in .npy and .csv images: 0-255 (as they are), 0-1 (times 255), or auto (integers 0-255; floats 0-1 unless a value is above 1). IDX files hold uint8 0-255.";
    const string LimitHelp = "Use only the first N training images (0: all).";

    static string? LimitRule(string v) => int.TryParse(v, out int n) && n >= 0 ? null : $"--limit {v}: give a whole number >= 0 (0: all)";
    static string? PixelRangeRule(string v) { _ = new DataFiles { PixelRange = v }; return null; }   // DataFiles throws the line itself

    public static readonly CliFlag Device = new("device", "D", "auto",
        DeviceHelp);

    public static readonly CliFlag MergeDevice = new("device", "D", "auto",
        "For --retrain: " + DeviceHelp);

    public static readonly CliFlag SearchDevice = new("device", "D", "auto",
        DeviceHelp + " Every trial runs on it; kernels are compiled once.");

    public static readonly CliFlag Data = new("data", "DIR", DataFiles.DefaultFolder,
        "Folder with the four IDX files (train-/t10k- images and labels, .gz or plain), or train/test .npy or .csv files; data/mnist-10k also ships.");

    public static readonly CliFlag EvalData = new("data", "DIR", null,
        "Data folder whose test split to use, as train's --data (default: the data the model was trained on, from model.json).");

    public static readonly CliFlag GradcheckData = new("data", "DIR", null,
        "Data folder (or explicit files as train writes them) whose first --examples training images are used. Default: the model's training data with --model, else data/fashion-mnist.");

    public static readonly CliFlag SearchData = new("data", "DIR", DataFiles.DefaultFolder,
        "Data folder (IDX, .npy or .csv files), as for train.");

    public static readonly CliFlag Limit = new("limit", "N", 0,
        LimitHelp + " For quick experiments.", LimitRule);

    public static readonly CliFlag PredictLimit = new("limit", "N", 0,
        "Only the first N images (0: all).", LimitRule);

    public static readonly CliFlag SearchLimit = new("limit", "N", 0,
        LimitHelp + " For quick searches.", LimitRule);

    public static readonly CliFlag Model = new("model", "DIR", null,
        "The --output folder of a 'gpu train' run (model.npy + model.json).");

    public static readonly CliFlag GradcheckModel = new("model", "DIR", null,
        "Check a trained model: the --output folder of a 'gpu train' run. Without it a fresh network is built from --layers, --activation, --loss, --init and --seed.");

    public static readonly CliFlag Family = new("family", "VALUE", null,
        "Check only this family of the dense-layer products ({gemm-families}; the device must run it), and every other kernel.");

    public static readonly CliFlag CheckPrecision = new("precision", "VALUE", "fp32",
        "Check the dense-layer products in this precision: fp32, tf32 or bf16 (each family that computes it: on tensor cores, or emulated by rounding each input as tensor cores round it; against the float64 product of inputs rounded the same way); every other kernel as always.");

    public static readonly CliFlag Ptx = new("ptx", "", null,
        "Compile every kernel to CUDA PTX for sm_80 and sm_90 at ILGPU optimisation levels O1 and O2, as a CUDA device would (no GPU or CUDA driver needed), and check it: it compiles, no local memory in a product, no approximate instruction (.approx or div.full) in any kernel. Exit code 4 if any fails.");

    public static readonly CliFlag PtxOut = new("ptx-out", "DIR", null,
        "With --ptx: also write each kernel's PTX to this folder (Kernel_sm_90_O2.ptx), what the build would send to the driver.");

    public static readonly CliFlag EvalTestImages = new("test-images", "FILE", null,
        "Test images instead of a folder: IDX, .npy or .csv (label,pixel0,...).");

    public static readonly CliFlag TrainTestImages = new("test-images", "FILE", null,
        "Test images, as --train-images.");

    public static readonly CliFlag EvalTestLabels = new("test-labels", "FILE", null,
        "Labels for --test-images: IDX or .npy (not for .csv images).");

    public static readonly CliFlag TrainTestLabels = new("test-labels", "FILE", null,
        "Test labels, as --train-labels.");

    public static readonly CliFlag PixelRange = new("pixel-range", "VALUE", "auto",
        PixelRangeHelp, PixelRangeRule);

    public static readonly CliFlag EvalOutput = new("output", "DIR", null,
        "Folder for eval.json and confusion.csv (default: the model folder), created if missing.");

    public static readonly CliFlag ExportOutput = new("output", "FILE", null,
        "The file to write (default: model.onnx or model.safetensors in the model folder).");

    public static readonly CliFlag LandscapeOutput = new("output", "DIR", "landscape",
        "Folder for landscape.csv (kind,step,a,b,loss: grid points, then path points) and landscape.png, created if missing.");

    public static readonly CliFlag PredictOutput = new("output", "FILE.csv", null,
        "Also write the predictions as CSV: index, predicted, one probability column per class, label (when known).");

    public static readonly CliFlag SearchOutput = new("output", "DIR", null,
        "Folder for search.csv (a row per finished trial), best.json (the best trial, then its test metrics), search.json (the shared settings) and best/ (the best retrained: model.npy, model.json, history.csv, curves.png). Rerunning with the same folder skips the trials search.csv holds. A shard (--shard) writes the same files, but no best/, in its own folder inside it, shard-K-of-N/.");

    public static readonly CliFlag TrainOutput = new("output", "DIR", null,
        "Folder for model.npy + model.json (the trained model, at the end), history.csv + curves.png (every epoch) and checkpoint/ (every epoch and on Ctrl-C), created if missing.");

    public static readonly CliFlag WeightsOutput = new("output", "FILE.png", null,
        "The PNG to write (default: weights.png in the model folder).");

    public static readonly CliFlag BatchSize = new("batch-size", "N", 1000,
        "Images per forward pass (1000 is what training evaluates with).");

    public static readonly CliFlag Format = new("format", "VALUE", null,
        "onnx or safetensors.");

    public static readonly CliFlag Examples = new("examples", "N", 5,
        "Training examples the loss is averaged over (the first N of the training set).");

    public static readonly CliFlag Params = new("params", "VALUE", "2000",
        "How many parameters to check: a number N (a seeded sample, shared equally among every layer's W and b, so each is covered) or 'all'. Each costs two float64 forward passes on the host: 'all' on the default 235,146-parameter network takes many minutes.");

    public static readonly CliFlag Epsilon = new("epsilon", "X", GradientReport.DefaultEpsilon,
        "Central-difference step (f(p+e) - f(p-e)) / 2e in float64. Its truncation error grows as e^2 and its rounding error as 1e-16/e, so 1e-6 keeps both near 1e-10; far larger or smaller steps make the numeric gradient worse, not better.");

    public static readonly CliFlag Threshold = new("threshold", "X", 1e-4,
        "Fail (exit code 4) when ||analytic - numeric|| / ||numeric|| is above this. The device computes in float32, so a correct gradient gives about 1e-7 to 1e-6. Parameters with a ReLU switching within +-epsilon (a kink: the one-sided differences disagree) are reported and left out of the norms.");

    public static readonly CliFlag Dump = new("dump", "FILE", null,
        "Write every checked parameter (index, layer, W or b, row, col, analytic, numeric, errors, kink) to this CSV file.");

    public static readonly CliFlag RecordEvery = new("record-every", "N", 0,
        "Record the flat parameter vector every N SGD steps (plus the start and the end); 0: about 10 points per epoch. At most 500 points.");

    public static readonly CliFlag Grid = new("grid", "N", 50,
        "Evaluate the loss on a G x G grid of the PCA plane, covering the path with a 30% margin on each side.");

    public static readonly CliFlag EvalImages = new("eval-images", "N", 2000,
        "Training images (the first N) the loss is evaluated on, at every grid point and every recorded point. Cost: G^2 forward passes over them.");

    public static readonly CliFlag Input = new("input", "FILE", null,
        "Images: IDX, .npy ([N, pixels] or [N, h, w]; uint8, or floats in [0, 255] or [0, 1]) or .csv (pixel0,... rows, optionally after a label column and a header).");

    public static readonly CliFlag Labels = new("labels", "FILE", null,
        "True labels for --input (IDX or .npy); then the accuracy is reported. A .csv input carries its own label column.");

    public static readonly CliFlag Top = new("top", "N", 0,
        "Print only the K most probable classes per image, most probable first (0: every class, in class order).");

    public static readonly CliFlag Retrain = new("retrain", "", null,
        "Then retrain the best trial (same settings, seed and split) and report its test accuracy; the model goes to DIR/best/, as 'gpu search' writes it. The data is read from where the shards read it.");

    public static readonly CliFlag SearchConfig = new("config", "FILE", null,
        "YAML grid file: Train: and Model: sections as for 'train --config', where a list gives the choices (learning_rate: [0.01, 0.1]); hidden_size choices are numbers, lists ([[256, 128], [512]]) or strings ('256,128;512'). Other keys (optimizer, schedule, activation, ...) set what all trials share. Flags override it.");

    public static readonly CliFlag TrainConfig = new("config", "FILE", null,
        "YAML experiment file (like config_exp.yaml): a Train: section (batch_size, learning_rate, reg, epochs, momentum, and any other option under its flag's name) and a Model: section (hidden_size: widths, activation, ...). Flags given on the command line override it.");

    public static readonly CliFlag Shard = new("shard", "K/N", null,
        "K/N: run only shard K (0 to N-1) of N, the trials whose grid index (trial number - 1) is K modulo N, into --output's shard-K-of-N/ folder, without retraining; 'gpu search merge DIR' combines the shards. Without it, a Slurm array job (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, JOB_COMPLETIONS) gives the shard.");

    public static readonly CliFlag SearchOverwrite = new("overwrite", "", null,
        "Start the search afresh in an --output folder that holds an earlier search or run: once the data and device are ready, its files (search.csv, search.json, best.json, best/, shard folders, a run's checkpoint and model) are moved into DIR/.replaced/, deleted when the new search writes its first trial row, and moved back if it fails or is interrupted before that. Without it a search folder is continued and a training run's folder refused.");

    public static readonly CliFlag TrainOverwrite = new("overwrite", "", null,
        "Start afresh in an --output folder that holds an earlier run: once the new run has its data and device, the earlier run's files (checkpoint, model, exports, history, curves, eval) are moved into DIR/.replaced/, deleted when the new run checkpoints its first epoch, and moved back if it diverges, fails or is interrupted before that; a .replaced/ left by a killed process is restored (or, when the new run had checkpointed, deleted) by the next command on the folder. Without it such a folder is refused.");

    public static readonly CliFlag TrainImages = new("train-images", "FILE", null,
        "Training images: IDX, .npy ([N, features] or [N, h, w]; uint8 or float) or .csv (label,pixel0,...). Overrides --data; needs --test-images.");

    public static readonly CliFlag TrainLabels = new("train-labels", "FILE", null,
        "Training labels: IDX or .npy (not for .csv images).");

    public static readonly CliFlag Verbose = new("verbose", "", null,
        "Also print the kernels per training step and how they are launched (directly, or replayed as one CUDA graph per step, and why not): at small batches a GPU step costs about one launch overhead per direct launch.");

    public static readonly CliFlag Resume = new("resume", "DIR", null,
        "Continue the run whose --output folder (or checkpoint folder) is DIR, with its settings; only --epochs, --device, --verbose and the data (--data or the file flags, when it moved: it must be the same data) may be given too.");

    public static readonly CliFlag InitFrom = new("init-from", "FILE", null,
        "Start from these weights instead of the seeded initialisation (--init, --bias-init): a model.npy (flat float32 vector, the engine's packing) or a .safetensors file (gpu export, or a PyTorch Sequential of Linear layers: 0.weight [out, in], 0.bias, 2.weight, ...) of this network's shape.");

    public static readonly CliFlag Columns = new("columns", "N", 0,
        "Tiles per row (0: a square-ish grid).");

    public static readonly CliFlag Count = new("count", "N", 0,
        "Draw the first N units' rows (0: all units of the first layer).");

    /// <summary>Every field above, by its name.</summary>
    static readonly Dictionary<string, CliFlag> ByField = typeof(Flags).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.FieldType == typeof(CliFlag)).ToDictionary(f => f.Name, f => (CliFlag)f.GetValue(null)!);

    /// <summary>Every flag of the registry.</summary>
    public static IEnumerable<CliFlag> All => ByField.Values;

    /// <summary>The flag of a field name (<c>nameof(Flags.Device)</c>).</summary>
    public static CliFlag Named(string field) => ByField.TryGetValue(field, out var f) ? f : throw new InvalidOperationException($"no flag {field} in Flags");
}
