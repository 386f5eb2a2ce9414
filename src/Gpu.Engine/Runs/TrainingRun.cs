using System.Text.Json.Nodes;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Engine.Runs;

/// <summary>
/// A fresh run: its settings; where its data is (<c>Data</c>; <c>Loaded</c>: already read, by the library's <c>ImageData.Load</c>,
/// else read here as the run's data path needs) and the first N training images only (<c>Limit</c>, 0: all); what it keeps (the
/// <c>Output</c> folder, which <c>Overwrite</c> lets it replace); and starting weights instead of the initialiser (<c>InitFrom</c>,
/// a model.npy or .safetensors file).
/// </summary>
internal sealed record FreshRun(TrainOptions Options, DataSource Data, int Limit, DataPair? Loaded = null, string? Output = null,
    bool Overwrite = false, string? InitFrom = null);

/// <summary>
/// A resumed run: the output folder (or its checkpoint folder) of an earlier run, and what may differ from it: more epochs,
/// another device (null: the one the run trained on, or auto when that one is not here), the same data found elsewhere
/// (null: where it was), and after a divergence a lower rate, momentum or L2 penalty.
/// </summary>
internal sealed record ResumedRun(string Folder, int? Epochs = null, string? Device = null, DataSource? MovedData = null,
    float? LearningRate = null, float? Momentum = null, float? L2 = null)
{
    /// <summary>The settings given that only a resume after a divergence may change, by flag name.</summary>
    public IEnumerable<string> Lowered =>
        new[] { ("--lr", LearningRate), ("--momentum", Momentum), ("--l2", L2) }.Where(s => s.Item2 != null).Select(s => s.Item1);
}

/// <summary>Who hears about a run: its lines (the ones <c>gpu train</c> prints), every epoch and step, the stop request, and how the messages name the program.</summary>
internal sealed record RunHooks(Action<string> Say, Action<EpochStats, int>? Epoch = null, Action<StepProgress>? Step = null,
    CancellationToken Stop = default, bool Verbose = false, string Command = "gpu");

/// <summary>A finished run: the result, what model.json says of it, and the folder it was saved in (null: none).</summary>
internal sealed record FinishedRun(TrainResult Result, JsonObject Info, string? Folder);

/// <summary>
/// One training run from settings to saved model, the one orchestration of training (<c>gpu train</c> and the library's
/// <c>Network.Train</c> and <c>Network.Resume</c> both run it): the output folder taken (one writer) and an earlier run there
/// refused, resumed or moved aside; the data read and checked against a resumed run's; the device; the lines that say what
/// runs; the trainer with a checkpoint every epoch; and the ends: the model written, a divergence recorded so that a resume
/// may lower the rate, an interruption or failure that restores a run moved aside. Errors are <see cref="UserError"/>s;
/// an interruption is an <see cref="OperationCanceledException"/> whose message is the line to print.
/// </summary>
internal sealed class TrainingRun
{
    readonly RunHooks hooks;
    TrainOptions options;
    string? outDir;
    string? shownOut;   // the output folder as the caller named it
    RunFolder? folder;
    CheckpointRun? resumedRun;
    TrainState? resume;
    IReadOnlyList<string>? changes;   // settings changed on resuming after a divergence, with the run's earlier ones

    TrainingRun(RunHooks hooks, TrainOptions options) { this.hooks = hooks; this.options = options; }

    string Cmd => hooks.Command;

