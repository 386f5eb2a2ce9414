using System.Text.Json;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>The program end to end, in-process: output, files, exit codes, and one-line errors without stack traces.</summary>
public sealed class CliTests : TempFolderTest
{

    [Test]
    public void Train_writes_model_history_and_curves()
    {
        var output = Path.Combine(dir, "out");
        var r = Run("train", "--data", Repo.FashionMnist, "--limit", "1200", "--epochs", "2", "--layers", "20", "--batch-size", "64",
            "--device", "cpu", "--output", output, "--seed", "4");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("epoch   1/2 loss").And.Contain("samples/s").And.Contain("test accuracy"));
        var history = File.ReadAllLines(Path.Combine(output, "history.csv"));
        Assert.That(history, Has.Length.EqualTo(3));
        Assert.That(history[0], Does.StartWith("epoch,train_loss,train_accuracy,val_loss,val_accuracy"));
        using var model = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "model.json")));
        var root = model.RootElement;
        foreach (var key in new[] { "format", "engine_version", "device", "layers", "activation", "loss", "parameter_count", "preprocessing", "seed", "hyperparameters", "data", "metrics" })
            Assert.That(root.TryGetProperty(key, out _), Is.True, key);
        Assert.That(root.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 784, 20, 10 }));
        Assert.That(root.GetProperty("hyperparameters").GetProperty("batch_size").GetInt32(), Is.EqualTo(64));
        Assert.That(root.GetProperty("metrics").GetProperty("test_accuracy").GetDouble(), Is.InRange(0.3, 1.0));
        Assert.That(root.GetProperty("metrics").GetProperty("epochs_trained").GetInt32(), Is.EqualTo(2));
        var saved = Gpu.Engine.Runs.SavedModel.Read(output);
        Assert.That(saved.Parameters, Has.Length.EqualTo(784 * 20 + 20 * 10 + 30));
        Assert.That(saved.Options!.BatchSize, Is.EqualTo(64));
        var png = File.ReadAllBytes(Path.Combine(output, "curves.png"));
        Assert.That(png.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), "curves.png is a PNG");
        Assert.That(png, Has.Length.GreaterThan(10_000), "curves.png has content");
        Assert.That(root.GetProperty("device").GetString(), Does.StartWith("cpu"));
    }

    [Test]
    public void Help_works_for_the_program_and_every_verb()
    {
        foreach (var args in new[] { new[] { "--help" }, new[] { "train", "--help" }, new[] { "devices", "--help" }, new[] { "help", "train" } })
        {
            var r = Run(args);
            Assert.That(r.Code, Is.Zero, string.Join(" ", args));
            Assert.That(r.Out.Length, Is.GreaterThan(50), string.Join(" ", args));
        }
        Assert.That(Run("train", "--help").Out, Does.Contain("--batch-size").And.Contain("--val-fraction").And.Contain("--device"));
        Assert.That(Run("--help").Out, Does.Contain("train").And.Contain("devices"));
    }

    [Test]
    public void Devices_lists_the_cpu_and_says_why_cuda_is_absent()
    {
        var r = Run("devices");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("cpu").And.Contain("CUDA").And.Contain("--device auto picks"));
    }

    [Test]
    public void Check_passes_every_kernel_on_the_cpu()
    {
        var r = Run("check", "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("dense forward").And.Contain("Tiled").And.Contain("Vector4").And.Contain("checks passed"));
        Assert.That(r.Out, Does.Not.Contain("FAILED"));
    }

    [Test] public void Unknown_flag() => AssertOneLineError(Run("train", "--frobnicate", "3"), "unknown option '--frobnicate'");
    [Test] public void Unknown_verb() => AssertOneLineError(Run("fly"), "unknown verb 'fly'");
    [Test] public void Non_numeric_value() => AssertOneLineError(Run("train", "--epochs", "many"), "--epochs");
    [Test] public void Zero_batch_size() => AssertOneLineError(Run("train", "--batch-size", "0", "--device", "cpu"), "--batch-size 0");
    [Test] public void Bad_layers() => AssertOneLineError(Run("train", "--layers", "256,0", "--device", "cpu"), "--layers");
    [Test] public void Unknown_device() => AssertOneLineError(Run("train", "--device", "tpu"), "unknown device 'tpu'");
    [Test] public void Missing_data_folder() => AssertOneLineError(Run("train", "--data", Path.Combine(dir, "absent"), "--device", "cpu"), "not found");

    [Test]
    public void Corrupt_idx_file()
    {
        var data = Path.Combine(dir, "data");
        Directory.CreateDirectory(data);
        foreach (var f in Directory.GetFiles(Repo.FashionMnist, "t10k*")) File.Copy(f, Path.Combine(data, Path.GetFileName(f)));
        File.Copy(Path.Combine(Repo.FashionMnist, "train-labels-idx1-ubyte.gz"), Path.Combine(data, "train-labels-idx1-ubyte.gz"));
        var images = File.ReadAllBytes(Path.Combine(Repo.FashionMnist, "train-images-idx3-ubyte.gz"));
        File.WriteAllBytes(Path.Combine(data, "train-images-idx3-ubyte.gz"), images[..(images.Length / 3)]);
        AssertOneLineError(Run("train", "--data", data, "--device", "cpu"), "train-images-idx3-ubyte.gz");
    }

    [Test]
    public void Cuda_without_a_cuda_device()
    {
        if (Gpu.Engine.Runtime.ComputeDevice.List().Any(d => d.Kind == "CUDA" && d.Usable)) Assert.Ignore("skipped: this machine has a CUDA device");
        AssertOneLineError(Run("train", "--device", "cuda", "--data", Repo.FashionMnist), "no CUDA device");
    }

    [Test]
    public void Unwritable_output_folder()
    {
        var file = Path.Combine(dir, "a-file");
        File.WriteAllText(file, "");
        AssertOneLineError(Run("train", "--output", Path.Combine(file, "sub"), "--device", "cpu"), "cannot write to output folder");
    }
}
