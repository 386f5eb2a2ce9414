using System.Diagnostics;
using Gpu.Engine.Data;
using Gpu.Engine.Devices;
using Gpu.Engine.Model;
using ILGPU.Runtime;

namespace Gpu.Engine.Training;

/// <summary>Hyperparameters of one training run. Defaults are the W1 workload of design.md.</summary>
public sealed record TrainOptions
{
    public int[] Hidden { get; init; } = [256, 128];
    public Activation Activation { get; init; } = Activation.Relu;
    public LossKind Loss { get; init; } = LossKind.SoftmaxCrossEntropy;
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public float LearningRate { get; init; } = 0.05f;
    public float Momentum { get; init; } = 0.9f;
    public float L2 { get; init; } = 1e-4f;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    public float Beta1 { get; init; } = 0.9f;
    public float Beta2 { get; init; } = 0.999f;
    public InitKind Init { get; init; } = InitKind.He;
    /// <summary>Early stopping: stop after this many epochs without a better validation score, and restore the best epoch's weights (0: off).</summary>
    public int Patience { get; init; }
    /// <summary>The validation score early stopping watches.</summary>
    public EarlyStopMetric StopOn { get; init; } = EarlyStopMetric.Loss;
    /// <summary>Random shifts of training images by up to this many pixels per axis (0: none; never at evaluation).</summary>
    public int Shift { get; init; }
    /// <summary>Inverted dropout rate on the hidden layers' outputs while training (0: off; never at evaluation).</summary>
    public float Dropout { get; init; }
    public float BiasInit { get; init; } = 0.01f;
    /// <summary>Linear warm-up from 0 to the peak learning rate over this many epochs (counted in steps), then the schedule.</summary>
    public double WarmupEpochs { get; init; }
    /// <summary>Step schedule: multiply the learning rate by <see cref="StepGamma"/> every <see cref="StepEvery"/> epochs.</summary>
    public int StepEvery { get; init; } = 10;
    public float StepGamma { get; init; } = 0.1f;

    public Optimizer OptimizerSettings => new(Optimizer, Momentum, L2, Beta1, Beta2);
    /// <summary>How the learning rate moves over the run; <see cref="LearningRate"/> is its peak.</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Cosine;
    public ulong Seed { get; init; } = 1;
    public double ValFraction { get; init; } = 0.1;
    /// <summary>Rows per forward pass when evaluating (no gradients, so larger batches are cheap).</summary>
    public int EvalBatchSize { get; init; } = 1000;
    /// <summary>Resident (dataset on the device, batches gathered there) or streamed (page-locked host buffers); Auto decides by size.</summary>
    public DataPath DataPath { get; init; } = DataPath.Auto;

    public void Validate()
    {
        if (Epochs < 1) throw new UserError($"--epochs {Epochs}: give a whole number >= 1");
        if (BatchSize < 1) throw new UserError($"--batch-size {BatchSize}: give a whole number >= 1");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new UserError($"--lr {LearningRate}: give a positive number, e.g. 0.05");
        if (!(Momentum >= 0 && Momentum < 1)) throw new UserError($"--momentum {Momentum}: give a number in [0, 1), e.g. 0.9");
        if (!(L2 >= 0) || !float.IsFinite(L2)) throw new UserError($"--l2 {L2}: give a number >= 0, e.g. 1e-4");
        if (!(ValFraction >= 0 && ValFraction < 1)) throw new UserError($"--val-fraction {ValFraction}: give a number in [0, 1), e.g. 0.1");
        if (!(Beta1 >= 0 && Beta1 < 1) || !(Beta2 >= 0 && Beta2 < 1)) throw new UserError($"--beta1 {Beta1} / --beta2 {Beta2}: give numbers in [0, 1), e.g. 0.9 and 0.999");
        if (!(WarmupEpochs >= 0) || WarmupEpochs >= Epochs) throw new UserError($"--warmup-epochs {WarmupEpochs}: give a number >= 0 and below --epochs ({Epochs})");
        if (StepEvery < 1) throw new UserError($"--step-every {StepEvery}: give a whole number of epochs >= 1");
        if (!(StepGamma > 0 && StepGamma <= 1)) throw new UserError($"--step-gamma {StepGamma}: give a factor in (0, 1], e.g. 0.1");
        if (Patience < 0) throw new UserError($"--patience {Patience}: give a whole number of epochs >= 0 (0: no early stopping)");
        if (Patience > 0 && ValFraction <= 0) throw new UserError("--patience needs a validation split: give --val-fraction above 0");
        if (Shift < 0 || Shift > 8) throw new UserError($"--shift {Shift}: give a whole number of pixels from 0 to 8, e.g. 2");
        if (!(Dropout >= 0 && Dropout < 1)) throw new UserError($"--dropout {Dropout}: give a rate in [0, 1), e.g. 0.2");
        if (!float.IsFinite(BiasInit)) throw new UserError($"--bias-init {BiasInit}: give a finite number, e.g. 0.01");
        foreach (var h in Hidden) if (h < 1) throw new UserError($"--layers: width {h} is not a whole number >= 1");
    }
}

