using System.Buffers.Binary;
using System.Text;
using Gpu.Engine.Data;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using Gpu.Engine;

namespace Gpu.Tests.Training;

/// <summary>Checkpoints, exact resume, interruption and divergence, on the CPU accelerator.</summary>
public sealed class CheckpointTests : TempFolderTest
{
    static DataPair? slice;


    static DataPair Slice()
    {
        if (slice != null) return slice;
        var full = Idx.ReadFolder(Repo.FashionMnist);
        return slice = full with { Train = full.Train.Take(1000), Test = full.Test.Take(300) };
    }

    static readonly TrainOptions Options = new() { Hidden = [33, 17], Epochs = 4, BatchSize = 64, Seed = 7 };   // cosine schedule, momentum 0.9

    CheckpointRun RunInfo(DataPair d, TrainOptions? o = null) => new([784, 33, 17, 10], o ?? Options, DataSource.OfFolder(d.Folder), 1000, d.Train.Count, "cpu");

    /// <summary>Trains with checkpoints written to dir; stops (as Ctrl-C would) after <paramref name="stopAfter"/> steps.</summary>
    TrainingInterrupted TrainAndStop(ComputeDevice device, DataPair data, long stopAfter, TrainOptions? options = null)
    {
        using var stop = new CancellationTokenSource();
        var control = new TrainControl
        {
            Stop = stop.Token,
            OnStep = p => { if (p.GlobalStep == stopAfter) stop.Cancel(); },
            OnCheckpoint = s => Checkpoint.Write(dir, RunInfo(data, options), s),
        };
        return Assert.Throws<TrainingInterrupted>(() => Trainer.Run(device, data, options ?? Options, control: control))!;
    }

    TrainResult ResumeFromDisk(ComputeDevice device, DataPair data, TrainOptions? options = null)
    {
        var (run, state) = Checkpoint.Read(dir);
        Assert.That(run.Options, Is.EqualTo(options ?? Options).Using<TrainOptions>((a, b) =>
            a.Hidden.SequenceEqual(b.Hidden) && a.Epochs == b.Epochs && a.BatchSize == b.BatchSize && a.LearningRate == b.LearningRate
            && a.Momentum == b.Momentum && a.L2 == b.L2 && a.Schedule == b.Schedule && a.Seed == b.Seed && a.ValFraction == b.ValFraction));
        return Trainer.Run(device, data, run.Options, control: new TrainControl { Resume = state });
    }

    [Test]
    public void Four_epochs_equal_two_then_interrupt_then_resume_two_bit_for_bit()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        var once = Trainer.Run(device, data, Options);
        int stepsPerEpoch = (900 + 63) / 64;

        var stopped = TrainAndStop(device, data, 2L * stepsPerEpoch);
        Assert.That(stopped.State.EpochsDone, Is.EqualTo(2));
        Assert.That(stopped.State.StepInEpoch, Is.Zero);
        var resumed = ResumeFromDisk(device, data);