    /// <summary>Trains a fresh run on <paramref name="device"/> (the caller's: not disposed here).</summary>
    public static FinishedRun Start(ComputeDevice device, FreshRun run, RunHooks hooks)
    {
        run.Options.Validate();   // settings first: bad input creates no output folder
        if (run.Limit < 0) throw new UserError($"--limit {run.Limit}: give a whole number >= 0");
        if (run.Overwrite && run.Output == null) throw new UserError("--overwrite needs --output DIR: it replaces the run in that folder");
        var r = new TrainingRun(hooks, run.Options);
        using (r.folder = run.Output == null ? null : RunFolder.Take(run.Output, "gpu train"))
        {
            PreviousRun? replaced = null;
            if (r.folder != null)
            {
                if (r.folder.Settled is { } settled) hooks.Say($"note: {settled}");
                r.outDir = r.folder.Folder;
                r.shownOut = run.Output;
                replaced = r.folder.Previous();
                if (replaced != null && !run.Overwrite)
                    throw new UserError(replaced.Resumable
                        ? $"{run.Output} holds {replaced.Description}; resume it with: {r.Cmd} train --resume {run.Output}, or pass --overwrite to start again there"
                        : $"{run.Output} holds {replaced.Description}; choose another --output folder, " +
                          (Checkpoint.Exists(r.outDir) ? $"extend it with: {r.Cmd} train --resume {run.Output} --epochs N, " : "") + "or pass --overwrite to replace it");
            }
            var data = (run.Loaded ?? r.Load(run.Data)).Limited(run.Limit, note => hooks.Say($"note: {note}"));
            hooks.Say($"device: {device.Describe()}");
            return r.Train(device, data, DataFingerprint.Of(data), run.Data, run.Limit, run.InitFrom, replaced);
        }
    }

    /// <summary>Continues the run in <paramref name="run"/>'s folder from its checkpoint, on the device it names (opened and closed here).</summary>
    public static FinishedRun Resume(ResumedRun run, RunHooks hooks)
    {
        var r = new TrainingRun(hooks, new TrainOptions());
        using (r.folder = r.TakeResumeFolder(run.Folder))
        {
            if (r.folder.Settled is { } settled) hooks.Say($"note: {settled}");
            var loaded = Checkpoint.Read(run.Folder);
            var lowered = run.Lowered.ToList();
            var divergence = Checkpoint.DivergenceAfter(loaded.Folder);
            if (lowered.Count > 0 && divergence == null)
                throw new UserError($"{lowered[0]} cannot be changed when resuming {run.Folder}: its run did not diverge, and a resume continues it exactly as it was set up; " +
                    $"to train on from its weights with other settings, start a new run from them: {r.Cmd} train --init-from {Path.Combine(r.outDir!, Checkpoint.FolderName, SavedModel.NpyName)} --output NEW_FOLDER {lowered[0]} VALUE");
            if (loaded.Damaged != null)
            {
                string aside = Checkpoint.SetAsideDamaged(r.outDir!);
                hooks.Say($"note: {loaded.Damaged.Replace("; resume from another checkpoint or start again", "")}; resuming from the older complete checkpoint " +
                    $"(epoch {loaded.State.EpochsDone}{(loaded.State.MidEpoch ? $", step {loaded.State.StepInEpoch}" : "")}) instead, and moved the damaged one to {aside}");
            }
            (r.resumedRun, r.resume) = loaded;
            var before = r.resumedRun.Options with { Epochs = run.Epochs ?? r.resumedRun.Options.Epochs };
            r.options = before with
            {
                LearningRate = run.LearningRate ?? before.LearningRate, Momentum = run.Momentum ?? before.Momentum, L2 = run.L2 ?? before.L2,
            };
            r.options.Validate();
            if (lowered.Count > 0)
            {
                r.changes = [.. r.resumedRun.SettingChanges ?? [], .. Changes(before, r.options, r.resume, divergence!)];
                foreach (var c in r.changes.Skip(r.resumedRun.SettingChanges?.Count ?? 0)) hooks.Say($"setting change: {c}");
            }
            if (r.resume.EpochsDone >= r.options.Epochs)
                throw new UserError($"the run in {run.Folder} has done {r.resume.EpochsDone} of {r.options.Epochs} epochs; give --epochs N with N > {r.resume.EpochsDone} to train further");
            var source = run.MovedData is { } moved ? moved with { PixelRange = r.resumedRun.Data.PixelRange } : r.resumedRun.Data;   // the range it trained with
            if (run.MovedData == null && source.Missing() is { } gone)
                throw new UserError($"the data this run trained on is not there any more: {gone.Given} (at {gone.Resolved} when it trained); " +
                    "give --data DIR (or --train-images ... as it was given) where the same data is now, to resume");
            var data = r.Load(source).Limited(r.resumedRun.Limit, null);
            var fingerprint = DataFingerprint.Of(data);
            r.CheckSameData(run.Folder, data, fingerprint, moved: run.MovedData != null);
            using var device = r.OpenDevice(run.Device);
            return r.Train(device, data, fingerprint, source, r.resumedRun.Limit, initFrom: null, replaced: null);
        }
    }