/// <summary>What early stopping watches on the validation split.</summary>
public enum EarlyStopMetric { Loss, Accuracy }

/// <summary>Learning-rate schedule over the whole run.</summary>
public enum LrSchedule { Constant, Cosine, Step }

/// <summary>What one epoch measured. Losses are the mean cost per image (cross-entropy or 1/2 sum of squares), without the L2 term.</summary>
public sealed record EpochStats(int Epoch, double TrainLoss, double TrainAccuracy, double? ValLoss, double? ValAccuracy,
    double TrainSeconds, double SamplesPerSecond, double EvalSeconds);

public sealed record EvalStats(double Loss, double Accuracy, int Count);

public sealed record TrainResult(MlpSpec Spec, float[] Parameters, IReadOnlyList<EpochStats> History, EvalStats Test,
    double TrainSamplesPerSecond, double Seconds, int TrainCount, int ValCount, DataPath DataPath, int? StoppedEarlyAtBestEpoch = null);

/// <summary>
/// The training loop. With the resident data path the dataset is uploaded once as bytes, every epoch
/// ships one permutation and each step gathers its batch on the device; with the streamed path a
/// background task fills page-locked buffers that are copied asynchronously. Each step then runs
/// forward, backward and the fused update. The host does not wait for the device inside an epoch,
/// except for one short read of the divergence record every few seconds: loss and accuracy are summed
/// on the device and read once at the end of the epoch.
/// </summary>
public static class Trainer
{
    public static TrainResult Run(ComputeDevice device, DataPair data, TrainOptions o, Action<EpochStats>? onEpoch = null, TrainControl? control = null)
    {
        var at = new FaultSite();
        try { return Run(device, data, o, onEpoch, control, at); }
        catch (Exception e) when (e is not (UserError or TrainingInterrupted or OperationCanceledException or ArgumentException))
        {
            // a kernel launch or device failure: one line naming the device and the operation; the last checkpoint stays valid
            throw device.Fault($"during {at.Op} (epoch {at.Epoch}, step {at.Step})", e, "resume from the last checkpoint with --resume DIR --device cpu");
        }
    }

    sealed class FaultSite { public string Op = "setup"; public int Epoch, Step; }

