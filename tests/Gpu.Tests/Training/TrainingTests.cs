using Gpu.Engine.Data;
using Gpu.Engine.Inference;
using Gpu.Engine.Model;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu.Tests.Training;

/// <summary>Short real runs on slices of Fashion-MNIST, on the CPU accelerator and the OpenCL device (each at O2, the engine's level).</summary>
[TestFixtureSource(typeof(DeviceCase), nameof(DeviceCase.Trainers))]
public sealed class TrainingTests(DeviceCase deviceCase)
{
    ComputeDevice Open() => deviceCase.OpenOrIgnore();

    static DataPair Slice(int train, int test)
    {
        var full = Idx.ReadFolder(Repo.FashionMnist);
        return full with { Train = full.Train.Take(train), Test = full.Test.Take(test) };
    }

    [Test]
    public void Six_thousand_images_two_epochs_learn_well_above_chance()
    {
        using var device = Open();
        var o = new TrainOptions { Hidden = [256, 128], Epochs = 2, BatchSize = 32, LearningRate = 0.02f, Momentum = 0.9f, Seed = 3 };
        var r = Trainer.Run(device, Slice(6000, 2000), o);
        TestContext.Out.WriteLine($"test accuracy {r.Test.Accuracy:F4}, val accuracy {r.History[^1].ValAccuracy:F4}");
        Assert.That(r.Test.Accuracy, Is.GreaterThanOrEqualTo(0.80), "held-out (test) accuracy");
        Assert.That(r.History[^1].ValAccuracy, Is.GreaterThanOrEqualTo(0.78), "validation accuracy");
        Assert.That(r.History[1].TrainLoss, Is.LessThan(r.History[0].TrainLoss), "the loss falls");
        Assert.That(r.History.Sum(h => h.TrainSeconds), Is.GreaterThan(0));
    }

    [Test]
    public void The_same_seed_gives_bit_identical_results_and_another_seed_does_not()
    {
        using var device = Open();
        var data = Slice(1500, 500);
        var o = new TrainOptions { Hidden = [33, 17], Epochs = 2, BatchSize = 50, Seed = 11 };
        var a = Trainer.Run(device, data, o);
        var b = Trainer.Run(device, data, o);
        var c = Trainer.Run(device, data, o with { Seed = 12 });
        Assert.That(b.Parameters, Is.EqualTo(a.Parameters), "same seed, same parameters, bit for bit");
        Assert.That(b.Test.Loss, Is.EqualTo(a.Test.Loss));
        Assert.That(b.History.Select(h => h.TrainLoss), Is.EqualTo(a.History.Select(h => h.TrainLoss)));
        Assert.That(c.Parameters, Is.Not.EqualTo(a.Parameters), "another seed differs");
        var untested = Trainer.Run(device, data, o, control: new TrainControl { EvaluateTest = false });
        Assert.That(untested.Parameters, Is.EqualTo(a.Parameters), "skipping the test set changes nothing else");
        Assert.That(untested.History.Select(h => h.ValLoss), Is.EqualTo(a.History.Select(h => h.ValLoss)));
        Assert.That((untested.Test.Count, double.IsNaN(untested.Test.Accuracy)), Is.EqualTo((0, true)), "no test figures when skipped");
    }

    [Test]
    public void Streamed_and_resident_data_paths_give_bit_identical_training()
    {
        using var device = Open();
        var data = Slice(1000, 300);
        var o = new TrainOptions { Hidden = [20], Epochs = 2, BatchSize = 96, Seed = 5 };   // 1000 rows: a partial last batch
        var resident = Trainer.Run(device, data, o with { DataPath = DataPath.Resident });
        var streamed = Trainer.Run(device, data, o with { DataPath = DataPath.Stream });
        var residentShifted = Trainer.Run(device, data, o with { DataPath = DataPath.Resident, Shift = 2 });
        var streamedShifted = Trainer.Run(device, data, o with { DataPath = DataPath.Stream, Shift = 2 });
        Assert.That(streamedShifted.Parameters, Is.EqualTo(residentShifted.Parameters), "the same shifts on both paths");
        Assert.That(residentShifted.Parameters, Is.Not.EqualTo(resident.Parameters), "shifting changes training");
        Assert.That(resident.DataPath, Is.EqualTo(DataPath.Resident));
        Assert.That(streamed.DataPath, Is.EqualTo(DataPath.Stream));
        Assert.That(streamed.Parameters, Is.EqualTo(resident.Parameters));
        Assert.That(streamed.Test, Is.EqualTo(resident.Test));
    }

