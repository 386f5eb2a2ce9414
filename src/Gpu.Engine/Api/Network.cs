using System.Text.Json.Nodes;
using Gpu.Engine;
using Gpu.Engine.Analysis;
using Gpu.Engine.Data;
using Gpu.Engine.Inference;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;

namespace Gpu;

/// <summary>
/// A trained multilayer perceptron: made by <see cref="Train(Device, ImageData, TrainOptions, RunOptions)"/> (or resumed by <see cref="Resume"/>) or read by <see cref="Load"/>; it
/// evaluates, predicts and saves itself. A saved network is the folder <c>gpu train --output</c> writes
/// (model.npy and model.json), so <c>gpu eval</c> and <c>gpu predict</c> read it, and it reads theirs.
/// </summary>
public sealed class Network
{
    readonly MlpSpec spec;
    readonly float[] parameters;
    readonly JsonObject info;

    Network(MlpSpec spec, float[] parameters, JsonObject info, string? folder = null)
    {
        this.spec = spec; this.parameters = parameters; this.info = info; Folder = folder;
    }

    /// <summary>The folder the network was read from (<see cref="Load"/>), saved to (<see cref="Save"/>) or trained into (<see cref="RunOptions.Output"/>); null for a network only in memory.</summary>
    public string? Folder { get; private set; }

    /// <summary>
    /// Builds the network <paramref name="options"/> describe (hidden widths, activation, loss; the input
    /// and output sizes come from the data), initialises it from the seed and trains it on
    /// <paramref name="data"/>'s training images, holding out <see cref="TrainOptions.ValFraction"/> of them for
    /// validation, then scores the test images. Same options and data: the same network on the same device.
    /// </summary>
    /// <param name="device">The device to train on.</param>
    /// <param name="data">Training and test images.</param>
    /// <param name="options">Hyperparameters; null: the defaults (the W1 workload, 784-256-128-10, 10 epochs).</param>
    /// <param name="progress">Called after every epoch with its losses and accuracies.</param>
    /// <param name="cancel">Stops training after the current step; the call then throws <see cref="OperationCanceledException"/>.</param>
    /// <param name="initFrom">
    /// Start from these weights instead of the initialiser (<c>gpu train --init-from</c>): a model.npy of this network's
    /// length, or a safetensors file (<see cref="Export(string, ExportFormat)"/>'s, or a PyTorch Sequential of Linear layers) of its shapes.
    /// </param>
    /// <exception cref="UserError">A setting out of range, starting weights of another shape, or a device failure (the message says which and what to do).</exception>
    public static Network Train(Device device, ImageData data, TrainOptions? options = null, Action<TrainingProgress>? progress = null,
        CancellationToken cancel = default, string? initFrom = null) =>
        Train(device, data, options, new RunOptions { Progress = progress, Cancel = cancel, InitFrom = initFrom });

    /// <summary>
    /// Trains as the overload with a progress callback does, kept and
    /// watched as <paramref name="run"/> says: with <see cref="RunOptions.Output"/>, a checkpoint every epoch (so that
    /// <see cref="Resume"/> continues it bit for bit after a stop or a crash) and the model saved at the end. This is <c>gpu train</c>.
    /// </summary>
    /// <param name="device">The device to train on.</param>
    /// <param name="data">Training and test images (<see cref="ImageData.Open"/>'s, unread, are read as the run's data path needs).</param>
    /// <param name="options">Hyperparameters; null: the defaults.</param>
    /// <param name="run">The output folder, starting weights, what is said, progress and stop.</param>
    /// <exception cref="UserError">A setting out of range, a folder that holds another run, a divergence (exit code 3), a device failure (4).</exception>
    /// <exception cref="OperationCanceledException">Stopped by <see cref="RunOptions.Cancel"/>; the message says where, and how to continue.</exception>
    public static Network Train(Device device, ImageData data, TrainOptions? options, RunOptions run)
    {
        var fresh = new FreshRun(options ?? new TrainOptions(), data.Source, data.Limit, data.IsLoaded ? data.Pair : null, run.Output, run.Overwrite, run.InitFrom);
        return From(TrainingRun.Start(device.Compute, fresh, Hooks(run)));
    }