    /// <summary>The data; the streamed path reads uncompressed image files in place (memory-mapped) rather than loading them, and a file it cannot map is loaded, with a note.</summary>
    DataPair Load(DataSource source) => source.Load(options.DataPath == DataPath.Stream ? note => hooks.Say($"note: {note}") : null);

    /// <summary>The part of a run that fresh and resumed runs share: from the network's line to the saved model.</summary>
    FinishedRun Train(ComputeDevice device, DataPair data, DataFingerprint fingerprint, DataSource source, int limit, string? initFrom, PreviousRun? replaced)
    {
        var say = hooks.Say;
        if (device.PrecisionNote(options.Precision) is string precisionNote) say(precisionNote);
        var spec = MlpSpec.FromHidden(data.Train.Features, options.Hidden, data.Train.Classes, options.Activation, options.Loss);
        say($"network: {spec.Describe()} ({spec.ParameterCount:N0} parameters)");
        float[]? initial = initFrom == null ? null : ModelWeights.ReadInitial(initFrom, spec);
        if (initial != null) say($"initial weights: {initFrom} (instead of --init {Words.Name(options.Init)})");
        int trainImages = options.ValFraction > 0 ? data.Train.Count - (int)Math.Round(options.ValFraction * data.Train.Count) : data.Train.Count;
        if (options.BatchSize > trainImages && trainImages > 0)
        {
            say($"note: --batch-size {options.BatchSize} is more than the {trainImages:N0} training images; using {trainImages:N0} (one step per epoch)");
            options = options with { BatchSize = trainImages };
        }
        say($"training: {Describe(options)}");
        options = options with { DataPath = Trainer.ChooseDataPath(options.DataPath, device, data) };
        say($"data: {data.Folder}, {data.Train.Count:N0} training images ({options.ValFraction * 100:0.#}% held out for validation), " +
            $"{data.Test.Count:N0} test images; {Words.Name(options.DataPath)} data path{InPlace(data, trainImages, options)}; pixels: {data.Train.Scaling}");
        string title = RunFiles.CurvesTitle(spec, data, options);
        if (resume != null)
        {
            say($"resuming {Path.Combine(outDir!, Checkpoint.FolderName)}: {resume.EpochsDone} epochs and {resume.StepInEpoch} steps done, " +
                $"continuing to epoch {options.Epochs}");
            if (options.Epochs != resumedRun!.Options.Epochs && options.Schedule == LrSchedule.Cosine)
                say($"note: the cosine schedule now spans {options.Epochs} epochs instead of {resumedRun.Options.Epochs}");
            RunFiles.WriteHistory(outDir!, resume.History, title);   // history.csv holds exactly the checkpoint's epochs, never more
        }
        if (replaced != null)
        {
            folder!.MoveRunAside();   // only now, with the data read and the device open: a refused start loses nothing
            say($"--overwrite: moved {replaced.Description} aside in {shownOut}; it is removed when the new run's first epoch is checkpointed, and restored if the new run fails or is interrupted before that");
        }

        var run = new CheckpointRun(spec.Sizes, options, source, limit, data.Train.Count, $"{device.Id} ({device.Name})", fingerprint,
            changes ?? resumedRun?.SettingChanges);
        Divergence? diverged = null;
        var control = new TrainControl
        {
            Resume = resume,
            InitialParameters = initial,
            Stop = hooks.Stop,
            OnStep = hooks.Step,
            OnCheckpoint = outDir == null ? null : state =>
            {
                SaveCheckpoint(run, state, title);
                if (!state.MidEpoch && folder!.HoldsAside) folder.DiscardAside();   // the new run has a whole epoch: the earlier run goes
            },
            OnDiverged = d => diverged = d,
            FaultAdvice = outDir == null ? "no checkpoint (no --output); retry with --device cpu"
                : $"resume from the last checkpoint with: {Cmd} train --resume {outDir} --device cpu",
        };
        TrainResult result;
        try
        {
            int epochs = options.Epochs;
            result = Trainer.Run(device, data, options, hooks.Epoch == null ? null : e => hooks.Epoch(e, epochs), control);
        }
        catch (Exception failed) when (folder != null && folder.HoldsAside)
        {
            // diverged, refused, crashed or interrupted before its first epoch: the earlier run comes back
            string back = $"the earlier run in {outDir} is restored (the new run failed before its first epoch was checkpointed)";
            folder.RestoreAside();
            if (failed is TrainingInterrupted stopped)
                throw new OperationCanceledException($"interrupted before the new run's first epoch ended; {back}", stopped, hooks.Stop);
            if (failed is UserError e) throw new UserError($"{e.Message}; {back}", e.ExitCode);
            say(back);
            throw;
        }
        catch (UserError e) when (e.ExitCode == 3 && diverged != null && outDir != null && Checkpoint.Exists(outDir))
        {
            Checkpoint.RecordDivergence(outDir, diverged);   // the kept checkpoint may now be resumed with lower settings
            throw new UserError($"{e.Message}; continue from the checkpoint in {outDir} with a lower rate: {Cmd} train --resume {outDir} --lr {diverged.SuggestedRate}", 3);
        }
        catch (TrainingInterrupted stopped)
        {
            var s = stopped.State;
            string where = s.MidEpoch ? $"epoch {s.EpochsDone + 1}, step {s.StepInEpoch} of {s.StepsPerEpoch}" : $"the end of epoch {s.EpochsDone}";
            throw new OperationCanceledException(outDir == null
                ? $"interrupted at {where}; no checkpoint written (give --output DIR to be able to resume)"
                : $"interrupted at {where}; checkpoint written to {Path.Combine(outDir, Checkpoint.FolderName)}; continue with: {Cmd} train --resume {outDir}", stopped, hooks.Stop);
        }
        if (result.StoppedEarlyAtBestEpoch is int bestEpoch)
            say($"early stopping: no better validation {Words.Name(options.StopOn)} for {options.Patience} epochs; restored the weights of epoch {bestEpoch}");
        say($"test accuracy {result.Test.Accuracy:F4}, test loss {result.Test.Loss:F4} ({result.Test.Count:N0} images); " +
            $"{result.TrainCount:N0} train / {result.ValCount:N0} validation images, {result.Seconds:F1} s in all");
        if (result.Warning is string warning) say($"warning: {warning}");   // no error: model.json keeps it (warnings)
        if (hooks.Verbose)
        {
            say($"kernel launches: {result.LaunchesPerStep:0.##} per training step on {device.Id} ({device.Profile.Gemm.Describe(device.Profile)} products; evaluation not counted)");
            say($"graph replays: {result.ReplaysPerStep:0.##} per training step; {result.StepMode}");
            foreach (var plan in device.Profile.Gemm.Plans(device.Profile, DeviceMlp.Products(result.Spec, options.BatchSize)))
                say($"plan: {plan}");
        }
        var info = RunFiles.ModelInfo(device, data, source, limit, options, result, initFrom == null ? null : Path.GetFullPath(initFrom));
        if (outDir != null)
        {
            SavedModel.Write(outDir, result.Spec, result.Parameters, info);
            say($"wrote {Path.Combine(outDir, SavedModel.NpyName)}, {SavedModel.JsonName}, {RunFiles.HistoryName}, {RunFiles.CurvesName} and {Checkpoint.FolderName}/ in {outDir}");
        }
        return new FinishedRun(result, info, outDir);
    }