    static TrainResult Run(ComputeDevice device, DataPair data, TrainOptions o, Action<EpochStats>? onEpoch, TrainControl? control, FaultSite at)
    {
        o.Validate();
        var total = Stopwatch.StartNew();
        var (trainSet, valSet) = data.Train.Split(o.ValFraction, o.Seed);
        var spec = MlpSpec.FromHidden(trainSet.Features, o.Hidden, trainSet.Classes, o.Activation, o.Loss);
        var kernels = KernelSet.For(device.Accelerator);
        int maxRows = Math.Max(o.BatchSize, Math.Min(o.EvalBatchSize, Math.Max(data.Test.Count, valSet?.Count ?? 0)));

        using var model = new DeviceMlp(kernels, spec, maxRows);
        var resume = control?.Resume;
        model.SetParameters(resume?.Parameters ?? spec.Initialize(o.Seed, o.BiasInit, o.Init));
        var path = ChooseDataPath(o.DataPath, device, data);
        using var dTrain = OpenSource(path, kernels, trainSet, o.BatchSize);
        using var dVal = valSet == null ? null : OpenSource(path, kernels, valSet, maxRows);
        using var dTest = control?.EvaluateTest == false ? null : OpenSource(path, kernels, data.Test, maxRows);

        var scheduler = new MinibatchScheduler(trainSet.Count, o.BatchSize, o.Seed);
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
            double epochRows = trainSet.Count - Math.Min(trainSet.Count, (long)s * o.BatchSize);
            int e = epoch;
            (at.Op, at.Epoch, at.Step) = ("a training step", e, s + 1);
            step = TrainEpoch(model, dTrain, scheduler, epoch, o, step, totalSteps, startStep: s, afterStep: (done, globalStep) =>
            {
                control?.OnStep?.Invoke(new StepProgress(e, o.Epochs, done, scheduler.StepsPerEpoch, globalStep, totalSteps));
                RecordParameters(control, model, globalStep);
                at.Step = done + 1;   // the step about to run
                if (control?.Stop.IsCancellationRequested == true && done < scheduler.StepsPerEpoch)
                    Interrupt(control, model, o, scheduler, history, e, done, globalStep, at, (best, bestEpoch));
                if (total.Elapsed >= nextDivergenceCheck)   // a few reads a minute, never per step
                {
                    nextDivergenceCheck = total.Elapsed + (control?.DivergenceCheckInterval ?? TimeSpan.FromSeconds(5));
                    ThrowIfDiverged(model, o, scheduler, model.PeekMetrics().LossSum, control);
                }
            });
            at.Op = "reading the epoch's metrics";
            var (lossSum, correct) = model.TakeMetrics();   // the epoch's synchronisation (besides the divergence reads every few seconds)
            double seconds = sw.Elapsed.TotalSeconds;
            trainSeconds += seconds;
            trained += epochRows;
            double trainLoss = lossSum / trainSet.Count;
            ThrowIfDiverged(model, o, scheduler, lossSum, control);

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
            stopEarly ? bestEpoch : null);
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

    /// <summary>Reads the device's divergence record (the caller is synchronising anyway) and stops the run if the loss went NaN/Inf.</summary>
    static void ThrowIfDiverged(DeviceMlp model, TrainOptions o, MinibatchScheduler scheduler, double lossSum, TrainControl? control)
    {
        var bad = model.FirstNonFiniteStep();
        if (bad == null && double.IsFinite(lossSum)) return;
        long g = bad ?? 0;
        int epoch = (int)(g / scheduler.StepsPerEpoch) + 1, step = (int)(g % scheduler.StepsPerEpoch) + 1;
        string kept = control?.OnCheckpoint != null && epoch > 1 ? $"; the last good checkpoint (end of epoch {epoch - 1}) is kept" : "";
        throw new UserError($"training diverged in epoch {epoch}, step {step} of {scheduler.StepsPerEpoch}: the loss became " +
            $"{(double.IsNaN(lossSum) ? "NaN" : "infinite")}; lower --lr (now {o.LearningRate}), e.g. --lr {o.LearningRate / 10}{kept}", 3);
    }

    /// <summary>A requested stop mid-epoch: checks for divergence, hands the exact state to the checkpoint hook, and throws <see cref="TrainingInterrupted"/>.</summary>
    static void Interrupt(TrainControl control, DeviceMlp model, TrainOptions o, MinibatchScheduler scheduler, List<EpochStats> history,
        int epoch, int stepInEpoch, long globalStep, FaultSite at, (float[]? Best, int Epoch) bestSoFar)
    {
        at.Op = "reading the state for the checkpoint";
        var (lossSum, correct) = model.PeekMetrics();
        ThrowIfDiverged(model, o, scheduler, lossSum, control);
        var state = new TrainState(epoch - 1, stepInEpoch, scheduler.StepsPerEpoch, globalStep,
            model.GetParameters(), model.GetVelocity(), lossSum, correct, history.ToArray(), bestSoFar.Best, bestSoFar.Epoch);
        control.OnCheckpoint?.Invoke(state);
        throw new TrainingInterrupted(state);
    }