    /// <summary>
    /// Continues the run in <paramref name="folder"/> (a <see cref="RunOptions.Output"/> folder, or its checkpoint folder) from its
    /// last checkpoint with its own settings and data, on the device it trained on unless <paramref name="resume"/> names another:
    /// on the same device, the result is bit for bit that of an uninterrupted run. This is <c>gpu train --resume</c>.
    /// </summary>
    /// <param name="folder">The run's folder.</param>
    /// <param name="resume">What may change: epochs, device, the data's location, and after a divergence the rate, momentum and L2 penalty.</param>
    /// <param name="run">What is said, progress and stop (its Output, Overwrite and InitFrom are not used: the run's folder is <paramref name="folder"/>).</param>
    /// <exception cref="UserError">No checkpoint there, other data, nothing left to train, a divergence, a device failure.</exception>
    /// <exception cref="OperationCanceledException">Stopped by <see cref="RunOptions.Cancel"/>, with a new checkpoint.</exception>
    public static Network Resume(string folder, ResumeOptions? resume = null, RunOptions? run = null)
    {
        var r = resume ?? new ResumeOptions();
        var resumed = new ResumedRun(folder, r.Epochs, r.Device, r.Data?.Source(), r.LearningRate, r.Momentum, r.L2);
        return From(TrainingRun.Resume(resumed, Hooks(run ?? new RunOptions())));
    }

    static RunHooks Hooks(RunOptions run) => new(run.Say ?? (_ => { }),
        run.Progress == null ? null : (e, epochs) => run.Progress(new TrainingProgress(e, epochs)),
        run.Step == null ? null : p => run.Step(new StepReport(p)),
        run.Cancel, run.Verbose, run.Command);

    static Network From(FinishedRun f) => new(f.Result.Spec, f.Result.Parameters, f.Info, f.Folder);

    /// <summary>
    /// A fresh network as a run starts it, before any step: <paramref name="options"/>' hidden widths, activation and loss between
    /// <paramref name="inputs"/> and <paramref name="classes"/>, initialised from its seed, --init and --bias-init.
    /// </summary>
    /// <param name="inputs">Pixels per image.</param>
    /// <param name="classes">Classes.</param>
    /// <param name="options">The network's settings; null: the defaults.</param>
    public static Network Create(int inputs, int classes, TrainOptions? options = null)
    {
        var o = options ?? new TrainOptions();
        o.Validate();
        var spec = MlpSpec.FromHidden(inputs, o.Hidden, classes, o.Activation, o.Loss);
        return new Network(spec, spec.Initialize(o.Seed, o.BiasInit, o.Init), new JsonObject { ["seed"] = o.Seed });
    }

    /// <summary>Reads a saved network: a folder holding model.json and model.npy (<see cref="Save"/>, <c>gpu train --output</c>), or model.json itself.</summary>
    /// <param name="path">The folder, or its model.json.</param>
    /// <exception cref="UserError">Missing, damaged or inconsistent files (the message names the file).</exception>
    public static Network Load(string path)
    {
        var m = SavedModel.Read(path);
        return new Network(m.Spec, m.Parameters, m.Info, m.Folder);
    }

    /// <summary>Writes model.npy and model.json into <paramref name="folder"/> (created if missing; files of those names there are replaced, each atomically).</summary>
    /// <param name="folder">The folder to write into.</param>
    public void Save(string folder)
    {
        AtomicFile.EnsureFolder(folder);
        SavedModel.Write(folder, spec, parameters, info);
        Folder = folder;
    }

    /// <summary>
    /// Writes the network for other tools: <see cref="ExportFormat.Onnx"/> (input <c>pixels</c>, float32 [N, inputs], raw
    /// values 0..255 with the preprocessing inside the graph; outputs <c>probabilities</c> and <c>logits</c>) or
    /// <see cref="ExportFormat.Safetensors"/> (the tensors of a PyTorch Sequential of Linear layers: 0.weight, 0.bias, 2.weight, ...).
    /// The file is replaced atomically; its folder is created if missing.
    /// </summary>
    /// <param name="file">The file to write.</param>
    /// <param name="format">ONNX or safetensors.</param>
    /// <returns>A line saying what was written (the line <c>gpu export</c> prints).</returns>
    public string Export(string file, ExportFormat format) => ModelExport.Write(file, format, spec, parameters);

