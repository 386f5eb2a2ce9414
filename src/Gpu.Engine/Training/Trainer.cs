using System.Diagnostics;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Kernels;

namespace Gpu.Engine.Training;

/// <summary>
/// The training loop. With the resident data path the dataset is uploaded once as bytes, every epoch
/// ships one permutation and each step gathers its batch on the device; with the streamed path a
/// background task fills page-locked buffers that are copied asynchronously. Each step then runs
/// forward, backward and the fused update. Inside an epoch the host waits for the device only to stay
/// about a quarter second of work ahead of it (<see cref="StepPacer"/>: a stop request is answered after the
/// current step, not the queued epoch) and for one short read of the divergence record every few seconds:
/// loss and accuracy are summed on the device and read once at the end of the epoch.
/// </summary>
internal static class Trainer
{
    public static TrainResult Run(ComputeDevice device, DataPair data, TrainOptions o, Action<EpochStats>? onEpoch = null, TrainControl? control = null)
    {
        var at = new FaultSite();
        try { return Run(device, data, o, onEpoch, control, at); }
        catch (OutOfMemoryException)
        {
            // the host's memory, past what the memory budget foresaw (other processes took some): not a device fault, and --device cpu would not help
            throw new UserError($"out of memory during {at.Op} (epoch {at.Epoch}, step {at.Step}); the last checkpoint is kept; free memory or use a smaller --layers or --batch-size");
        }
        catch (Exception e) when (e is not (UserError or TrainingInterrupted or OperationCanceledException or ArgumentException))
        {
            // a kernel launch or device failure: one line naming the device and the operation; the last checkpoint stays valid
            throw device.Fault($"during {at.Op} (epoch {at.Epoch}, step {at.Step})", e, control?.FaultAdvice ?? TrainControl.DefaultFaultAdvice);
        }
    }

    sealed class FaultSite { public string Op = "setup"; public int Epoch, Step; }

