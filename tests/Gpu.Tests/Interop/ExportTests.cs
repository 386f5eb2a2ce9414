using System.Globalization;
using System.Text.Json.Nodes;
using Gpu.Engine.Data;
using Gpu.Engine.Inference;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static Gpu.Tests.CliRun;
using static Gpu.Tests.TestFiles;

namespace Gpu.Tests.Interop;

/// <summary>
/// gpu export checked by the real other side: the ONNX file run by ONNX Runtime against gpu predict (same
/// classes, probabilities within 1e-5) and the safetensors file loaded by PyTorch without the safetensors
/// package (same outputs as the engine).
/// </summary>
public sealed class ExportTests : TempFolderTest
{
    static Dataset testSet = null!;

    [OneTimeSetUp]
    public static void ReadTestSet() => testSet = Idx.ReadFolder(Repo.FashionMnist).Test;

    /// <summary>A model folder holding a seeded network (weights as training starts them, biases 0.05).</summary>
    string SeededModel(string name, Activation activation, LossKind loss, params int[] hidden)
    {
        var spec = MlpSpec.FromHidden(784, hidden, 10, activation, loss);
        string folder = Path.Combine(dir, name);
        Directory.CreateDirectory(folder);
        SavedModel.Write(folder, spec, spec.Initialize(7, 0.05f, InitKind.He), new JsonObject());
        return folder;
    }

    static float[] RawPixels(int count) => testSet.Pixels.Take(count * 784).Select(b => (float)b).ToArray();