    /// <summary>Writes the network for other tools as <see cref="Export(string, ExportFormat)"/> does, into its <see cref="Folder"/>: model.onnx or model.safetensors.</summary>
    /// <param name="format">ONNX or safetensors.</param>
    /// <returns>A line saying what was written.</returns>
    public string Export(ExportFormat format) =>
        Export(ModelExport.DefaultPath(Folder ?? throw new UserError("this network has no folder (it was neither loaded nor saved); give the file to write"), format), format);

    /// <summary>
    /// Draws the first layer's weights as a PNG: each unit's weight row as a square tile (28 x 28 for MNIST-style images), scaled to
    /// its own largest |w| (black -max, grey 0, white +max), in a grid (<c>gpu weights</c>).
    /// </summary>
    /// <param name="file">The PNG to write; null: weights.png in <see cref="Folder"/>.</param>
    /// <param name="count">The first N units (0: all of the first layer).</param>
    /// <param name="columns">Tiles per row (0: a square-ish grid).</param>
    /// <returns>A line saying what was written.</returns>
    /// <exception cref="UserError">Inputs that are not a square image, or a count or column number out of range.</exception>
    public string DrawWeights(string? file = null, int count = 0, int columns = 0) =>
        Plots.DrawFirstLayer(spec, parameters, file ?? Path.Combine(Folder ?? throw new UserError("this network has no folder; give the PNG to write"), "weights.png"), count, columns);

    /// <summary>The numbers training recorded in model.json's metrics: test_loss, test_accuracy, and the last epoch's train and validation figures.</summary>
    public IReadOnlyDictionary<string, double> Metrics => (info["metrics"] as JsonObject ?? [])
        .Where(m => m.Value is JsonValue v && v.TryGetValue(out double _)).ToDictionary(m => m.Key, m => m.Value!.GetValue<double>());

    /// <summary>Layer widths, inputs first and classes last: [784, 256, 128, 10].</summary>
    public IReadOnlyList<int> Layers => Array.AsReadOnly(spec.Sizes);

    /// <summary>Number of weights and biases.</summary>
    public int ParameterCount => spec.ParameterCount;

    /// <summary>"784-256-128-10 relu, softmax-ce"</summary>
    public string Description => spec.Describe();

    /// <summary>The hidden layers' activation.</summary>
    public Activation Activation => spec.Activation;

    /// <summary>The loss it was trained with, which also says what its outputs are: softmax probabilities, or sigmoid outputs.</summary>
    public LossKind Loss => spec.Loss;

    /// <summary>The description (<see cref="Description"/>).</summary>
    public override string ToString() => Description;

    /// <summary>
    /// What training noticed was wrong with the run (model.json's "warnings"; <c>gpu train</c> prints each as a <c>warning:</c> line):
    /// e.g. that the network learned nothing (accuracy about chance, or a training loss that rose), where a lower learning rate
    /// helps. Empty for a healthy run and for networks saved by earlier versions.
    /// </summary>
    public IReadOnlyList<string> Warnings => (info["warnings"] as JsonArray)?.Select(w => w?.ToString() ?? "").ToArray() ?? [];

    /// <summary>The classes' names: Fashion-MNIST's for a network trained on Fashion-MNIST, else the class numbers.</summary>
    public IReadOnlyList<string> ClassNames => Gpu.Engine.Data.ClassNames.For((info["data"] as JsonObject)?.ToJsonString(), spec.Classes);

    /// <summary>
    /// A copy of the flat parameter vector as model.npy holds it: every layer's weights (row-major [out, in]),
    /// layer by layer, then every layer's biases.
    /// </summary>
    public float[] GetParameters() => (float[])parameters.Clone();