    static TrainResult Run(ComputeDevice device, DataPair data, TrainOptions o, Action<EpochStats>? onEpoch, TrainControl? control, FaultSite at)
    {
        o.Validate();
        var total = Stopwatch.StartNew();
        var (trainSet, valSet) = data.Train.Split(o.ValFraction, o.Seed);
        if (o.BatchSize > trainSet.Count) o = o with { BatchSize = trainSet.Count };   // the same single batch per epoch, without the memory of a larger one
        var spec = MlpSpec.FromHidden(trainSet.Features, o.Hidden, trainSet.Classes, o.Activation, o.Loss);
        var kernels = KernelSet.For(device, device.ProfileFor(o.Precision));   // the products of o.Precision (GemmFamilies.For)
        int evalRows = Math.Min(o.EvalBatchSize, Math.Max(data.Test.Count, valSet?.Count ?? 0));
        int maxRows = Math.Max(o.BatchSize, evalRows);
        var path = ChooseDataPath(o.DataPath, device, data);
        long resident = path == DataPath.Resident ? ResidentBytes(data) : 0;
        bool checkpoints = control?.OnCheckpoint != null;
        // a checkpoint's optimizer state (two vectors) is encoded whole in one byte array; above 2 GiB it could not be written
        if (checkpoints && 8L * spec.ParameterCount + 256 > Array.MaxLength)
            throw new UserError($"the network {spec} has {spec.ParameterCount:N0} parameters; this version writes checkpoints of at most " +
                $"{(Array.MaxLength - 256) / 8:N0} (its optimizer state, two vectors, in one file under 2 GiB): train it without --output, or use smaller --layers");
        MemoryBudget.For(spec, o, maxRows, checkpoints, resident).Check(device.Profile, device.Id, spec, o.BatchSize, MemoryBudget.HostAvailable(),
            b => MemoryBudget.For(spec, o, Math.Max(b, evalRows), checkpoints, resident));   // before any allocation: a run too large is one line, not the OOM killer

        using var model = new DeviceMlp(kernels, spec, maxRows);
        var resume = control?.Resume;
        if (resume == null && control?.InitialParameters is { } given && given.Length != spec.ParameterCount)
            throw new ArgumentException($"{given.Length} initial parameters for the network {spec} ({spec.ParameterCount})");
        model.SetParameters(resume?.Parameters ?? control?.InitialParameters ?? spec.Initialize(o.Seed, o.BiasInit, o.Init));
        // a training set read in place from its file: block-shuffled epochs within a buffer of --stream-buffer MB (the full permutation when it fits)
        var blocks = path == DataPath.Stream && trainSet.Mapped != null ? BlockShuffle.ForBuffer((long)o.StreamBuffer << 20, trainSet.Features) : null;
        var scheduler = new MinibatchScheduler(trainSet.Count, o.BatchSize, o.Seed, blocks);
        int trainBlocks = blocks == null ? 2 : (int)Math.Min(blocks.BufferBlocks, (trainSet.Count + (long)blocks.BlockRows - 1) / blocks.BlockRows);
        using var dTrain = OpenSource(path, kernels, trainSet, o.BatchSize, trainBlocks);
        using var dVal = valSet == null ? null : OpenSource(path, kernels, valSet, maxRows);
        using var dTest = control?.EvaluateTest == false ? null : OpenSource(path, kernels, data.Test, maxRows);
        using var stepper = new TrainingStep(kernels, model, dTrain, o);

        if (resume != null) ApplyResume(resume, model, spec, scheduler, o);
        var history = new List<EpochStats>(resume?.History ?? []);
        double trainSeconds = 0, trained = 0;
        var nextDivergenceCheck = control?.DivergenceCheckInterval ?? TimeSpan.FromSeconds(5);
        long step = resume?.GlobalStep ?? 0, totalSteps = (long)scheduler.StepsPerEpoch * o.Epochs;
        float[]? best = resume?.Best;
        int bestEpoch = resume?.BestEpoch ?? 0;
        bool stopEarly = false;
        if (step == 0) RecordParameters(control, model, 0);
        for (int epoch = (resume?.EpochsDone ?? 0) + 1; epoch <= o.Epochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            int s = epoch == (resume?.EpochsDone ?? 0) + 1 ? resume?.StepInEpoch ?? 0 : 0;   // steps of this epoch already done
            double epochRows = scheduler.Batches(fromStep: s).Sum(b => b.Rows);   // rows this run trains on in this epoch
            int e = epoch;
            (at.Op, at.Epoch, at.Step) = ("a training step", e, s + 1);
            step = TrainEpoch(stepper, scheduler, epoch, o, step, totalSteps, startStep: s, afterStep: (done, globalStep) =>
            {
                control?.OnStep?.Invoke(new StepProgress(e, o.Epochs, done, scheduler.StepsPerEpoch, globalStep, totalSteps, o.BatchSize));
                RecordParameters(control, model, globalStep);
                at.Step = done + 1;   // the step about to run
                if (control?.Stop.IsCancellationRequested == true && done < scheduler.StepsPerEpoch)
                    Interrupt(control, model, o, scheduler, history, e, done, globalStep, at, (best, bestEpoch));
                if (total.Elapsed >= nextDivergenceCheck)   // a few reads a minute, never per step
                {
                    nextDivergenceCheck = total.Elapsed + (control?.DivergenceCheckInterval ?? TimeSpan.FromSeconds(5));
                    ThrowIfDiverged(model, o, scheduler, model.PeekMetrics().LossSum, RowsDone(done, o, trainSet), e, history, control);
                }
            });
            at.Op = "reading the epoch's metrics";
            var (lossSum, correct) = model.TakeMetrics();   // the epoch's synchronisation (besides the divergence reads every few seconds)
            double seconds = sw.Elapsed.TotalSeconds;
            trainSeconds += seconds;
            trained += epochRows;
            double trainLoss = lossSum / trainSet.Count;
            ThrowIfDiverged(model, o, scheduler, lossSum, trainSet.Count, epoch, history, control);   // before the checkpoint: only a sane state is kept

            at.Op = "validation";
            var ev = Stopwatch.StartNew();
            var val = dVal == null ? null : Evaluate(model, dVal, o.EvalBatchSize);
            var stats = new EpochStats(epoch, trainLoss, (double)correct / trainSet.Count, val?.Loss, val?.Accuracy,
                seconds, epochRows / seconds, ev.Elapsed.TotalSeconds);
            history.Add(stats);
            onEpoch?.Invoke(stats);
            if (o.Patience > 0)
            {
                if (bestEpoch == 0 || Score(o, stats) > Score(o, history[bestEpoch - 1])) { best = model.GetParameters(); bestEpoch = epoch; }
                else stopEarly = epoch - bestEpoch >= o.Patience;
            }
            bool stopping = control?.Stop.IsCancellationRequested == true && epoch < o.Epochs && !stopEarly;
            if (control?.OnCheckpoint != null || stopping)
            {
                at.Op = "reading the state for the checkpoint";
                var state = new TrainState(epoch, 0, scheduler.StepsPerEpoch, step, model.GetParameters(), model.GetVelocity(), 0, 0, history.ToArray(),
                    best, bestEpoch);
                control!.OnCheckpoint?.Invoke(state);   // the last good checkpoint
                if (stopping) throw new TrainingInterrupted(state);
            }
            if (stopEarly) break;
        }
        if (stopEarly && bestEpoch != history.Count) model.SetParameters(best!);   // early stopping: back to the best epoch's weights
        at.Op = "test evaluation";
        var test = dTest == null ? new EvalStats(double.NaN, double.NaN, 0) : Evaluate(model, dTest, o.EvalBatchSize);
        return new TrainResult(spec, model.GetParameters(), history, test,
            trainSeconds > 0 ? trained / trainSeconds : 0, total.Elapsed.TotalSeconds, trainSet.Count, valSet?.Count ?? 0, path,
            stopEarly ? bestEpoch : null, stepper.Steps > 0 ? (double)stepper.Kernels / stepper.Steps : 0,
            stepper.Steps > 0 ? (double)stepper.Replays / stepper.Steps : 0, stepper.Mode);
    }