        Assert.That(resumed.Parameters, Is.EqualTo(once.Parameters), "parameters bit for bit");
        Assert.That(resumed.History.Select(h => h.TrainLoss), Is.EqualTo(once.History.Select(h => h.TrainLoss)));
        Assert.That(resumed.Test.Loss, Is.EqualTo(once.Test.Loss));
    }

    [Test]
    public void A_checkpoint_written_mid_epoch_resumes_bit_for_bit()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        var once = Trainer.Run(device, data, Options);
        int stepsPerEpoch = (900 + 63) / 64;

        var stopped = TrainAndStop(device, data, 2L * stepsPerEpoch + 5);
        Assert.That((stopped.State.EpochsDone, stopped.State.StepInEpoch), Is.EqualTo((2, 5)));
        Assert.That(File.Exists(Path.Combine(dir, "checkpoint", "model.npy")) && File.Exists(Path.Combine(dir, "checkpoint", "optimizer.npy")));
        var resumed = ResumeFromDisk(device, data);

        Assert.That(resumed.Parameters, Is.EqualTo(once.Parameters), "parameters bit for bit");
        Assert.That(resumed.History.Select(h => h.TrainLoss), Is.EqualTo(once.History.Select(h => h.TrainLoss)),
            "the interrupted epoch's loss too (its partial sums are in the checkpoint)");
        Assert.That(resumed.History.Select(h => h.ValLoss), Is.EqualTo(once.History.Select(h => h.ValLoss)));
    }

    [Test]
    public void Adam_with_dropout_shifts_warmup_and_streaming_resumes_mid_epoch_bit_for_bit()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        var o = Options with
        {
            Optimizer = OptimizerKind.AdamW, LearningRate = 0.002f, Dropout = 0.2f, Shift = 1, WarmupEpochs = 1,
            Activation = Gpu.Engine.Settings.Activation.Tanh, DataPath = DataPath.Stream, Patience = 3,
        };
        var once = Trainer.Run(device, data, o);
        int stepsPerEpoch = (900 + 63) / 64;
        var stopped = TrainAndStop(device, data, stepsPerEpoch + 3, o);
        Assert.That((stopped.State.EpochsDone, stopped.State.StepInEpoch), Is.EqualTo((1, 3)));
        var (run, _) = Checkpoint.Read(dir);
        Assert.That((run.Options.Optimizer, run.Options.Dropout, run.Options.Shift, run.Options.Activation, run.Options.DataPath),
            Is.EqualTo((o.Optimizer, o.Dropout, o.Shift, o.Activation, o.DataPath)), "the checkpoint keeps every setting");
        Assert.That(File.Exists(Path.Combine(dir, "checkpoint", "best.npy")), "early stopping keeps the best weights in the checkpoint: " + string.Join(",", Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories)));
        var resumed = ResumeFromDisk(device, data, o);
        Assert.That(resumed.Parameters, Is.EqualTo(once.Parameters), "parameters bit for bit (Adam's two moment vectors restored)");
        Assert.That(resumed.StoppedEarlyAtBestEpoch, Is.EqualTo(once.StoppedEarlyAtBestEpoch));
    }

    [Test]
    public void Npy_files_have_the_numpy_v1_layout_and_round_trip()
    {
        var v = new[] { 1f, -2.5f, float.Epsilon, 3e38f };
        var bytes = Npy.Encode(v);
        Assert.That(bytes[..8], Is.EqualTo(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 }));
        int headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        Assert.That((10 + headerLength) % 64, Is.Zero, "data aligned to 64 bytes");
        string header = Encoding.ASCII.GetString(bytes, 10, headerLength);
        Assert.That(header, Does.StartWith("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }").And.EndWith("\n"));
        Assert.That(bytes.Length, Is.EqualTo(10 + headerLength + 16));
        Assert.That(Npy.Decode(bytes, "x"), Is.EqualTo(v));
        Assert.That(Assert.Throws<UserError>(() => Npy.Decode(bytes[..^3], "x.npy"))!.Message, Does.Contain("x.npy"));
    }

    [Test]
    public void A_corrupt_checkpoint_is_reported_in_one_line_and_never_loaded()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        TrainAndStop(device, data, 3);
        var ck = Path.Combine(dir, "checkpoint");
        var model = File.ReadAllBytes(Path.Combine(ck, "model.npy"));

        model[^1] ^= 0x40;   // one flipped bit in the last parameter
        File.WriteAllBytes(Path.Combine(ck, "model.npy"), model);
        var e = Assert.Throws<UserError>(() => Checkpoint.Read(dir))!;
        Assert.That(e.Message, Does.Contain("model.npy").And.Contain("checksum"));
        Assert.That(e.Message, Does.Not.Contain("\n"));

        File.WriteAllBytes(Path.Combine(ck, "model.npy"), model[..100]);
        Assert.That(Assert.Throws<UserError>(() => Checkpoint.Read(dir))!.Message, Does.Contain("corrupt checkpoint"));

        var json = File.ReadAllText(Path.Combine(ck, "state.json"));
        File.WriteAllText(Path.Combine(ck, "state.json"), json[..(json.Length / 2)]);
        Assert.That(Assert.Throws<UserError>(() => Checkpoint.Read(dir))!.Message, Does.Contain("state.json").And.Contain("not valid JSON"));

        File.WriteAllText(Path.Combine(ck, "state.json"), json.Replace("\"parameter_count\": ", "\"parameter_count\": 1"));
        Assert.That(Assert.Throws<UserError>(() => Checkpoint.Read(dir))!.Message, Does.Contain("parameter_count"));

        Assert.That(Assert.Throws<UserError>(() => Checkpoint.Read(Path.Combine(dir, "nothing")))!.Message, Does.Contain("not found"));
    }

    [Test]
    public void Divergence_stops_at_once_naming_epoch_and_step_and_keeps_the_last_good_checkpoint()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        var one = Options with { Epochs = 1 };
        Trainer.Run(device, data, one, control: new TrainControl { OnCheckpoint = s => Checkpoint.Write(dir, RunInfo(data), s) });
        var before = Directory.GetFiles(Path.Combine(dir, "checkpoint")).ToDictionary(f => f, File.ReadAllBytes);

        // continue the same run with an absurd learning rate: the loss becomes NaN/Inf within a step or two
        var (_, state) = Checkpoint.Read(dir);
        var wild = Options with { Epochs = 3, LearningRate = 1e30f, Schedule = LrSchedule.Constant };
        var saved = 0;
        var e = Assert.Throws<UserError>(() => Trainer.Run(device, data, wild,
            control: new TrainControl { Resume = state, OnCheckpoint = s => { saved++; Checkpoint.Write(dir, RunInfo(data), s); } }))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.ExitCode, Is.EqualTo(3));
        Assert.That(e.Message, Does.Match(@"diverged in epoch 2, step \d+ of 15").And.Contain("lower --lr").And.Contain("last good checkpoint (end of epoch 1)"));
        Assert.That(saved, Is.Zero, "no checkpoint written after the divergence");
        foreach (var (f, bytes) in before) Assert.That(File.ReadAllBytes(f), Is.EqualTo(bytes), f);
    }

    [Test]
    public void Divergence_watch_records_the_first_bad_step_on_the_device()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        var wild = Options with { LearningRate = 1e30f, Schedule = LrSchedule.Constant };
        var e = Assert.Throws<UserError>(() => Trainer.Run(device, data, wild))!;
        Assert.That(e.Message, Does.Match(@"diverged in epoch 1, step [1-3] of 15"), "found at the epoch end");

        // with the in-epoch check made frequent, the run stops within a step of the bad one instead of at the epoch end
        int steps = 0;
        var control = new TrainControl { DivergenceCheckInterval = TimeSpan.Zero, OnStep = _ => steps++ };
        Assert.That(Assert.Throws<UserError>(() => Trainer.Run(device, data, wild, control: control))!.Message, Is.EqualTo(e.Message));
        Assert.That(steps, Is.LessThanOrEqualTo(4));
    }

    [Test]
    public void A_device_fault_is_one_line_naming_device_and_operation_and_the_run_resumes_on_the_cpu()
    {
        using var device = ComputeDevice.Open("cpu");
        var data = Slice();
        var once = Trainer.Run(device, data, Options);
        // a failure inside step 5 of epoch 2 (injected through the step hook: ILGPU exceptions cannot be provoked on demand on the CPU)
        var control = new TrainControl
        {
            OnStep = p => { if (p.GlobalStep == 15 + 5) throw new InvalidOperationException("simulated kernel launch failure\nsecond line"); },
            OnCheckpoint = st => Checkpoint.Write(dir, RunInfo(data), st),
            FaultAdvice = "the caller's advice",
        };
        var e = Assert.Throws<UserError>(() => Trainer.Run(device, data, Options, control: control))!;
        Assert.That(e.ExitCode, Is.EqualTo(4));
        Assert.That(e.Message, Is.EqualTo("device error on cpu (CPUAccelerator) during a training step (epoch 2, step 5): InvalidOperationException: simulated kernel launch failure; the caller's advice"));
        var plain = Assert.Throws<UserError>(() => Trainer.Run(device, data, Options, control: new TrainControl { OnStep = control.OnStep }))!;
        Assert.That(plain.Message, Does.EndWith("; " + TrainControl.DefaultFaultAdvice), "no advice given: the engine names no flags");

        using var other = ComputeDevice.Open("cpu");   // "another device": a fresh accelerator
        var (_, state) = Checkpoint.Read(dir);
        Assert.That(state.EpochsDone, Is.EqualTo(1), "the end-of-epoch-1 checkpoint survived the fault");
        var resumed = Trainer.Run(other, data, Options, control: new TrainControl { Resume = state });
        Assert.That(resumed.Parameters, Is.EqualTo(once.Parameters));
    }
}