    [Test]
    public void Auto_keeps_fashion_mnist_resident()
    {
        using var device = Open();
        Assert.That(Trainer.ChooseDataPath(DataPath.Auto, device, Slice(100, 100)), Is.EqualTo(DataPath.Resident));
        Assert.That(Trainer.ChooseDataPath(DataPath.Stream, device, Slice(100, 100)), Is.EqualTo(DataPath.Stream));
    }

    [Test]
    public void The_scheduler_cuts_each_epoch_into_whole_batches_and_a_partial_last_one()
    {
        var s = new MinibatchScheduler(1000, 128, 5);
        var batches = s.Batches();
        Assert.That(batches, Has.Count.EqualTo(8).And.Count.EqualTo(s.StepsPerEpoch));
        Assert.That(batches[^1], Is.EqualTo((896, 104)));
        Assert.That(batches.Select(b => b.Offset), Is.EqualTo(Enumerable.Range(0, 8).Select(i => 128 * i)), "contiguous");
        Assert.That(batches.Sum(b => b.Rows), Is.EqualTo(1000));
        Assert.That(s.Batches(fromStep: 6), Is.EqualTo(batches.Skip(6)), "a resumed epoch: the batches not yet done");
        Assert.That(MinibatchScheduler.Cut(1024, 128).Select(b => b.Rows), Is.EqualTo(Enumerable.Repeat(128, 8)), "no partial batch when it divides");
        Assert.That(s.EpochOrder(1).OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 1000)), "a permutation");
        Assert.That(s.EpochOrder(1), Is.Not.EqualTo(s.EpochOrder(2)), "a new shuffle every epoch");
        Assert.That(new MinibatchScheduler(1000, 128, 5).EpochOrder(3), Is.EqualTo(s.EpochOrder(3)), "seeded");
    }

    /// <summary>
    /// Through <see cref="Trainer.Run"/>, on either data path: 1,000 training rows in batches of 128 end
    /// with a batch of 104, and changing only the labels of those 104 rows changes the trained network.
    /// </summary>
    [TestCase(DataPath.Resident)]
    [TestCase(DataPath.Stream)]
    public void The_last_partial_batch_is_trained_on(DataPath path)
    {
        using var device = Open();
        var data = Slice(1000, 100);
        var o = new TrainOptions { Hidden = [16], Epochs = 1, BatchSize = 128, ValFraction = 0, Schedule = LrSchedule.Constant, Seed = 8, DataPath = path };
        var last = new MinibatchScheduler(1000, 128, o.Seed).EpochOrder(1)[896..];   // the rows of the epoch's last, partial batch
        var labels = (int[])data.Train.Labels.Clone();
        foreach (int row in last) labels[row] = (labels[row] + 1) % data.Train.Classes;
        var relabelled = data with { Train = new Dataset("relabelled", data.Train.Pixels, labels, data.Train.Features, data.Train.Classes) };

        var a = Trainer.Run(device, data, o);
        var again = Trainer.Run(device, data, o);
        var b = Trainer.Run(device, relabelled, o);
        Assert.That(again.Parameters, Is.EqualTo(a.Parameters), "deterministic, so a difference comes from the labels");
        Assert.That(b.Parameters, Is.Not.EqualTo(a.Parameters), "the last 104 rows are trained on");
        Assert.That(b.History[0].TrainLoss, Is.Not.EqualTo(a.History[0].TrainLoss), "and counted in the epoch's loss");
    }

    /// <summary>What <see cref="Trainer.TrainEpoch"/> hands a real batch source, and the rows it gets back: every row of the epoch once.</summary>
    [TestCase(DataPath.Resident)]
    [TestCase(DataPath.Stream)]
    public void An_epoch_trains_every_row_once_in_the_schedulers_batches(DataPath path)
    {
        using var device = Open();
        var train = Slice(1000, 10).Train;
        var o = new TrainOptions { Hidden = [8], Epochs = 1, BatchSize = 128, Seed = 8 };
        var kernels = KernelSet.For(device);
        var spec = MlpSpec.FromHidden(train.Features, o.Hidden, train.Classes, o.Activation, o.Loss);
        using var model = new DeviceMlp(kernels, spec, o.BatchSize);
        model.SetParameters(spec.Initialize(o.Seed));
        var scheduler = new MinibatchScheduler(train.Count, o.BatchSize, o.Seed);
        using var source = new RecordingSource(path == DataPath.Stream
            ? new StreamedDataset(device.Accelerator, kernels.Stream, train, o.BatchSize) : new DeviceDataset(kernels, train, o.BatchSize));
        using var stepper = new TrainingStep(kernels, model, source, o);

        long step = Trainer.TrainEpoch(stepper, scheduler, 1, o, 0, scheduler.StepsPerEpoch);
        Assert.That(step, Is.EqualTo(8));
        Assert.That(source.Passes.Single(), Is.EqualTo(scheduler.Batches()), "the scheduler's cut, handed over up front");
        Assert.That(source.Rows, Is.EqualTo(new[] { 128, 128, 128, 128, 128, 128, 128, 104 }), "rows gathered per step");
        var (lossSum, _) = model.TakeMetrics();
        Assert.That(lossSum / 1000, Is.InRange(0.5, 5.0), "the loss summed over 1,000 rows");

        source.Passes.Clear(); source.Rows.Clear();
        Trainer.TrainEpoch(stepper, scheduler, 2, o, step, 2L * scheduler.StepsPerEpoch, startStep: 6);
        Assert.That(source.Passes.Single(), Is.EqualTo(new[] { (768, 128), (896, 104) }), "a resumed epoch asks only for the batches not yet done");
        Assert.That(source.Rows, Is.EqualTo(new[] { 128, 104 }));
    }

    /// <summary>
    /// The streamed path's device objects live on the thread that drives the accelerator: every marker is created
    /// and disposed there (a CUDA event destroyed on a thread without its context fails), and the producer thread,
    /// which waits on them, has the accelerator bound.
    /// </summary>
    [Test]
    public void The_streamed_path_keeps_its_markers_on_the_callers_thread_and_binds_the_producer()
    {
        using var device = Open();
        var train = Slice(1000, 10).Train;
        var o = new TrainOptions { Hidden = [8], Epochs = 2, BatchSize = 64, Seed = 8 };
        var kernels = KernelSet.For(device);
        var spec = MlpSpec.FromHidden(train.Features, o.Hidden, train.Classes, o.Activation, o.Loss);
        using var model = new DeviceMlp(kernels, spec, o.BatchSize);
        model.SetParameters(spec.Initialize(o.Seed));
        var scheduler = new MinibatchScheduler(train.Count, o.BatchSize, o.Seed);
        var source = new StreamedDataset(device.Accelerator, kernels.Stream, train, o.BatchSize);
        using (var stepper = new TrainingStep(kernels, model, source, o))
        {
            long step = Trainer.TrainEpoch(stepper, scheduler, 1, o, 0, 2L * scheduler.StepsPerEpoch);
            Trainer.TrainEpoch(stepper, scheduler, 2, o, step, 2L * scheduler.StepsPerEpoch);   // the second pass retires the first one's markers
        }
        model.TakeMetrics();
        source.Dispose();
        Assert.That(source.ProducerBound, Is.True, "the producer thread has the accelerator bound");
        Assert.That(source.MarkerThreads, Has.Count.EqualTo(4 * scheduler.StepsPerEpoch), "each step's marker created once and disposed once");
        Assert.That(source.MarkerThreads.Distinct(), Is.EqualTo(new[] { Environment.CurrentManagedThreadId }), "all on the caller's thread");
    }

    /// <summary>A batch source that records the batches it is given and the rows it hands out.</summary>
    sealed class RecordingSource(IBatchSource inner) : IBatchSource
    {
        public readonly List<List<(int Offset, int Rows)>> Passes = [];
        public readonly List<int> Rows = [];
        public Dataset Host => inner.Host;

        public void BeginPass(int[] order, IReadOnlyList<(int Offset, int Rows)> batches, Augmentation? augment = null)
        {
            Passes.Add(batches.ToList());
            inner.BeginPass(order, batches, augment);
        }

        public (ILGPU.ArrayView<float> X, ILGPU.ArrayView<int> Y, int Rows) Stage()
        {
            var b = inner.Stage();
            Rows.Add(b.Rows);
            return b;
        }

        public void Load() => inner.Load();

        public void Dispose() => inner.Dispose();
    }

    [Test]
    public void A_device_failure_while_predicting_is_one_line_ending_with_the_callers_advice()
    {
        using var device = Open();
        device.Accelerator.Dispose();   // a device that is gone: its kernel launches fail
        var spec = new MlpSpec([784, 8, 10]);
        var test = Slice(10, 20).Test;
        var e = Assert.Throws<Gpu.Engine.UserError>(() => Predictor.Run(device, spec, spec.Initialize(1), test.Pixels, test.Labels, 10, faultAdvice: "retry elsewhere"))!;
        Assert.That(e.ExitCode, Is.EqualTo(4));
        Assert.That(e.Message, Does.StartWith($"device error on {device.Id} ({device.Name}) while running the model: ").And.EndWith("; retry elsewhere"));
    }

    [TestCase(OptimizerKind.Adam, 0.002f)]
    [TestCase(OptimizerKind.AdamW, 0.002f)]
    [TestCase(OptimizerKind.Nesterov, 0.02f)]
    public void Every_optimizer_learns(OptimizerKind kind, float lr)
    {
        using var device = Open();
        var o = new TrainOptions { Hidden = [64], Epochs = 2, BatchSize = 32, LearningRate = lr, Optimizer = kind, Seed = 2 };
        var r = Trainer.Run(device, Slice(3000, 1000), o);
        Assert.That(r.Test.Accuracy, Is.GreaterThan(0.72), $"{kind} test accuracy");
        Assert.That(r.History[1].TrainLoss, Is.LessThan(r.History[0].TrainLoss));
    }

    [Test]
    public void Sigmoid_outputs_with_squared_error_learn()
    {
        using var device = Open();
        var o = new TrainOptions { Hidden = [64], Activation = Gpu.Engine.Settings.Activation.Sigmoid, Loss = Gpu.Engine.Settings.LossKind.SigmoidSquaredError,
            Epochs = 2, BatchSize = 10, LearningRate = 3f, Momentum = 0f, L2 = 0f, Init = Gpu.Engine.Settings.InitKind.Uniform, Seed = 2 };
        var r = Trainer.Run(device, Slice(3000, 1000), o);
        Assert.That(r.Test.Accuracy, Is.GreaterThan(0.70));
    }

    [Test]
    public void Early_stopping_restores_the_best_epoch()
    {
        using var device = Open();
        // a learning rate high enough that the validation loss stops improving within a few epochs on 1,000 images
        var o = new TrainOptions { Hidden = [64], Epochs = 30, BatchSize = 16, LearningRate = 0.1f, Schedule = LrSchedule.Constant, Patience = 2, Seed = 4 };
        var r = Trainer.Run(device, Slice(1000, 500), o);
        Assert.That(r.StoppedEarlyAtBestEpoch, Is.Not.Null, "stopped early");
        int best = r.StoppedEarlyAtBestEpoch!.Value;
        Assert.That(r.History, Has.Count.EqualTo(best + 2), "two epochs without improvement after the best");
        Assert.That(r.History.Min(h => h.ValLoss!.Value), Is.EqualTo(r.History[best - 1].ValLoss!.Value));
        // the returned weights are the best epoch's: retraining exactly that many epochs gives the same parameters
        var exact = Trainer.Run(device, Slice(1000, 500), o with { Epochs = 30, Patience = 0 } with { Epochs = best } with { Schedule = LrSchedule.Constant });
        Assert.That(r.Parameters, Is.EqualTo(exact.Parameters));
    }

    [Test]
    public void Learning_rate_schedules()
    {
        var o = new TrainOptions { LearningRate = 0.1f, Epochs = 10 };
        long total = 100;   // 10 steps per epoch
        Assert.That(Trainer.LearningRateAt(o with { Schedule = LrSchedule.Constant }, 57, total, 10), Is.EqualTo(0.1f));
        Assert.That(Trainer.LearningRateAt(o, 0, total, 10), Is.EqualTo(0.1f));
        Assert.That(Trainer.LearningRateAt(o, 50, total, 10), Is.EqualTo(0.05f).Within(1e-6));
        Assert.That(Trainer.LearningRateAt(o, 99, total, 10), Is.LessThan(0.0001f));
        var step = o with { Schedule = LrSchedule.Step, StepEvery = 3, StepGamma = 0.5f };
        Assert.That(Trainer.LearningRateAt(step, 29, total, 10), Is.EqualTo(0.1f));
        Assert.That(Trainer.LearningRateAt(step, 30, total, 10), Is.EqualTo(0.05f).Within(1e-7));
        Assert.That(Trainer.LearningRateAt(step, 95, total, 10), Is.EqualTo(0.0125f).Within(1e-7));
        var warm = o with { Schedule = LrSchedule.Constant, WarmupEpochs = 2 };
        Assert.That(Trainer.LearningRateAt(warm, 0, total, 10), Is.EqualTo(0.005f).Within(1e-7));
        Assert.That(Trainer.LearningRateAt(warm, 9, total, 10), Is.EqualTo(0.05f).Within(1e-7));
        Assert.That(Trainer.LearningRateAt(warm, 19, total, 10), Is.EqualTo(0.1f).Within(1e-7));
        Assert.That(Trainer.LearningRateAt(warm with { Schedule = LrSchedule.Cosine }, 20, total, 10), Is.EqualTo(0.1f).Within(1e-7), "cosine starts after the warm-up");
        var warmStep = warm with { Schedule = LrSchedule.Step, StepEvery = 3, StepGamma = 0.5f };
        Assert.That(Trainer.LearningRateAt(warmStep, 49, total, 10), Is.EqualTo(0.1f), "the step schedule counts epochs from the end of the warm-up");
        Assert.That(Trainer.LearningRateAt(warmStep, 50, total, 10), Is.EqualTo(0.05f).Within(1e-7));
    }

    [Test]
    public void Glorot_and_uniform_initialisation_limits()
    {
        var spec = new Gpu.Engine.Model.MlpSpec([784, 100, 10]);
        var glorot = spec.Initialize(9, 0f, Gpu.Engine.Settings.InitKind.Glorot).Take(784 * 100).ToArray();
        var uniform = spec.Initialize(9, 0.5f, Gpu.Engine.Settings.InitKind.Uniform);
        double g = Math.Sqrt(6.0 / 884), u = 1 / Math.Sqrt(784);
        Assert.That(glorot.Max(), Is.LessThanOrEqualTo(g).And.GreaterThan(0.95 * g));
        Assert.That(uniform.Take(78400).Max(), Is.LessThanOrEqualTo(u).And.GreaterThan(0.95 * u));
        Assert.That(uniform.Skip(spec.WeightCount), Is.All.EqualTo(0.5f));
    }

    [Test]
    public void Initialisation_is_seeded_he_uniform_with_bias_001()
    {
        var spec = new Gpu.Engine.Model.MlpSpec([784, 256, 10]);
        var p = spec.Initialize(9);
        Assert.That(spec.Initialize(9), Is.EqualTo(p));
        Assert.That(spec.Initialize(10), Is.Not.EqualTo(p));
        double limit0 = Math.Sqrt(6.0 / 784);
        var w0 = p.Take(256 * 784).ToArray();
        Assert.That(w0.Max(), Is.LessThanOrEqualTo(limit0).And.GreaterThan(0.95 * limit0));
        Assert.That(w0.Min(), Is.GreaterThanOrEqualTo(-limit0).And.LessThan(-0.95 * limit0));
        Assert.That(p.Skip(spec.WeightCount), Is.All.EqualTo(0.01f));
        Assert.That(spec.ParameterCount, Is.EqualTo(784 * 256 + 256 * 10 + 256 + 10));
        Assert.That(spec.BiasOffset(0), Is.EqualTo(spec.WeightCount), "all weights first, then all biases");
    }
}