    /// <summary>ONNX Runtime's outputs (probabilities, logits) for the first <paramref name="count"/> test images.</summary>
    static (float[] Probabilities, float[] Logits) RunOnnx(string path, int count)
    {
        using var session = new InferenceSession(path);
        Assert.That(session.InputMetadata[OnnxModel.Input].Dimensions, Is.EqualTo(new[] { -1, 784 }), "dynamic batch dimension");
        Assert.That(session.ModelMetadata.CustomMetadataMap["preprocessing"], Does.Contain("/ 255 - 0.5").Or.Contain("(1/255) - 0.5"));
        var input = new DenseTensor<float>(RawPixels(count), [count, 784]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxModel.Input, input)]);
        float[] Get(string name) => results.Single(r => r.Name == name).AsEnumerable<float>().ToArray();
        return (Get(OnnxModel.Probabilities), Get(OnnxModel.Logits));
    }

    static InferenceResult Engine(SavedModel m, int count)
    {
        using var device = ComputeDevice.Open("cpu");
        return Predictor.Run(device, m.Spec, m.Parameters, testSet.Pixels[..(count * 784)], null, 1000);
    }

    [TestCase(Activation.Relu, LossKind.SoftmaxCrossEntropy)]
    [TestCase(Activation.Tanh, LossKind.SoftmaxCrossEntropy)]
    [TestCase(Activation.Sigmoid, LossKind.SoftmaxCrossEntropy)]
    [TestCase(Activation.LeakyRelu, LossKind.SoftmaxCrossEntropy)]
    [TestCase(Activation.Relu, LossKind.SigmoidSquaredError)]
    [TestCase(Activation.Tanh, LossKind.SigmoidSquaredError)]
    public void Onnx_runtime_gives_the_engines_classes_and_probabilities(Activation activation, LossKind loss)
    {
        const int count = 2000;
        string folder = SeededModel("m", activation, loss, 24, 12);
        var r = Run("export", "--model", folder, "--format", "onnx");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain($"ONNX opset {OnnxModel.Opset}"));
        var (probabilities, logits) = RunOnnx(Path.Combine(folder, "model.onnx"), count);
        var engine = Engine(SavedModel.Read(folder), count);
        Compare(engine, probabilities, logits, count);
    }

    /// <summary>Same classes, probabilities within 1e-5, outputs within float32 rounding.</summary>
    static void Compare(InferenceResult engine, float[] probabilities, float[] logits, int count)
    {
        double worstP = 0;
        for (int i = 0; i < count; i++)
        {
            var p = engine.Probabilities(i);
            int onnxClass = 0;
            for (int c = 0; c < 10; c++)
            {
                worstP = Math.Max(worstP, Math.Abs(p[c] - probabilities[i * 10 + c]));
                if (probabilities[i * 10 + c] > probabilities[i * 10 + onnxClass]) onnxClass = c;
            }
            Assert.That(onnxClass, Is.EqualTo(engine.Predicted(i)), $"image {i}: ONNX Runtime's class");
        }
        Assert.That(worstP, Is.LessThan(1e-5), "largest probability difference");
        // the engine's output layer: logits for softmax-ce, sigmoid outputs (ONNX's probabilities) for sigmoid-sse
        var outputs = engine.Spec.Loss == LossKind.SigmoidSquaredError ? probabilities : logits;
        double diff = 0, norm = 0;
        for (int i = 0; i < outputs.Length; i++) { diff += Math.Pow(outputs[i] - engine.Outputs[i], 2); norm += Math.Pow(engine.Outputs[i], 2); }
        Assert.That(Math.Sqrt(diff / norm), Is.LessThan(1e-5), "relative difference of the output layers");
        TestContext.Out.WriteLine($"{count} images: same classes, largest probability difference {worstP:E2}, output layers' relative difference {Math.Sqrt(diff / norm):E2}");
    }

    [Test]
    public void A_trained_model_exported_to_onnx_predicts_the_test_set_as_gpu_predict_does()
    {
        string model = Path.Combine(dir, "model"), csv = Path.Combine(dir, "predictions.csv"), onnx = Path.Combine(dir, "exported", "w.onnx");
        var t = Run("train", "--data", Repo.FashionMnist, "--limit", "2000", "--epochs", "1", "--layers", "32", "--device", "cpu", "--output", model);
        Assert.That(t.Code, Is.Zero, t.Err);
        var e = Run("export", "--model", model, "--format", "onnx", "--output", onnx);
        Assert.That(e.Code, Is.Zero, e.Err);
        var p = Run("predict", "--model", model, "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), "--device", "cpu", "--output", csv);
        Assert.That(p.Code, Is.Zero, p.Err);
        var rows = File.ReadAllLines(csv).Skip(1).Select(l => l.Split(',')).ToArray();
        Assert.That(rows, Has.Length.EqualTo(10000));
        var (probabilities, _) = RunOnnx(onnx, 10000);
        double worst = 0;
        for (int i = 0; i < rows.Length; i++)
        {
            int predicted = int.Parse(rows[i][1], CultureInfo.InvariantCulture), onnxClass = 0;
            for (int c = 0; c < 10; c++)
            {
                worst = Math.Max(worst, Math.Abs(double.Parse(rows[i][2 + c], CultureInfo.InvariantCulture) - probabilities[i * 10 + c]));
                if (probabilities[i * 10 + c] > probabilities[i * 10 + onnxClass]) onnxClass = c;
            }
            Assert.That(onnxClass, Is.EqualTo(predicted), $"image {i}");
        }
        Assert.That(worst, Is.LessThan(1e-5), "largest probability difference against gpu predict's CSV");
        TestContext.Out.WriteLine($"10,000 test images: same classes as gpu predict, largest probability difference {worst:E2}");
    }

    [TestCase(Activation.Relu, LossKind.SoftmaxCrossEntropy)]
    [TestCase(Activation.LeakyRelu, LossKind.SigmoidSquaredError)]
    public void Pytorch_loads_the_safetensors_export_without_the_safetensors_package_and_gives_the_engines_outputs(Activation activation, LossKind loss)
    {
        const int count = 500;
        string folder = SeededModel("m", activation, loss, 20, 16);
        var r = Run("export", "--model", folder, "--format", "safetensors");
        Assert.That(r.Code, Is.Zero, r.Err);
        string pixels = Path.Combine(dir, "pixels.npy"), outputs = Path.Combine(dir, "torch.npy");
        WriteNpy(pixels, "<f4", [count, 784], Floats(RawPixels(count)));
        Python.Script("safetensors_logits.py", Path.Combine(folder, "model.safetensors"), pixels, outputs);
        var torch = Npy.Read(outputs);
        Assert.That(torch.Shape, Is.EqualTo(new[] { count, 10 }));
        var engine = Engine(SavedModel.Read(folder), count);
        double diff = 0, norm = 0, worst = 0;
        for (int i = 0; i < torch.Values.Length; i++)
        {
            double d = torch.Values[i] - engine.Outputs[i];
            diff += d * d; norm += (double)engine.Outputs[i] * engine.Outputs[i]; worst = Math.Max(worst, Math.Abs(d));
        }
        Assert.That(Math.Sqrt(diff / norm), Is.LessThan(1e-5), "relative difference");
        Assert.That(worst, Is.LessThan(1e-4), "largest difference");
        TestContext.Out.WriteLine($"{count} images: relative difference {Math.Sqrt(diff / norm):E2}, largest {worst:E2}");
    }

    [Test]
    public void The_safetensors_export_holds_the_sequentials_tensors_and_the_spec()
    {
        string folder = SeededModel("m", Activation.Tanh, LossKind.SoftmaxCrossEntropy, 8);
        string file = Path.Combine(dir, "w.safetensors");
        Assert.That(Run("export", "--model", folder, "--format", "safetensors", "--output", file).Code, Is.Zero);
        var (tensors, meta) = SafeTensors.Read(file);
        Assert.That(tensors.Select(t => $"{t.Name} {t.DType} {t.ShapeText}"), Is.EqualTo(new[] { "0.weight F32 [8, 784]", "0.bias F32 [8]", "2.weight F32 [10, 8]", "2.bias F32 [10]" }));
        Assert.That(meta["torch_module"], Is.EqualTo("Sequential(Linear(784, 8), Tanh(), Linear(8, 10))"));
        Assert.That((meta["layers"], meta["activation"], meta["loss"]), Is.EqualTo(("784-8-10", "tanh", "softmax-ce")));
        var m = SavedModel.Read(folder);
        Assert.That(ModelWeights.ReadInitial(file, m.Spec), Is.EqualTo(m.Parameters), "read back into the flat packing");
    }

    [Test]
    public void Export_refuses_an_unknown_format_in_one_line() =>
        AssertOneLineError(Run("export", "--model", SeededModel("m", Activation.Relu, LossKind.SoftmaxCrossEntropy, 4), "--format", "pt"), "--format pt: give onnx or safetensors");
}
