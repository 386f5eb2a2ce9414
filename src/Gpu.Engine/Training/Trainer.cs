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
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public float LearningRate { get; init; } = 0.05f;
    public float Momentum { get; init; } = 0.9f;
    public float L2 { get; init; } = 1e-4f;
    /// <summary>How the learning rate moves over the run; <see cref="LearningRate"/> is its peak.</summary>
    public LrSchedule Schedule { get; init; } = LrSchedule.Cosine;
    public ulong Seed { get; init; } = 1;
    public double ValFraction { get; init; } = 0.1;
    /// <summary>Rows per forward pass when evaluating (no gradients, so larger batches are cheap).</summary>
    public int EvalBatchSize { get; init; } = 1000;

    public void Validate()
    {
        if (Epochs < 1) throw new UserError($"--epochs {Epochs}: give a whole number >= 1");
        if (BatchSize < 1) throw new UserError($"--batch-size {BatchSize}: give a whole number >= 1");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new UserError($"--lr {LearningRate}: give a positive number, e.g. 0.05");
        if (!(Momentum >= 0 && Momentum < 1)) throw new UserError($"--momentum {Momentum}: give a number in [0, 1), e.g. 0.9");
        if (!(L2 >= 0) || !float.IsFinite(L2)) throw new UserError($"--l2 {L2}: give a number >= 0, e.g. 1e-4");
        if (!(ValFraction >= 0 && ValFraction < 1)) throw new UserError($"--val-fraction {ValFraction}: give a number in [0, 1), e.g. 0.1");
        foreach (var h in Hidden) if (h < 1) throw new UserError($"--layers: width {h} is not a whole number >= 1");
    }
}

/// <summary>Learning-rate schedule over the whole run.</summary>
public enum LrSchedule { Constant, Cosine }

/// <summary>What one epoch measured. Losses are mean cross-entropy per image (without the L2 term).</summary>
public sealed record EpochStats(int Epoch, double TrainLoss, double TrainAccuracy, double? ValLoss, double? ValAccuracy,
    double TrainSeconds, double SamplesPerSecond, double EvalSeconds);

public sealed record EvalStats(double Loss, double Accuracy, int Count);

public sealed record TrainResult(MlpSpec Spec, float[] Parameters, IReadOnlyList<EpochStats> History, EvalStats Test,
    double TrainSamplesPerSecond, double Seconds, int TrainCount, int ValCount);