    /// <summary>
    /// Mean loss and accuracy over labelled images (the loss as training reports it, without the L2 term), with each class's
    /// count, correct predictions and the confusion matrix; <see cref="Evaluation.Save"/> writes them as <c>gpu eval</c> does.
    /// </summary>
    /// <param name="device">The device to run on.</param>
    /// <param name="images">Labelled images with this network's input size.</param>
    /// <param name="batchSize">Images per forward pass (1000 is what training evaluates with).</param>
    public Evaluation Evaluate(Device device, Images images, int batchSize = Batch)
    {
        var set = images.Set;
        if (!images.HasLabels) throw new UserError($"the images from {images.Origin} have no labels; give their labels to evaluate, or predict instead");
        if (batchSize < 1) throw new UserError($"--batch-size {batchSize}: give a whole number >= 1, e.g. 1000");
        CheckShape(set.Features, set.Classes);
        var r = Predictor.Run(device.Compute, spec, parameters, set.Pixels, set.Labels, batchSize);
        var report = r.Report(set.Labels);
        return new Evaluation(r.Loss!.Value, report.OverallAccuracy, r.Count)
        {
            Predictions = PredictionsOf(r),
            Confusion = Enumerable.Range(0, spec.Classes).Select(t => (IReadOnlyList<int>)Enumerable.Range(0, spec.Classes).Select(p => report.Confusion[t, p]).ToArray()).ToArray(),
            ClassNames = images.ClassNames, Model = Folder == null ? null : Path.GetFullPath(Folder), Layers = spec.ToString(), Data = images.Origin, Device = $"{device.Id} ({device.Name})",
        };
    }

    /// <summary>
    /// The test images of the data this network was trained on (model.json's data), or of <paramref name="files"/>: a data
    /// folder's test split, or <see cref="DataFiles.TestImages"/> (and labels) alone. Their shape must be this network's.
    /// </summary>
    /// <param name="files">Other data; null: the training data's.</param>
    public Images TestImages(DataFiles? files = null)
    {
        Dataset test;
        string origin;
        if (files is { TestImages: { } images, TrainImages: null })
        {
            if (files.TrainLabels != null) throw new UserError("--train-labels needs --train-images");
            origin = files.TestLabels == null ? Path.GetFullPath(images) : $"{Path.GetFullPath(images)} with labels {Path.GetFullPath(files.TestLabels)}";
            test = TableData.Read(images, files.TestLabels, "test", spec.Classes, range: PixelRanges.Parse(files.PixelRange));
        }
        else
        {
            var from = files?.Source() ?? SavedModel.DataOf(info, Folder ?? ".")
                ?? throw new UserError($"{(Folder == null ? "this network" : Path.Combine(Folder, SavedModel.JsonName))} names no training data; give --data DIR or --test-images FILE");
            origin = from.Describe();
            test = from.LoadTest(spec.Classes);
        }
        if (test.Features != spec.Inputs || test.Classes != spec.Classes)
            throw new UserError($"the model {spec} takes {spec.Inputs} inputs and {spec.Classes} classes, but the test images from {origin} have " +
                $"{test.Features} pixels and {test.Classes} classes; give data of the kind it was trained on");
        // the training data's class names are the network's own (model.json's record of its data names Fashion-MNIST where that was it)
        return new Images(test, origin, namesFrom: files == null ? (info["data"] as JsonObject)?.ToJsonString() ?? origin : null);
    }

    /// <summary>
    /// The training images of the data this network was trained on (model.json's data), or of <paramref name="files"/> (a data folder, or
    /// training and test files), with this network's shape.
    /// </summary>
    /// <param name="files">Other data; null: the training data's.</param>
    public Images TrainImages(DataFiles? files = null)
    {
        string named = Folder ?? "this network";
        var from = files?.Source() ?? SavedModel.DataOf(info, Folder ?? ".") ?? throw new UserError($"{named}: the model does not name its training data; give --data");
        if (from.Folder == null && from.TrainImages == null) throw new UserError($"{named}: the model names only test images; give --data");
        string origin = from.Describe();
        var train = from.Load().Train;
        if (train.Features != spec.Inputs || train.Classes != spec.Classes)
            throw new UserError($"the network takes {spec.Inputs} inputs and {spec.Classes} classes but {origin} has {train.Features} and {train.Classes}; give the --data it was trained on");
        return new Images(train, origin);
    }