    /// <summary>Hands the parameters to <see cref="TrainControl.OnParameters"/> when <paramref name="step"/> is a multiple of <see cref="TrainControl.ParametersEvery"/>.</summary>
    static void RecordParameters(TrainControl? control, DeviceMlp model, long step)
    {
        if (control?.OnParameters is { } hook && control.ParametersEvery > 0 && step % control.ParametersEvery == 0)
            hook(step, model.GetParameters());
    }

    /// <summary>Higher is better: validation accuracy, or minus the validation loss.</summary>
    static double Score(TrainOptions o, EpochStats e) => o.StopOn == EarlyStopMetric.Accuracy ? e.ValAccuracy ?? 0 : -(e.ValLoss ?? double.PositiveInfinity);

    /// <summary>Loads a resume state into the model after checking that it belongs to this network and data.</summary>
    static void ApplyResume(TrainState r, DeviceMlp model, MlpSpec spec, MinibatchScheduler scheduler, TrainOptions o)
    {
        if (r.StepsPerEpoch != scheduler.StepsPerEpoch)
            throw new UserError($"the checkpoint has {r.StepsPerEpoch} steps per epoch but this data and batch size give {scheduler.StepsPerEpoch}: the training data changed since it was written");
        if (r.EpochsDone > o.Epochs || (r.EpochsDone == o.Epochs && r.StepInEpoch > 0))
            throw new UserError($"the checkpoint is past epoch {o.Epochs}; give a larger --epochs to train further");
        model.SetVelocity(r.Velocity);
        model.SetMetrics(r.PartialLossSum, r.PartialCorrect);   // a resumed epoch continues its sums exactly
    }

    /// <summary>Training rows of an epoch covered by its first <paramref name="steps"/> steps (every batch but the last is full).</summary>
    static long RowsDone(int steps, TrainOptions o, Dataset trainSet) => Math.Min((long)steps * o.BatchSize, trainSet.Count);

    /// <summary>
    /// The mean training loss above which a run is diverging: ten times the larger of the loss of a uniform
    /// guess (ln C for softmax-ce over C classes, C/8 for sigmoid-sse, whose outputs then sit at 0.5) and the
    /// first epoch's loss. A run that learns stays far below it; one that explodes passes it long before its
    /// loss overflows to infinity or NaN.
    /// </summary>
    public static double DivergenceLimit(TrainOptions o, int classes, IReadOnlyList<EpochStats> history) =>
        10 * Math.Max(UniformLoss(o, classes), history.Count > 0 && double.IsFinite(history[0].TrainLoss) ? history[0].TrainLoss : 0);

    static double UniformLoss(TrainOptions o, int classes) => o.Loss == LossKind.SoftmaxCrossEntropy ? Math.Log(classes) : classes / 8.0;