    /// <summary>"batch 128, lr 0.05, sgd momentum 0.9, l2 0.0001, cosine schedule, seed 1" (", tf32 products" when not fp32)</summary>
    public static string Describe(TrainOptions o) =>
        $"batch {o.BatchSize}, lr {o.LearningRate}, " +
        $"{Words.Name(o.Optimizer)}{(o.Optimizer == OptimizerKind.Sgd ? $" momentum {o.Momentum}" : "")}, l2 {o.L2}, " +
        $"{Words.Name(o.Schedule)} schedule{(o.WarmupEpochs > 0 ? $" after {o.WarmupEpochs} warm-up epochs" : "")}, seed {o.Seed}" +
        (o.Precision == Precision.Fp32 ? "" : $", {Words.Name(o.Precision)} products");

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

    /// <summary>The output folder of a resume (<paramref name="given"/>, or the folder above when it is the checkpoint folder itself), taken for this run.</summary>
    RunFolder TakeResumeFolder(string given)
    {
        if (!Directory.Exists(given)) throw new UserError($"--resume {given}: folder not found; give the --output folder of an earlier run");
        bool checkpointItself = File.Exists(Path.Combine(given, "state.json"));
        outDir = checkpointItself ? Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(given)))! : given;
        var none = new UserError($"--resume {given}: no checkpoint there (no {Checkpoint.FolderName}/state.json); give the --output folder of an earlier run");
        if (!checkpointItself && !Checkpoint.Exists(outDir) && !Directory.Exists(Path.Combine(outDir, RunFolder.AsideName))) throw none;
        var taken = RunFolder.Take(outDir, "gpu train --resume");   // restores a run left aside by a killed --overwrite
        if (!checkpointItself && !Checkpoint.Exists(taken.Folder)) { taken.Dispose(); throw none; }
        outDir = taken.Folder;
        return taken;
    }

    /// <summary>A resumed run continues only on the data it trained on: same inputs, classes and images, and, where the checkpoint has one, the same fingerprint.</summary>
    void CheckSameData(string given, DataPair data, DataFingerprint now, bool moved)
    {
        var run = resumedRun!;
        if (data.Train.Features != run.Sizes[0] || data.Train.Classes != run.Sizes[^1])
            throw new UserError($"the checkpoint in {given} was trained on {run.Sizes[0]} inputs and {run.Sizes[^1]} classes, " +
                $"but {data.Folder} has {data.Train.Features} inputs and {data.Train.Classes} classes; use the data it was trained on");
        if (data.Train.Count != run.TrainImages)
            throw new UserError($"the checkpoint in {given} was trained on {run.TrainImages:N0} images, but {data.Folder} now gives {data.Train.Count:N0}: the data changed");
        if (run.Fingerprint == null)
        {
            if (moved) throw new UserError($"the checkpoint in {given} was written by an earlier version that kept no fingerprint of its data, so data elsewhere cannot be checked against it; " +
                $"resume without --data (it trained on {run.Data.Describe()})");
            return;
        }
        if (now != run.Fingerprint)
            throw new UserError($"{data.Folder} is not the data the run in {given} trained on: it holds {now.Describe()}, the checkpoint's data {run.Fingerprint.Describe()}; " +
                "give the data it was trained on");
    }

    /// <summary>The end-of-epoch (or interrupt) checkpoint, then history.csv and curves.png from the checkpoint's own history, so the history never runs ahead of it.</summary>
    void SaveCheckpoint(CheckpointRun run, TrainState state, string title)
    {
        try { Checkpoint.Write(outDir!, run, state); }
        catch (UserError e)
        {
            throw new UserError($"{e.Message}; free space or fix the folder, then " +
                (Checkpoint.Exists(outDir!) ? $"continue with: {Cmd} train --resume {outDir}" : $"start again"));
        }
        RunFiles.WriteHistory(outDir!, state.History, title);
    }

    /// <summary>
    /// The device to continue on: <paramref name="given"/>; without it, the device the run was trained on (each
    /// device's kernels round differently, so only the same device continues the run bit for bit), or, when
    /// that device is not here, auto, saying so.
    /// </summary>
    ComputeDevice OpenDevice(string? given)
    {
        if (given != null)
        {
            var chosen = ComputeDevice.Open(given);
            hooks.Say($"device: {chosen.Describe()}");
            return chosen;
        }
        string id = resumedRun!.Device.Split(' ')[0];
        try
        {
            var same = ComputeDevice.Open(id);
            hooks.Say($"device: {same.Id} ({same.Name}), the device the run was trained on (--device chooses another)");
            return same;
        }
        catch (UserError e)
        {
            var other = ComputeDevice.Open("auto");
            hooks.Say($"device: {other.Describe()}; the run was trained on {resumedRun.Device}, which is not here ({e.Message}), so it continues close to, not bit for bit like, an uninterrupted run");
            return other;
        }
    }
}