/// <summary>
/// The training loop. The whole dataset is uploaded once as bytes; every epoch ships one permutation,
/// and each step gathers its batch on the device, runs forward, backward and the fused update. The
/// host does not wait for the device inside an epoch, except for one short read of the divergence record
/// every few seconds: loss and accuracy are summed on the device and read once at the end of the epoch.
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
            throw new UserError($"device error on {device.Id} ({device.Name}) during {at.Op} (epoch {at.Epoch}, step {at.Step}): " +
                $"{e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}; resume from the last checkpoint with --resume DIR --device cpu", 4);
        }
    }

    sealed class FaultSite { public string Op = "setup"; public int Epoch, Step; }

    static TrainResult Run(ComputeDevice device, DataPair data, TrainOptions o, Action<EpochStats>? onEpoch, TrainControl? control, FaultSite at)
    {
        o.Validate();
        var total = Stopwatch.StartNew();
        var (trainSet, valSet) = data.Train.Split(o.ValFraction, o.Seed);
        var spec = MlpSpec.FromHidden(trainSet.Features, o.Hidden, trainSet.Classes);
        var kernels = KernelSet.For(device.Accelerator);
        int maxRows = Math.Max(o.BatchSize, Math.Min(o.EvalBatchSize, Math.Max(data.Test.Count, valSet?.Count ?? 0)));

        using var model = new DeviceMlp(kernels, spec, maxRows);
        var resume = control?.Resume;
        model.SetParameters(resume?.Parameters ?? spec.Initialize(o.Seed));
        using var dTrain = new DeviceDataset(kernels, trainSet);
        using var dVal = valSet == null ? null : new DeviceDataset(kernels, valSet);
        using var dTest = new DeviceDataset(kernels, data.Test);
        using var x = device.Accelerator.Allocate1D<float>((long)maxRows * spec.Inputs);
        using var y = device.Accelerator.Allocate1D<int>(maxRows);

        var scheduler = new MinibatchScheduler(trainSet.Count, o.BatchSize, o.Seed);
        if (resume != null) ApplyResume(resume, model, spec, scheduler, o);
        var history = new List<EpochStats>(resume?.History ?? []);
        double trainSeconds = 0, trained = 0;
        var nextDivergenceCheck = control?.DivergenceCheckInterval ?? TimeSpan.FromSeconds(5);
        long step = resume?.GlobalStep ?? 0, totalSteps = (long)scheduler.StepsPerEpoch * o.Epochs;
        for (int epoch = (resume?.EpochsDone ?? 0) + 1; epoch <= o.Epochs; epoch++)
        {
            var sw = Stopwatch.StartNew();
            int s = epoch == (resume?.EpochsDone ?? 0) + 1 ? resume?.StepInEpoch ?? 0 : 0;   // steps of this epoch already done
            double epochRows = trainSet.Count - Math.Min(trainSet.Count, (long)s * o.BatchSize);
            dTrain.SetOrder(scheduler.EpochOrder(epoch));
            foreach (var (offset, rows) in scheduler.Batches().Skip(s))
            {
                (at.Op, at.Epoch, at.Step) = ("a training step", epoch, s + 1);
                dTrain.Gather(offset, rows, x.View, y.View);
                model.Evaluate(x.View, y.View, rows, backward: true);
                model.WatchDivergence(step);   // a one-thread launch, no wait: records the first step whose loss is NaN/Inf
                model.Step(LearningRateAt(o, step++, totalSteps), o.Momentum, o.L2);
                control?.OnStep?.Invoke(new StepProgress(epoch, o.Epochs, ++s, scheduler.StepsPerEpoch, step, totalSteps));
                if (control?.Stop.IsCancellationRequested == true && s < scheduler.StepsPerEpoch)
                    Interrupt(control, model, o, scheduler, history, epoch, s, step, at);
                if (total.Elapsed >= nextDivergenceCheck)   // a few reads a minute, never per step
                {
                    nextDivergenceCheck = total.Elapsed + (control?.DivergenceCheckInterval ?? TimeSpan.FromSeconds(5));
                    ThrowIfDiverged(model, o, scheduler, model.PeekMetrics().LossSum, control);
                }
            }
            at.Op = "reading the epoch's metrics";
            var (lossSum, correct) = model.TakeMetrics();   // the epoch's synchronisation (besides the divergence reads every few seconds)
            double seconds = sw.Elapsed.TotalSeconds;
            trainSeconds += seconds;
            trained += epochRows;
            double trainLoss = lossSum / trainSet.Count;
            ThrowIfDiverged(model, o, scheduler, lossSum, control);

            at.Op = "validation";
            var ev = Stopwatch.StartNew();
            var val = dVal == null ? null : Evaluate(model, dVal, x.View, y.View, o.EvalBatchSize);
            var stats = new EpochStats(epoch, trainLoss, (double)correct / trainSet.Count, val?.Loss, val?.Accuracy,
                seconds, epochRows / seconds, ev.Elapsed.TotalSeconds);
            history.Add(stats);
            onEpoch?.Invoke(stats);
            bool stopping = control?.Stop.IsCancellationRequested == true && epoch < o.Epochs;
            if (control?.OnCheckpoint != null || stopping)
            {
                at.Op = "reading the state for the checkpoint";
                var state = new TrainState(epoch, 0, scheduler.StepsPerEpoch, step, model.GetParameters(), model.GetVelocity(), 0, 0, history.ToArray());
                control!.OnCheckpoint?.Invoke(state);   // the last good checkpoint
                if (stopping) throw new TrainingInterrupted(state);
            }
        }
        at.Op = "test evaluation";
        var test = Evaluate(model, dTest, x.View, y.View, o.EvalBatchSize);
        return new TrainResult(spec, model.GetParameters(), history, test,
            trainSeconds > 0 ? trained / trainSeconds : 0, total.Elapsed.TotalSeconds, trainSet.Count, valSet?.Count ?? 0);
    }

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
        int epoch, int stepInEpoch, long globalStep, FaultSite at)
    {
        at.Op = "reading the state for the checkpoint";
        var (lossSum, correct) = model.PeekMetrics();
        ThrowIfDiverged(model, o, scheduler, lossSum, control);
        var state = new TrainState(epoch - 1, stepInEpoch, scheduler.StepsPerEpoch, globalStep,
            model.GetParameters(), model.GetVelocity(), lossSum, correct, history.ToArray());
        control.OnCheckpoint?.Invoke(state);
        throw new TrainingInterrupted(state);
    }

    /// <summary>
    /// Learning rate of step <paramref name="step"/> (0-based) of <paramref name="totalSteps"/>: constant,
    /// or cosine annealing from the peak to 0 over the run: lr * (1 + cos(pi * step / totalSteps)) / 2.
    /// </summary>
    public static float LearningRateAt(TrainOptions o, long step, long totalSteps) => o.Schedule switch
    {
        LrSchedule.Cosine => (float)(o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / totalSteps))),
        _ => o.LearningRate,
    };

    /// <summary>Mean loss and accuracy of the model over a device-resident dataset, in its stored order.</summary>
    public static EvalStats Evaluate(DeviceMlp model, DeviceDataset data, ILGPU.ArrayView<float> x, ILGPU.ArrayView<int> y, int batch)
    {
        batch = Math.Min(batch, model.MaxBatch);
        model.TakeMetrics();
        for (int offset = 0; offset < data.Count; offset += batch)
        {
            int rows = Math.Min(batch, data.Count - offset);
            data.Gather(offset, rows, x, y);
            model.Evaluate(x, y, rows, backward: false);
        }
        var (lossSum, correct) = model.TakeMetrics();
        return new EvalStats(lossSum / data.Count, (double)correct / data.Count, data.Count);
    }
}