    /// <summary>A seeded sample of <paramref name="count"/> parameter indices (all of them, in order, when <paramref name="count"/> is at least <see cref="ParameterCount"/>), every layer's weights and biases represented: what <see cref="CheckGradients"/> checks.</summary>
    public IReadOnlyList<int> SampleParameters(int count, ulong seed = 1) => GradientCheck.Sample(spec, count, seed);

    /// <summary>"layer 1 W" or "layer 2 b": the part of the network the parameter at <paramref name="index"/> belongs to.</summary>
    public string PartOf(int index) => Checked(index, 0, 0, 0, false).Part;

    /// <summary>
    /// The device's analytic gradient of the data loss (no L2 term) on the first <paramref name="examples"/> of <paramref name="images"/>,
    /// at the parameters <paramref name="indices"/> (<see cref="SampleParameters"/>), against float64 central differences
    /// (f(p+e) - f(p-e)) / 2e, as scipy.optimize.check_grad does (<c>gpu gradcheck</c>).
    /// </summary>
    /// <param name="device">The device whose kernels are checked.</param>
    /// <param name="images">Labelled images of this network's shape.</param>
    /// <param name="examples">How many of them the loss is averaged over.</param>
    /// <param name="indices">The parameters to check.</param>
    /// <param name="epsilon">The central difference's step.</param>
    /// <param name="progress">Called with (done, total) as the parameters are checked.</param>
    public GradientReport CheckGradients(Device device, Images images, int examples, IReadOnlyList<int> indices, double epsilon = GradientReport.DefaultEpsilon,
        Action<int, int>? progress = null)
    {
        var set = images.Set;
        if (examples < 1) throw new UserError($"--examples {examples}: give a whole number >= 1");
        if (examples > set.Count) throw new UserError($"--examples {examples}: {images.Origin} has only {set.Count} training images");
        CheckShape(set.Features, set.Classes);
        var r = GradientCheck.Run(device.Compute, spec, parameters, set.Features32(0, examples), set.Labels[..examples], [.. indices], epsilon, progress: progress);
        return new GradientReport(r, r.Parameters.Select(p => Checked(p.Index, p.Analytic, p.Numeric, p.RelativeError, p.Kink)).ToArray());
    }

    CheckedGradient Checked(int index, double analytic, double numeric, double error, bool kink)
    {
        var at = ParameterLocation.Of(spec, index);
        return new CheckedGradient(index, at.Layer + 1, at.IsWeight, at.Row, at.Col, analytic, numeric, error, kink);
    }

    /// <summary>
    /// Reads images to predict: an IDX, .npy ([N, pixels] or [N, h, w]; uint8, or floats as <paramref name="pixelRange"/> says) or
    /// .csv file (a label column first when it has one), with this network's input size, and their labels from
    /// <paramref name="labels"/> (IDX or .npy) where given.
    /// </summary>
    /// <param name="file">The images.</param>
    /// <param name="labels">Their labels, or null.</param>
    /// <param name="pixelRange">auto, 0-255 or 0-1, as <see cref="DataFiles.PixelRange"/>.</param>
    public Images ReadImages(string file, string? labels = null, string pixelRange = "auto")
    {
        var (pixels, count, read, scaling) = TableData.ReadImages(file, labels, spec.Inputs, spec.Classes, PixelRanges.Parse(pixelRange));
        var set = new Dataset(file, pixels, read ?? new int[count], spec.Inputs, spec.Classes) { Scaling = scaling };
        return new Images(set, labels == null ? file : $"{file} with labels {labels}", read != null);
    }

    /// <summary>The predicted class and the class probabilities of each image.</summary>
    /// <param name="device">The device to run on.</param>
    /// <param name="images">Images with this network's input size (their labels are not used).</param>
    public IReadOnlyList<Prediction> Predict(Device device, Images images) => Predict(device, images.Pixels.Span);