    /// <summary>
    /// Stops the run (exit code 3) if the loss went NaN/Inf (the device's record, read while the caller
    /// synchronises anyway) or its mean over the <paramref name="rows"/> rows of epoch <paramref name="epoch"/>
    /// trained so far is above <see cref="DivergenceLimit"/>. Called before a checkpoint is handed on, so
    /// only a state whose loss was sane is ever kept as the last good checkpoint.
    /// </summary>
    static void ThrowIfDiverged(DeviceMlp model, TrainOptions o, MinibatchScheduler scheduler, double lossSum, long rows, int epoch,
        IReadOnlyList<EpochStats> history, TrainControl? control)
    {
        var bad = model.FirstNonFiniteStep();
        int classes = model.Spec.Classes;
        double limit = DivergenceLimit(o, classes, history), mean = rows > 0 ? lossSum / rows : 0;
        if (bad == null && double.IsFinite(lossSum) && mean <= limit) return;
        string what;
        long? step = null;
        if (bad != null || !double.IsFinite(lossSum))
        {
            long g = bad ?? (long)(epoch - 1) * scheduler.StepsPerEpoch;
            epoch = (int)(g / scheduler.StepsPerEpoch) + 1;
            if (bad != null) step = g % scheduler.StepsPerEpoch + 1;
            what = $"in epoch {epoch}, step {g % scheduler.StepsPerEpoch + 1} of {scheduler.StepsPerEpoch}: the loss became {(double.IsNaN(lossSum) ? "NaN" : "infinite")}";
        }
        else
        {
            string baseline = history.Count > 0 && history[0].TrainLoss * 10 >= limit
                ? $"the first epoch's {history[0].TrainLoss:0.###}"
                : $"that of a uniform guess, {UniformLoss(o, classes):0.###}";
            what = $"in epoch {epoch}: the mean training loss reached {mean:G3}{(rows < scheduler.Count ? $" over its first {rows:N0} images" : "")}, " +
                $"more than 10 times {baseline}";
        }
        int sane = history.Count(h => h.Epoch < epoch);
        string kept = control?.OnCheckpoint != null && sane > 0 ? $"; the last good checkpoint (end of epoch {sane}) is kept" : "";
        double suggested = SuggestedRate(o, sane);
        control?.OnDiverged?.Invoke(new Divergence(epoch, step, what, o.LearningRate, suggested));
        throw new UserError($"training diverged {what}; lower --lr (now {o.LearningRate}), e.g. --lr {suggested}{kept}", 3);
    }

    /// <summary>
    /// A learning rate to try after a divergence, from the run's history: a third of the rate when
    /// <paramref name="saneEpochs"/> epochs trained before the loss exploded (the rate was nearly right), a
    /// tenth when it exploded at once; and never above the rates at which the optimizer usually trains
    /// these networks (0.1 for SGD or Nesterov with momentum 0.5 or more, 0.5 below it, 0.003 for Adam and
    /// AdamW), so that a rate far too high (1e4) is not answered with one still far too high (1e3).
    /// One significant digit.
    /// </summary>
    public static double SuggestedRate(TrainOptions o, int saneEpochs)
    {
        double usual = o.Optimizer is OptimizerKind.Adam or OptimizerKind.AdamW ? 0.003 : o.Momentum >= 0.5 ? 0.1 : 0.5;
        double r = Math.Min(o.LearningRate / (saneEpochs > 0 ? 3 : 10), usual);
        double scale = Math.Pow(10, Math.Floor(Math.Log10(r)));
        return Math.Round(Math.Floor(r / scale) * scale, 12);
    }

    /// <summary>A requested stop mid-epoch: checks for divergence, hands the exact state to the checkpoint hook, and throws <see cref="TrainingInterrupted"/>.</summary>
    static void Interrupt(TrainControl control, DeviceMlp model, TrainOptions o, MinibatchScheduler scheduler, List<EpochStats> history,
        int epoch, int stepInEpoch, long globalStep, FaultSite at, (float[]? Best, int Epoch) bestSoFar)
    {
        at.Op = "reading the state for the checkpoint";
        var (lossSum, correct) = model.PeekMetrics();
        ThrowIfDiverged(model, o, scheduler, lossSum, Math.Min((long)stepInEpoch * o.BatchSize, scheduler.Count), epoch, history, control);
        var state = new TrainState(epoch - 1, stepInEpoch, scheduler.StepsPerEpoch, globalStep,
            model.GetParameters(), model.GetVelocity(), lossSum, correct, history.ToArray(), bestSoFar.Best, bestSoFar.Epoch);
        control.OnCheckpoint?.Invoke(state);
        throw new TrainingInterrupted(state);
    }