    /// <summary>
    /// One epoch of SGD steps (forward, backward, fused update) over <paramref name="train"/> in the
    /// scheduler's order for <paramref name="epoch"/>; returns the global step count after it. Does not
    /// synchronise: the loss and correct counts stay in the model's device accumulators. A resumed epoch
    /// starts at <paramref name="startStep"/>; <paramref name="afterStep"/> gets (steps of the epoch done, global step).
    /// </summary>
    public static long TrainEpoch(DeviceMlp model, IBatchSource train, MinibatchScheduler scheduler, int epoch, TrainOptions o,
        long step, long totalSteps, int startStep = 0, Action<int, long>? afterStep = null)
    {
        train.BeginPass(scheduler.EpochOrder(epoch), o.BatchSize, o.Shift > 0 ? new Augmentation(o.Shift, (long)o.Seed, epoch) : null);
        for (int s = 0; s < startStep; s++) train.Next();   // a resumed epoch: skip the batches already trained on
        var optimizer = o.OptimizerSettings;
        for (int s = startStep; s < scheduler.StepsPerEpoch; s++)
        {
            var (x, y, rows) = train.Next();
            model.Dropout = (o.Dropout, (long)o.Seed, step);
            model.Evaluate(x, y, rows, backward: true);
            model.WatchDivergence(step);   // a one-thread launch, no wait: records the first step whose loss is NaN/Inf
            model.Step(optimizer, LearningRateAt(o, step, totalSteps, scheduler.StepsPerEpoch), step);
            step++;
            afterStep?.Invoke(s + 1, step);   // host-side hook (progress, stop requests); may throw to interrupt
        }
        return step;
    }

    /// <summary>
    /// Learning rate of step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>. During the
    /// warm-up (the first WarmupEpochs * stepsPerEpoch steps) it rises linearly from lr / W to lr; after it:
    /// constant; cosine: lr * (1 + cos(pi * s / S)) / 2 over the S steps after the warm-up; step:
    /// lr * gamma^floor(epoch / StepEvery).
    /// </summary>
    public static float LearningRateAt(TrainOptions o, long step, long totalSteps, int stepsPerEpoch)
    {
        long warm = (long)Math.Round(o.WarmupEpochs * stepsPerEpoch);
        if (step < warm) return (float)(o.LearningRate * (step + 1) / warm);
        return o.Schedule switch
        {
            LrSchedule.Cosine => (float)(o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * (step - warm) / Math.Max(1, totalSteps - warm)))),
            LrSchedule.Step => (float)(o.LearningRate * Math.Pow(o.StepGamma, step / stepsPerEpoch / o.StepEvery)),
            _ => o.LearningRate,
        };
    }

    /// <summary>Mean loss and accuracy of the model over a dataset, in its stored order.</summary>
    public static EvalStats Evaluate(DeviceMlp model, IBatchSource data, int batch)
    {
        batch = Math.Min(batch, model.MaxBatch);
        model.TakeMetrics();
        data.BeginPass(Enumerable.Range(0, data.Count).ToArray(), batch);
        for (int done = 0; done < data.Count;)
        {
            var (x, y, rows) = data.Next();
            model.Evaluate(x, y, rows, backward: false);
            done += rows;
        }
        var (lossSum, correct) = model.TakeMetrics();
        return new EvalStats(lossSum / data.Count, (double)correct / data.Count, data.Count);
    }

    /// <summary>
    /// Auto: resident when the datasets (as bytes) take at most half the device's memory, which
    /// Fashion-MNIST (55 MB) does on any GPU and always on the CPU accelerator; else streamed.
    /// </summary>
    public static DataPath ChooseDataPath(DataPath requested, ComputeDevice device, DataPair data)
    {
        if (requested != DataPath.Auto) return requested;
        long bytes = data.Train.Pixels.LongLength + data.Test.Pixels.LongLength + 8L * (data.Train.Count + data.Test.Count);
        return device.IsCpu || bytes <= device.Accelerator.MemorySize / 2 ? DataPath.Resident : DataPath.Stream;
    }

    static IBatchSource OpenSource(DataPath path, KernelSet kernels, Dataset data, int maxRows) => path == DataPath.Stream
        ? new StreamedDataset(kernels.Accelerator, data, maxRows)
        : new DeviceDataset(kernels, data, maxRows);
}