    /// <summary>
    /// The predicted class and the class probabilities of each image in <paramref name="pixels"/>: uint8, row-major
    /// [images, inputs], preprocessed as in training (x / 255 - 0.5).
    /// </summary>
    /// <param name="device">The device to run on.</param>
    /// <param name="pixels">Whole images of <see cref="Layers"/>[0] pixels each.</param>
    public IReadOnlyList<Prediction> Predict(Device device, ReadOnlySpan<byte> pixels)
    {
        if (pixels.Length == 0 || pixels.Length % spec.Inputs != 0)
            throw new UserError($"{pixels.Length} pixels are not whole images of {spec.Inputs} pixels; give [images, {spec.Inputs}] uint8 pixels");
        return PredictionsOf(Predictor.Run(device.Compute, spec, parameters, pixels.ToArray(), null, Batch));
    }

    /// <summary>Each image's predicted class and probabilities from one forward pass.</summary>
    static Prediction[] PredictionsOf(InferenceResult r) =>
        Enumerable.Range(0, r.Count).Select(i => new Prediction(r.Predicted(i), r.Probabilities(i))).ToArray();

    /// <summary>Images per forward pass.</summary>
    const int Batch = 1000;

    void CheckShape(int features, int classes)
    {
        if (features != spec.Inputs || classes > spec.Classes)
            throw new UserError($"the images have {features} pixels and {classes} classes; this network ({spec}) takes {spec.Inputs} pixels and {spec.Classes} classes");
    }
}

/// <summary>One finished epoch, as <see cref="Network.Train(Device, ImageData, TrainOptions, RunOptions)"/> reports it; <see cref="ToString"/> is the line <c>gpu train</c> prints.</summary>
public sealed class TrainingProgress
{
    readonly EpochStats stats;
    readonly int epochs;

    internal TrainingProgress(EpochStats stats, int epochs) { this.stats = stats; this.epochs = epochs; }

    /// <summary>The epoch just finished (1-based).</summary>
    public int Epoch => stats.Epoch;

    /// <summary>Epochs in the run.</summary>
    public int Epochs => epochs;

    /// <summary>Mean training loss over the epoch's steps.</summary>
    public double TrainLoss => stats.TrainLoss;

    /// <summary>Training accuracy over the epoch's steps.</summary>
    public double TrainAccuracy => stats.TrainAccuracy;

    /// <summary>Loss on the held-out validation images (null without a validation split).</summary>
    public double? ValidationLoss => stats.ValLoss;

    /// <summary>Accuracy on the held-out validation images (null without a validation split).</summary>
    public double? ValidationAccuracy => stats.ValAccuracy;

    /// <summary>Seconds the epoch's training steps took.</summary>
    public double Seconds => stats.TrainSeconds;

    /// <summary>Training images per second over the epoch.</summary>
    public double SamplesPerSecond => stats.SamplesPerSecond;

    /// <summary>"epoch   1/10 loss 0.518 acc 0.812 | val 0.360 acc 0.871 | 1.0s 53k samples/s"</summary>
    public override string ToString() => RunFiles.EpochLine(stats, epochs);
}

/// <summary>A network's score on labelled images.</summary>
/// <param name="Loss">Mean loss per image (cross-entropy, or 1/2 the sum of squares for sigmoid-sse).</param>
/// <param name="Accuracy">Share of images whose predicted class is their label.</param>
/// <param name="Count">Images scored.</param>
public sealed record Evaluation(double Loss, double Accuracy, int Count)
{
    /// <summary>Each image's predicted class and probabilities, from the same forward pass as the figures.</summary>
    public IReadOnlyList<Prediction> Predictions { get; init; } = [];
    /// <summary>Confusion[true class][predicted class]: the number of images.</summary>
    public IReadOnlyList<IReadOnlyList<int>> Confusion { get; init; } = [];
    /// <summary>The classes' names, as the data names them.</summary>
    public IReadOnlyList<string> ClassNames { get; init; } = [];
    /// <summary>The network's folder (null: in memory only), its layers, the data and the device, as eval.json records them.</summary>
    public string? Model { get; init; }
    /// <summary>"784-256-128-10 relu, softmax-ce"</summary>
    public string Layers { get; init; } = "";
    /// <summary>Where the images came from.</summary>
    public string Data { get; init; } = "";
    /// <summary>The device it ran on: "cpu (ILGPU CPU accelerator)".</summary>
    public string Device { get; init; } = "";