    /// <summary>
    /// One epoch of SGD steps (forward, backward, fused update) of <paramref name="stepper"/> over its batch source in the
    /// scheduler's order for <paramref name="epoch"/>; returns the global step count after it. Each
    /// step's values (learning rate, Adam's corrections, step number) are computed here on the host and handed to the
    /// device once for the epoch. Waits for the device only as <see cref="StepPacer"/> says (about every quarter second of
    /// device work), so <paramref name="afterStep"/> (progress, stop requests) runs close behind the device; the loss and
    /// correct counts stay in the model's device accumulators. A resumed epoch starts at <paramref name="startStep"/>; <paramref name="afterStep"/> gets (steps of
    /// the epoch done, global step).
    /// </summary>
    public static long TrainEpoch(TrainingStep stepper, MinibatchScheduler scheduler, int epoch, TrainOptions o,
        long step, long totalSteps, int startStep = 0, Action<int, long>? afterStep = null)
    {
        // a resumed epoch starts at the first batch not yet trained on: same order, same cut, so the same batches as an uninterrupted run
        var batches = scheduler.Batches(fromStep: startStep);
        stepper.Source.BeginPass(scheduler.EpochOrder(epoch), batches, o.Shift > 0 ? new Augmentation(o.Shift, (long)o.Seed, epoch) : null);
        var optimizer = o.OptimizerSettings;
        var values = new StepValues[batches.Count];
        for (int i = 0; i < values.Length; i++)
            values[i] = TrainingStep.Values(optimizer, LearningRateAt(o, step + i, totalSteps, scheduler.StepsPerEpoch), step + i);
        stepper.BeginEpoch(values);
        var pacer = new StepPacer(StepPacer.Target);
        var sinceWait = System.Diagnostics.Stopwatch.StartNew();
        for (int s = startStep; s < scheduler.StepsPerEpoch; s++)
        {
            stepper.Run();
            step++;
            if (pacer.Step() && s + 1 < scheduler.StepsPerEpoch)   // never a whole epoch ahead of the device (the epoch's end waits anyway)
            {
                stepper.WaitForDevice();
                pacer.Waited(sinceWait.Elapsed);
                sinceWait.Restart();
            }
            afterStep?.Invoke(s + 1, step);   // host-side hook (progress, stop requests); may throw to interrupt
        }
        return step;
    }

    /// <summary>
    /// Learning rate of step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>. During the
    /// warm-up (the first WarmupEpochs * stepsPerEpoch steps) it rises linearly from lr / W to lr; after it:
    /// constant; cosine: lr * (1 + cos(pi * s / S)) / 2 over the S steps after the warm-up; step:
    /// lr * gamma^floor(e / StepEvery), e the whole epochs (in steps) after the warm-up. Both count from the end of the
    /// warm-up, as PyTorch's SequentialLR runs the scheduler after a warm-up (tests/parity/torch_parity.py).
    /// </summary>
    public static float LearningRateAt(TrainOptions o, long step, long totalSteps, int stepsPerEpoch)
    {
        long warm = (long)Math.Round(o.WarmupEpochs * stepsPerEpoch);
        if (step < warm) return (float)(o.LearningRate * (step + 1) / warm);
        return o.Schedule switch
        {
            LrSchedule.Cosine => (float)(o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, totalSteps - warm)))),
            LrSchedule.Step => (float)(o.LearningRate * Math.Pow(o.StepGamma, (step - warm) / stepsPerEpoch / o.StepEvery)),
            _ => o.LearningRate,
        };
    }

    /// <summary>Mean loss and accuracy of the model over a dataset, in its stored order.</summary>
    public static EvalStats Evaluate(DeviceMlp model, IBatchSource data, int batch)
    {
        batch = Math.Min(batch, model.MaxBatch);
        model.TakeMetrics();
        var batches = MinibatchScheduler.Cut(data.Count, batch);
        data.BeginPass(Enumerable.Range(0, data.Count).ToArray(), batches);
        foreach (var _ in batches)
        {
            var (x, y, rows) = data.Next();
            model.Evaluate(x, y, rows, backward: false);
        }
        var (lossSum, correct) = model.TakeMetrics();
        return new EvalStats(lossSum / data.Count, (double)correct / data.Count, data.Count);
    }

    /// <summary>
    /// Auto: resident when the datasets (as bytes) fit the device profile's resident-data budget (half
    /// its memory), which Fashion-MNIST (55 MB) does on any GPU and on the host; else streamed.
    /// </summary>
    public static DataPath ChooseDataPath(DataPath requested, ComputeDevice device, DataPair data)
    {
        if (requested != DataPath.Auto) return requested;
        return ResidentBytes(data) <= device.Profile.ResidentDataBytes ? DataPath.Resident : DataPath.Stream;
    }

    /// <summary>Device bytes of the data on the resident path: the pixels, and a label and a row number per image.</summary>
    static long ResidentBytes(DataPair data) => data.Train.Bytes + data.Test.Bytes + 8L * (data.Train.Count + data.Test.Count);

    static IBatchSource OpenSource(DataPath path, KernelSet kernels, Dataset data, int maxRows, int cacheBlocks = 2) => path == DataPath.Stream
        ? new StreamedDataset(kernels.Accelerator, kernels.Stream, data, maxRows, BlockShuffle.DefaultBlockRows, cacheBlocks)
        : new DeviceDataset(kernels, data, maxRows);
}
