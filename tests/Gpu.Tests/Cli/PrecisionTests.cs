using System.Text.Json.Nodes;
using ILGPU;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// --precision tf32 and bf16 through the program, on the CPU accelerator and the OpenCL device (emulated there: each
/// product input rounded in the product kernels): it trains (each precision its own result, fp32's unchanged by the
/// setting's existence), says it is emulated, is stored in model.json and the checkpoint, resumes bit for bit, exports;
/// gradcheck refuses it in one line; gpu check checks each device's emulation against the rounded reference.
/// </summary>
public sealed class PrecisionTests : TempFolderTest
{
    static string[] Train(string data, string device, params string[] more) =>
        ["train", "--data", data, "--device", device, "--layers", "16", "--epochs", "2", "--batch-size", "32", "--val-fraction", "0.1", .. more];

    static byte[] Model(string output) => File.ReadAllBytes(Path.Combine(output, "checkpoint", "model.npy"));

    [TestCase("cpu")]
    [TestCase("opencl")]
    public void Tf32_and_bf16_train_differently_from_fp32_resume_bit_for_bit_and_export(string device)
    {
        new DeviceCase(device, OptimizationLevel.O2).OpenOrIgnore().Dispose();   // a missing OpenCL device skips (unless required)
        var data = SyntheticData.Folder(Path.Combine(dir, "d"));
        var straight = new Dictionary<string, byte[]>();
        foreach (var precision in new[] { "fp32", "tf32", "bf16" })
        {
            var output = Path.Combine(dir, precision);
            var r = Run(Train(data, device, "--output", output, "--precision", precision));
            Assert.That(r.Code, Is.Zero, r.Err);
            if (precision == "fp32") Assert.That(r.Out, Does.Not.Contain("precision").And.Not.Contain("emulated"));
            else Assert.That(r.Out, Does.Contain($"precision {precision}: emulated (this device has no tensor cores)").And.Contain($", {precision} products"));
            straight[precision] = Model(output);
            var saved = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "model.json")))!.ToJsonString();
            var state = File.ReadAllText(Path.Combine(output, "checkpoint", "state.json"));
            Assert.That(saved, Does.Contain($"\"precision\":\"{precision}\""), "model.json");
            Assert.That(state, Does.Contain($"\"precision\": \"{precision}\"").Or.Contain($"\"precision\":\"{precision}\""), "checkpoint state.json");
        }
        var defaulted = Path.Combine(dir, "default");
        Assert.That(Run(Train(data, device, "--output", defaulted)).Code, Is.Zero);
        Assert.That(Model(defaulted), Is.EqualTo(straight["fp32"]), "--precision fp32 is the default, bit for bit");
        Assert.That(straight["tf32"], Is.Not.EqualTo(straight["fp32"]), "tf32 rounds the products' inputs");
        Assert.That(straight["bf16"], Is.Not.EqualTo(straight["tf32"]), "bf16 rounds them further");

        foreach (var precision in new[] { "tf32", "bf16" })
        {
            var output = Path.Combine(dir, $"{precision}-resumed");
            var r = Run(Train(data, device, "--output", output, "--precision", precision), new CancellationToken(canceled: true));   // as if Ctrl-C came at once
            Assert.That(r.Code, Is.EqualTo(130), r.Err);
            var resumed = Run("train", "--resume", output, "--device", device);
            Assert.That(resumed.Code, Is.Zero, resumed.Err);
            Assert.That(resumed.Out, Does.Contain("resuming").And.Contain($"precision {precision}: emulated"));
            Assert.That(Model(output), Is.EqualTo(straight[precision]), $"{precision} resumed: the uninterrupted run's parameters bit for bit");
            AssertOneLineError(Run("train", "--resume", output, "--precision", "fp32", "--epochs", "3"), "--precision cannot be changed when resuming");

            foreach (var format in new[] { "onnx", "safetensors" })
            {
                var file = Path.Combine(dir, $"{precision}.{format}");
                var e = Run("export", "--model", output, "--format", format, "--output", file);
                Assert.That(e.Code, Is.Zero, e.Err);
                Assert.That(new FileInfo(file).Length, Is.GreaterThan(4 * 16 * 784), $"{format}: the fp32 weights");
            }
        }
    }

    [Test]
    public void An_experiment_file_sets_the_precision_and_a_flag_overrides_it()
    {
        var data = SyntheticData.Folder(Path.Combine(dir, "d"));
        var yaml = Path.Combine(dir, "exp.yaml");
        File.WriteAllText(yaml, "Train:\n  precision: bf16\n  epochs: 1\nModel:\n  hidden_size: 8\n");
        var r = Run("train", "--data", data, "--device", "cpu", "--config", yaml);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("precision bf16: emulated").And.Contain(", bf16 products"));
        var flag = Run("train", "--data", data, "--device", "cpu", "--config", yaml, "--precision", "fp32");
        Assert.That(flag.Code, Is.Zero, flag.Err);
        Assert.That(flag.Out, Does.Not.Contain("precision bf16").And.Not.Contain("bf16 products"));
    }

    [Test]
    public void Gradcheck_refuses_a_reduced_precision_in_one_line_saying_why()
    {
        AssertOneLineError(Run("gradcheck", "--precision", "tf32", "--layers", "8"), "gradcheck checks the fp32 gradient only", 2);
        AssertOneLineError(Run("gradcheck", "--precision", "fp16"), "--precision", 2);
    }

    [Test]
    public void A_wrong_precision_word_is_one_line_listing_the_words()
    {
        AssertOneLineError(Run("train", "--precision", "fp16"), "fp32, tf32 or bf16");
        AssertOneLineError(Run("check", "--precision", "half"), "fp32, tf32 or bf16");
        AssertOneLineError(Run("check", "--device", "cpu", "--family", "tiled", "--precision", "tf32"), "the tiled family does not compute tf32; the families that do are scalar, vector4, cl-vector, tensor-tf32");
        AssertOneLineError(Run("check", "--device", "cpu", "--family", "tensor-tf32", "--precision", "bf16"), "the tensor-tf32 family does not compute bf16; the families that do are scalar, vector4, cl-vector, tensor-bf16");
    }

    [TestCase("cpu", "tf32")]
    [TestCase("opencl", "bf16")]
    public void Check_compares_the_devices_emulated_products_with_the_rounded_reference(string device, string precision)
    {
        new DeviceCase(device, OptimizationLevel.O2).OpenOrIgnore().Dispose();
        var r = Run("check", "--device", device, "--family", "scalar", "--precision", precision);
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain($"the scalar family in {precision} (emulated").And.Contain($"scalar {precision}").And.Contain("checks passed"));
        Assert.That(r.Out, Does.Not.Contain("scalar      ").And.Not.Contain("FAILED"), "only the precision's products, besides the other kernels");
    }

    [Test]
    public void Search_takes_the_precision_for_every_trial_and_records_it()
    {
        var data = SyntheticData.Folder(Path.Combine(dir, "d"));
        var output = Path.Combine(dir, "search");
        var r = Run("search", "--data", data, "--device", "cpu", "--output", output, "--precision", "bf16", "--layers", "8;16", "--epochs", "1", "--lr", "0.05");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("precision bf16: emulated"));
        Assert.That(File.ReadAllText(Path.Combine(output, "search.json")), Does.Contain("bf16"));
        Assert.That(JsonNode.Parse(File.ReadAllText(Path.Combine(output, "best", "model.json")))!.ToJsonString(), Does.Contain("\"precision\":\"bf16\""));
    }
}