    /// <summary>Images of class <paramref name="c"/>.</summary>
    public int ClassCount(int c) => Confusion[c].Sum();
    /// <summary>Images of class <paramref name="c"/> predicted as it.</summary>
    public int ClassCorrect(int c) => Confusion[c][c];
    /// <summary>Share of class <paramref name="c"/>'s images predicted as it; null without such images.</summary>
    public double? ClassAccuracy(int c) => ClassCount(c) == 0 ? null : (double)ClassCorrect(c) / ClassCount(c);

    /// <summary>Writes eval.json (these figures, per class and the confusion matrix) and confusion.csv into <paramref name="folder"/> (created if missing), each atomically; returns the folder.</summary>
    public string Save(string folder)
    {
        folder = AtomicFile.EnsureFolder(folder);
        int classes = Confusion.Count;
        var json = new JsonObject
        {
            ["model"] = Model, ["layers"] = Layers, ["data"] = Data, ["device"] = Device, ["loss"] = Loss, ["accuracy"] = Accuracy, ["count"] = Count,
            ["classes"] = new JsonArray(Enumerable.Range(0, classes).Select(c => (JsonNode)new JsonObject
            {
                ["class"] = c, ["name"] = ClassNames[c], ["count"] = ClassCount(c), ["correct"] = ClassCorrect(c), ["accuracy"] = ClassAccuracy(c),
            }).ToArray()),
            ["confusion"] = new JsonArray(Confusion.Select(row => (JsonNode)new JsonArray(row.Select(n => (JsonNode)n).ToArray())).ToArray()),
            ["confusion_layout"] = "confusion[true class][predicted class] = number of images",
        };
        AtomicFile.WriteAllText(Path.Combine(folder, "eval.json"), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        static string Csv(string field) => field.Contains(',') || field.Contains('"') ? $"\"{field.Replace("\"", "\"\"")}\"" : field;
        var csv = new System.Text.StringBuilder("true\\predicted," + string.Join(",", ClassNames.Select(Csv)) + "\n");
        for (int t = 0; t < classes; t++) csv.Append(Csv(ClassNames[t])).Append(',').AppendJoin(",", Confusion[t]).Append('\n');
        AtomicFile.WriteAllText(Path.Combine(folder, "confusion.csv"), csv.ToString());
        return folder;
    }
}

/// <summary>One image's prediction.</summary>
/// <param name="Class">The predicted class: the largest output.</param>
/// <param name="Probabilities">Softmax of the outputs for a softmax-ce network; for a sigmoid-sse network, the sigmoid outputs, each in [0, 1], not summing to 1.</param>
public sealed record Prediction(int Class, IReadOnlyList<double> Probabilities)
{
    /// <summary>
    /// Writes <paramref name="predictions"/> as CSV (<c>gpu predict --output</c>), atomically, its folder created if missing: a row per
    /// image with index, predicted, one column per class named <paramref name="prefix"/> and the class number, and the label where
    /// <paramref name="labels"/> are given.
    /// </summary>
    public static void WriteCsv(string path, IReadOnlyList<Prediction> predictions, IReadOnlyList<int>? labels, string prefix = "p")
    {
        AtomicFile.EnsureFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var sb = new System.Text.StringBuilder("index,predicted");
        int classes = predictions.Count == 0 ? 0 : predictions[0].Probabilities.Count;
        for (int c = 0; c < classes; c++) sb.Append(System.Globalization.CultureInfo.InvariantCulture, $",{prefix}{c}");
        sb.Append(labels == null ? "\n" : ",label\n");
        for (int i = 0; i < predictions.Count; i++)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"{i},{predictions[i].Class}");
            foreach (var v in predictions[i].Probabilities) sb.Append(',').Append(v.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
            sb.Append(labels == null ? "\n" : $",{labels[i]}\n");
        }
        AtomicFile.WriteAllText(path, sb.ToString());
    }
}
