using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

[Verb("train", HelpText = "Train an MLP (default: W1, 784-256-128-10 on Fashion-MNIST) and report test accuracy.")]
[Settings]
internal sealed class TrainVerb : TrainingRunOptions, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Args, c.Stop, c.Terminal);

    [Option("train-images", HelpText = "Training images: IDX, .npy ([N, features] or [N, h, w]; uint8 or float) or .csv (label,pixel0,...). Overrides --data; needs --test-images.")]
    public string? TrainImages { get; set; }

    [Option("train-labels", HelpText = "Training labels: IDX or .npy (not for .csv images).")]
    public string? TrainLabels { get; set; }

    [Option("test-images", HelpText = "Test images, as --train-images.")]
    public string? TestImages { get; set; }

    [Option("test-labels", HelpText = "Test labels, as --train-labels.")]
    public string? TestLabels { get; set; }

    [Option("pixel-range", Default = SharedFlags.PixelRangeDefault, HelpText = SharedFlags.PixelRangeHelp)]
    public string PixelRange { get; set; } = SharedFlags.PixelRangeDefault;

    [Option("output", HelpText = "Folder for model.npy + model.json (the trained model, at the end), history.csv + curves.png (every epoch) and checkpoint/ (every epoch and on Ctrl-C), created if missing.")]
    public string? Output { get; set; }

    [Option("config", HelpText = "YAML experiment file (like config_exp.yaml): a Train: section (batch_size, learning_rate, reg, epochs, momentum, and any other option under its flag's name) and a Model: section (hidden_size: widths, activation, ...). Flags given on the command line override it.")]
    public string? Config { get; set; }

    [Option("verbose", HelpText = "Also print the kernels per training step and how they are launched (directly, or replayed as one CUDA graph per step, and why not): at small batches a GPU step costs about one launch overhead per direct launch.")]
    public bool Verbose { get; set; }

    [Option("resume", HelpText = "Continue the run whose --output folder (or checkpoint folder) is DIR, with its settings; only --epochs, --device, --verbose and the data (--data or the file flags, when it moved: it must be the same data) may be given too.")]
    public string? Resume { get; set; }

    [Option("init-from", HelpText = "Start from these weights instead of the seeded initialisation (--init, --bias-init): a model.npy (flat float32 vector, the engine's packing) or a .safetensors file (gpu export, or a PyTorch Sequential of Linear layers: 0.weight [out, in], 0.bias, 2.weight, ...) of this network's shape.")]
    public string? InitFrom { get; set; }

    [Option("overwrite", HelpText = "Start afresh in an --output folder that holds an earlier run: once the new run has its data and device, the earlier run's files (checkpoint, model, exports, history, curves, eval) are moved into DIR/.replaced/, deleted when the new run checkpoints its first epoch, and moved back if it diverges, fails or is interrupted before that; a .replaced/ left by a killed process is restored (or, when the new run had checkpointed, deleted) by the next command on the folder. Without it such a folder is refused.")]
    public bool Overwrite { get; set; }

    /// <summary>Flags that say where the data is.</summary>
    static readonly string[] DataFlags = ["--data", "--train-images", "--train-labels", "--test-images", "--test-labels"];

    /// <summary>Flags that may accompany --resume: the rest come from the checkpoint (declared after <see cref="DataFlags"/>, which it uses).</summary>
    static readonly string[] ResumeOverrides = ["--resume", "--epochs", "--device", "--verbose", .. DataFlags];

    /// <summary>
    /// The optimizer settings a resume may lower, and only when its checkpoint is the last good one of a run that
    /// diverged (<see cref="Checkpoint.DivergedName"/>): the rate, and the momentum and L2 penalty that feed the
    /// same step size. The schedule's shape (--schedule, --warmup-epochs) and everything else stay as the run was set up.
    /// </summary>
    static readonly string[] AfterDivergence = ["--lr", "--momentum", "--l2"];

    public int Execute(TextWriter stdout, TextWriter stderr, string[]? args = null, CancellationToken stop = default, bool terminal = false)
    {
        var given = (args ?? []).Where(a => a.StartsWith("--")).Select(a => a.Split('=')[0]).ToHashSet();
        string cmd = Program.Command;
        if (Overwrite && Resume != null) throw new UserError("--overwrite starts a run afresh; it cannot be combined with --resume");
        if (InitFrom != null && Resume != null) throw new UserError("--init-from starts a fresh run from given weights; a resumed run continues from its checkpoint's, so give one or the other");
        if (Overwrite && Output == null) throw new UserError("--overwrite needs --output DIR: it replaces the run in that folder");
        TrainOptions options;
        DataSource source;
        int limit;
        string? outDir = null;
        CheckpointRun? resumedRun = null;
        TrainState? resume = null;
        PreviousRun? replaced = null;
        TrainOptions? fresh = null;
        IReadOnlyList<string>? changes = null;   // settings changed on resuming after a divergence, with the run's earlier ones
        if (Resume == null)   // settings first: bad input creates no output folder
        {
            fresh = new TrainOptions();
            if (Config != null) fresh = ExperimentConfig.Read(Config, grid: false).ApplyTo(fresh, given.Contains);
            fresh = Settings.ApplyTo(fresh);
            fresh.Validate();
        }
        using var folder = Resume != null ? TakeResumeFolder(out outDir) : Output != null ? RunFolder.Take(Output, "gpu train") : null;
        if (folder?.Settled is { } settled) stdout.WriteLine($"note: {settled}");
        if (Resume != null)
        {
            var extra = given.Except(ResumeOverrides).Except(AfterDivergence).FirstOrDefault();
            if (extra != null)
                throw new UserError($"{extra} cannot be changed when resuming: --resume takes its settings from the checkpoint; only --epochs, --device, --verbose and the data's location may be given " +
                    "(and --lr, --momentum, --l2 after a divergence)");
            var loaded = Checkpoint.Read(Resume);
            var lowered = AfterDivergence.Where(given.Contains).ToList();
            var divergence = Checkpoint.DivergenceAfter(loaded.Folder);
            if (lowered.Count > 0 && divergence == null)
                throw new UserError($"{lowered[0]} cannot be changed when resuming {Resume}: its run did not diverge, and a resume continues it exactly as it was set up; " +
                    $"to train on from its weights with other settings, start a new run from them: {cmd} train --init-from {Path.Combine(outDir!, Checkpoint.FolderName, SavedModel.NpyName)} --output NEW_FOLDER {lowered[0]} VALUE");
            if (loaded.Damaged != null)
            {
                string aside = Checkpoint.SetAsideDamaged(outDir!);
                stdout.WriteLine($"note: {loaded.Damaged.Replace("; resume from another checkpoint or start again", "")}; resuming from the older complete checkpoint " +
                    $"(epoch {loaded.State.EpochsDone}{(loaded.State.MidEpoch ? $", step {loaded.State.StepInEpoch}" : "")}) instead, and moved the damaged one to {aside}");
            }
            (resumedRun, resume) = loaded;
            options = Settings.Given("epochs") ? resumedRun.Options with { Epochs = TrainOptions().Epochs } : resumedRun.Options;
            if (lowered.Count > 0)
            {
                var before = options;
                options = Settings.ApplyTo(options);   // only --epochs and these can be given here
                changes = [.. resumedRun.SettingChanges ?? [], .. Changes(before, options, resume, divergence!)];
                foreach (var c in changes.Skip(resumedRun.SettingChanges?.Count ?? 0)) stdout.WriteLine($"setting change: {c}");
            }
            if (resume.EpochsDone >= options.Epochs)
                throw new UserError($"the run in {Resume} has done {resume.EpochsDone} of {options.Epochs} epochs; give --epochs N with N > {resume.EpochsDone} to train further");
            source = DataFlags.Any(given.Contains) ? GivenData() with { PixelRange = resumedRun.Data.PixelRange } : resumedRun.Data;   // the range it trained with
            if (!DataFlags.Any(given.Contains) && source.Missing() is { } gone)
                throw new UserError($"the data this run trained on is not there any more: {gone.Given} (at {gone.Resolved} when it trained); " +
                    "give --data DIR (or --train-images ... as it was given) where the same data is now, to resume");
            limit = resumedRun.Limit;
        }
        else
        {
            options = fresh!;
            source = GivenData();
            limit = Limit;
            if (folder != null)
            {
                outDir = folder.Folder;
                replaced = folder.Previous();
                if (replaced != null && !Overwrite)
                    throw new UserError(replaced.Resumable
                        ? $"{Output} holds {replaced.Description}; resume it with: {cmd} train --resume {Output}, or pass --overwrite to start again there"
                        : $"{Output} holds {replaced.Description}; choose another --output folder, " +
                          (Checkpoint.Exists(outDir) ? $"extend it with: {cmd} train --resume {Output} --epochs N, " : "") + "or pass --overwrite to replace it");
            }
        }
        options.Validate();
        if (limit < 0) throw new UserError($"--limit {limit}: give a whole number >= 0");

        // the streamed path reads uncompressed image files in place (memory-mapped) rather than loading them; a file it cannot map is loaded, with a note
        var data = source.Load(options.DataPath == DataPath.Stream ? note => stdout.WriteLine($"note: {note}") : null);
        data = data.Limited(limit, resumedRun == null ? note => stdout.WriteLine($"note: {note}") : null);
        var fingerprint = DataFingerprint.Of(data);
        if (resumedRun != null) CheckSameData(resumedRun, data, fingerprint, DataFlags.Any(given.Contains));
        using var device = OpenDevice(resumedRun, given.Contains("--device"), stdout);
        if (device.PrecisionNote(options.Precision) is string precisionNote) stdout.WriteLine(precisionNote);
        var spec = MlpSpec.FromHidden(data.Train.Features, options.Hidden, data.Train.Classes, options.Activation, options.Loss);
        stdout.WriteLine($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters)");
        float[]? initial = InitFrom == null ? null : ModelWeights.ReadInitial(InitFrom, spec);
        if (initial != null) stdout.WriteLine($"initial weights: {InitFrom} (instead of --init {Words.Name(options.Init)})");
        int trainImages = options.ValFraction > 0 ? data.Train.Count - (int)Math.Round(options.ValFraction * data.Train.Count) : data.Train.Count;
        if (options.BatchSize > trainImages && trainImages > 0)
        {
            stdout.WriteLine($"note: --batch-size {options.BatchSize} is more than the {trainImages:N0} training images; using {trainImages:N0} (one step per epoch)");
            options = options with { BatchSize = trainImages };
        }
        stdout.WriteLine($"training: {Describe(options)}");
        options = options with { DataPath = Trainer.ChooseDataPath(options.DataPath, device, data) };
        stdout.WriteLine($"data: {data.Folder}, {data.Train.Count:N0} training images ({options.ValFraction * 100:0.#}% held out for validation), " +
            $"{data.Test.Count:N0} test images; {Words.Name(options.DataPath)} data path{InPlace(data, trainImages, options)}; pixels: {data.Train.Scaling}");
        string title = RunFiles.CurvesTitle(spec, data, options);
        if (resume != null)
        {
            stdout.WriteLine($"resuming {Path.Combine(outDir!, Checkpoint.FolderName)}: {resume.EpochsDone} epochs and {resume.StepInEpoch} steps done, " +
                $"continuing to epoch {options.Epochs}");
            if (options.Epochs != resumedRun!.Options.Epochs && options.Schedule == LrSchedule.Cosine)
                stdout.WriteLine($"note: the cosine schedule now spans {options.Epochs} epochs instead of {resumedRun.Options.Epochs}");
            RunFiles.WriteHistory(outDir!, resume.History, title);   // history.csv holds exactly the checkpoint's epochs, never more
        }
        if (replaced != null)
        {
            folder!.MoveRunAside();   // only now, with the data read and the device open: a refused start loses nothing
            stdout.WriteLine($"--overwrite: moved {replaced.Description} aside in {Output}; it is removed when the new run's first epoch is checkpointed, and restored if the new run fails or is interrupted before that");
        }

        var run = new CheckpointRun(spec.Sizes, options, source, limit, data.Train.Count, $"{device.Id} ({device.Name})", fingerprint,
            changes ?? resumedRun?.SettingChanges);
        Divergence? diverged = null;
        var display = ProgressDisplay.For(stdout, terminal, options.BatchSize);
        var control = new TrainControl
        {
            Resume = resume,
            InitialParameters = initial,
            Stop = stop,
            OnStep = display.Step,
            OnCheckpoint = outDir == null ? null : state =>
            {
                SaveCheckpoint(outDir, run, state, title, cmd);
                if (!state.MidEpoch && folder!.HoldsAside) folder.DiscardAside();   // the new run has a whole epoch: the earlier run goes
            },
            OnDiverged = d => diverged = d,
            FaultAdvice = outDir == null ? "no checkpoint (no --output); retry with --device cpu"
                : $"resume from the last checkpoint with: {cmd} train --resume {outDir} --device cpu",
        };
        TrainResult result;
        try
        {
            result = display.Run(() => Trainer.Run(device, data, options, e => display.Line(RunFiles.EpochLine(e, options.Epochs)), control));
        }
        catch (Exception failed) when (folder != null && folder.HoldsAside)
        {
            // diverged, refused, crashed or interrupted before its first epoch: the earlier run comes back
            string back = $"the earlier run in {outDir} is restored (the new run failed before its first epoch was checkpointed)";
            if (failed is TrainingInterrupted)
            {
                folder.RestoreAside();
                stderr.WriteLine($"interrupted before the new run's first epoch ended; {back}");
                return 130;
            }
            if (OverwrittenRun.Restore(folder, failed, back, stderr) is UserError e) throw e;
            throw;
        }
        catch (UserError e) when (e.ExitCode == 3 && diverged != null && outDir != null && Checkpoint.Exists(outDir))
        {
            Checkpoint.RecordDivergence(outDir, diverged);   // the kept checkpoint may now be resumed with lower settings
            throw new UserError($"{e.Message}; continue from the checkpoint in {outDir} with a lower rate: {cmd} train --resume {outDir} --lr {diverged.SuggestedRate}", 3);
        }
        catch (TrainingInterrupted stopped)
        {
            var s = stopped.State;
            string where = s.MidEpoch ? $"epoch {s.EpochsDone + 1}, step {s.StepInEpoch} of {s.StepsPerEpoch}" : $"the end of epoch {s.EpochsDone}";
            stderr.WriteLine(outDir == null
                ? $"interrupted at {where}; no checkpoint written (give --output DIR to be able to resume)"
                : $"interrupted at {where}; checkpoint written to {Path.Combine(outDir, Checkpoint.FolderName)}; continue with: {cmd} train --resume {outDir}");
            return 130;
        }
        if (result.StoppedEarlyAtBestEpoch is int bestEpoch)
            display.Line($"early stopping: no better validation {Words.Name(options.StopOn)} for {options.Patience} epochs; restored the weights of epoch {bestEpoch}");
        display.Line($"test accuracy {result.Test.Accuracy:F4}, test loss {result.Test.Loss:F4} ({result.Test.Count:N0} images); " +
            $"{result.TrainCount:N0} train / {result.ValCount:N0} validation images, {result.Seconds:F1} s in all");
        if (result.Warning is string warning) display.Line($"warning: {warning}");   // exit code stays 0; model.json keeps it (warnings)
        if (Verbose)
        {
            stdout.WriteLine($"kernel launches: {result.LaunchesPerStep:0.##} per training step on {device.Id} ({device.Profile.Gemm.Describe(device.Profile)} products; evaluation not counted)");
            stdout.WriteLine($"graph replays: {result.ReplaysPerStep:0.##} per training step; {result.StepMode}");
            foreach (var plan in device.Profile.Gemm.Plans(device.Profile, DeviceMlp.Products(result.Spec, options.BatchSize)))
                stdout.WriteLine($"plan: {plan}");
        }
        if (outDir != null)
        {
            RunFiles.WriteModel(outDir, device, data, source, limit, options, result, initFrom: InitFrom == null ? null : Path.GetFullPath(InitFrom));
            stdout.WriteLine($"wrote {Path.Combine(outDir, SavedModel.NpyName)}, {SavedModel.JsonName}, {RunFiles.HistoryName}, {RunFiles.CurvesName} and {Checkpoint.FolderName}/ in {outDir}");
        }
        return 0;
    }

    /// <summary>"epoch 1, step 3: lr 5 -> 0.1 after divergence (in epoch 2, step 4 of 9: the loss became NaN)", one per setting that <paramref name="after"/> changed.</summary>
    static IEnumerable<string> Changes(TrainOptions before, TrainOptions after, TrainState at, Divergence d)
    {
        string where = $"epoch {at.EpochsDone}{(at.MidEpoch ? $", step {at.StepInEpoch}" : "")}";
        foreach (var (name, was, now) in new[] { ("lr", before.LearningRate, after.LearningRate), ("momentum", before.Momentum, after.Momentum), ("l2", before.L2, after.L2) })
            if (was != now) yield return $"{where}: {name} {was} -> {now} after divergence ({d.What})";
    }

    /// <summary>", training images read in place ..." when the training set is memory-mapped: what the shuffle of its <paramref name="trainImages"/> training rows is (Trainer's rule).</summary>
    static string InPlace(DataPair data, int trainImages, TrainOptions o)
    {
        if (data.Train.Mapped == null) return "";
        var blocks = BlockShuffle.ForBuffer((long)o.StreamBuffer << 20, data.Train.Features);
        return $", training images read in place from {data.Train.Mapped.Path} ({data.Train.Bytes / 1e6:N0} MB; " + (blocks.Fits(trainImages)
            ? $"they fit the {o.StreamBuffer} MB --stream-buffer: read once, fully shuffled)"
            : $"more than the {o.StreamBuffer} MB --stream-buffer: each epoch shuffles blocks of {blocks.BlockRows:N0} rows, and rows within {blocks.BufferBlocks:N0} blocks at a time)");
    }

    /// <summary>The output folder of --resume (DIR, or the folder above when DIR is the checkpoint folder itself), taken for this run.</summary>
    RunFolder TakeResumeFolder(out string? outDir)
    {
        if (!Directory.Exists(Resume)) throw new UserError($"--resume {Resume}: folder not found; give the --output folder of an earlier run");
        bool checkpointItself = File.Exists(Path.Combine(Resume!, "state.json"));
        outDir = checkpointItself ? Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(Resume!)))! : Resume!;
        var none = new UserError($"--resume {Resume}: no checkpoint there (no {Checkpoint.FolderName}/state.json); give the --output folder of an earlier run");
        if (!checkpointItself && !Checkpoint.Exists(outDir) && !Directory.Exists(Path.Combine(outDir, RunFolder.AsideName))) throw none;
        var taken = RunFolder.Take(outDir, "gpu train --resume");   // restores a run left aside by a killed --overwrite
        if (!checkpointItself && !Checkpoint.Exists(taken.Folder)) { taken.Dispose(); throw none; }
        outDir = taken.Folder;
        return taken;
    }

    /// <summary>The data the flags name: explicit files, or the --data folder.</summary>
    DataSource GivenData() => (TrainImages != null || TestImages != null || TrainLabels != null || TestLabels != null
        ? DataSource.OfFiles(TrainImages ?? throw new UserError("--test-images needs --train-images too"), TrainLabels,
            TestImages ?? throw new UserError("--train-images needs --test-images too"), TestLabels)
        : DataSource.OfFolder(Data)) with { PixelRange = PixelRanges.Parse(PixelRange) };

    /// <summary>A resumed run continues only on the data it trained on: same inputs, classes and images, and, where the checkpoint has one, the same fingerprint.</summary>
    void CheckSameData(CheckpointRun run, DataPair data, DataFingerprint now, bool moved)
    {
        if (data.Train.Features != run.Sizes[0] || data.Train.Classes != run.Sizes[^1])
            throw new UserError($"the checkpoint in {Resume} was trained on {run.Sizes[0]} inputs and {run.Sizes[^1]} classes, " +
                $"but {data.Folder} has {data.Train.Features} inputs and {data.Train.Classes} classes; use the data it was trained on");
        if (data.Train.Count != run.TrainImages)
            throw new UserError($"the checkpoint in {Resume} was trained on {run.TrainImages:N0} images, but {data.Folder} now gives {data.Train.Count:N0}: the data changed");
        if (run.Fingerprint == null)
        {
            if (moved) throw new UserError($"the checkpoint in {Resume} was written by an earlier version that kept no fingerprint of its data, so data elsewhere cannot be checked against it; " +
                $"resume without --data (it trained on {run.Data.Describe()})");
            return;
        }
        if (now != run.Fingerprint)
            throw new UserError($"{data.Folder} is not the data the run in {Resume} trained on: it holds {now.Describe()}, the checkpoint's data {run.Fingerprint.Describe()}; " +
                "give the data it was trained on");
    }

    /// <summary>The end-of-epoch (or interrupt) checkpoint, then history.csv and curves.png from the checkpoint's own history, so the history never runs ahead of it.</summary>
    static void SaveCheckpoint(string outDir, CheckpointRun run, TrainState state, string title, string cmd)
    {
        try { Checkpoint.Write(outDir, run, state); }
        catch (UserError e)
        {
            throw new UserError($"{e.Message}; free space or fix the folder, then " +
                (Checkpoint.Exists(outDir) ? $"continue with: {cmd} train --resume {outDir}" : $"start again"));
        }
        RunFiles.WriteHistory(outDir, state.History, title);
    }

    /// <summary>
    /// The device to train on: --device; when resuming without it, the device the run was trained on (each
    /// device's kernels round differently, so only the same device continues the run bit for bit), or, when
    /// that device is not here, auto, saying so.
    /// </summary>
    ComputeDevice OpenDevice(CheckpointRun? resumed, bool deviceGiven, TextWriter stdout)
    {
        if (resumed == null || deviceGiven)
        {
            var chosen = ComputeDevice.Open(Device);
            stdout.WriteLine($"device: {chosen.Describe()}");
            return chosen;
        }
        string id = resumed.Device.Split(' ')[0];
        try
        {
            var same = ComputeDevice.Open(id);
            stdout.WriteLine($"device: {same.Id} ({same.Name}), the device the run was trained on (--device chooses another)");
            return same;
        }
        catch (UserError e)
        {
            var other = ComputeDevice.Open("auto");
            stdout.WriteLine($"device: {other.Describe()}; the run was trained on {resumed.Device}, which is not here ({e.Message}), so it continues close to, not bit for bit like, an uninterrupted run");
            return other;
        }
    }
}
