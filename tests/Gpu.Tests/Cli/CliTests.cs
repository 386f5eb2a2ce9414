using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Gpu.Engine.Runtime;
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

        // model.json holds what the run was and what it printed
        var printed = Regex.Match(r.Out, @"test accuracy (\d\.\d{4}), test loss (\d+\.\d{4}) \(10,000 images\); 1,080 train / 120 validation images");
        Assert.That(printed.Success, r.Out);
        using var model = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "model.json")));
        var root = model.RootElement;
        Assert.That(root.GetProperty("format").GetString(), Is.EqualTo("gpu-model"));
        Assert.That(root.GetProperty("layers").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 784, 20, 10 }));
        Assert.That(root.GetProperty("activation").GetString(), Is.EqualTo("relu"));
        Assert.That(root.GetProperty("loss").GetString(), Is.EqualTo("softmax-ce"));
        Assert.That(root.GetProperty("parameter_count").GetInt32(), Is.EqualTo(784 * 20 + 20 * 10 + 20 + 10));
        Assert.That(root.GetProperty("seed").GetInt32(), Is.EqualTo(4));
        Assert.That(root.GetProperty("preprocessing").GetString(), Does.Contain("x / 255 - 0.5"));
        Assert.That(root.GetProperty("device").GetString(), Does.StartWith("cpu"));
        var hyper = root.GetProperty("hyperparameters");
        Assert.That(hyper.GetProperty("batch_size").GetInt32(), Is.EqualTo(64));
        Assert.That(hyper.GetProperty("epochs").GetInt32(), Is.EqualTo(2));
        Assert.That(hyper.GetProperty("hidden").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 20 }));
        Assert.That(hyper.GetProperty("learning_rate").GetDouble(), Is.EqualTo(0.05).Within(1e-7), "the default");
        var dataInfo = root.GetProperty("data");
        Assert.That(dataInfo.GetProperty("limit").GetInt32(), Is.EqualTo(1200));
        Assert.That((dataInfo.GetProperty("train_count").GetInt32(), dataInfo.GetProperty("val_count").GetInt32(), dataInfo.GetProperty("test_count").GetInt32()),
            Is.EqualTo((1080, 120, 10_000)));
        var metrics = root.GetProperty("metrics");
        Assert.That(metrics.GetProperty("test_accuracy").GetDouble().ToString("F4", CultureInfo.InvariantCulture), Is.EqualTo(printed.Groups[1].Value), "the test accuracy training printed");
        Assert.That(metrics.GetProperty("test_loss").GetDouble().ToString("F4", CultureInfo.InvariantCulture), Is.EqualTo(printed.Groups[2].Value), "the test loss training printed");
        Assert.That(metrics.GetProperty("epochs_trained").GetInt32(), Is.EqualTo(2));
        var last = history[2].Split(',');
        Assert.That(metrics.GetProperty("final_train_loss").GetDouble(), Is.EqualTo(double.Parse(last[1], CultureInfo.InvariantCulture)).Within(1e-6), "history.csv's last epoch");
        Assert.That(metrics.GetProperty("final_val_accuracy").GetDouble(), Is.EqualTo(double.Parse(last[4], CultureInfo.InvariantCulture)).Within(1e-6));
        var saved = Gpu.Engine.Runs.SavedModel.Read(output);
        Assert.That(saved.Parameters, Has.Length.EqualTo(784 * 20 + 20 * 10 + 30));
        Assert.That(saved.Options!.BatchSize, Is.EqualTo(64));
        var png = File.ReadAllBytes(Path.Combine(output, "curves.png"));
        Assert.That(png.Take(4), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), "curves.png is a PNG");
        Assert.That(png, Has.Length.GreaterThan(10_000), "curves.png has content");
    }

    static readonly string[] VerbNames = ["train", "eval", "predict", "weights", "export", "search", "search merge", "devices", "check", "gradcheck", "landscape"];

    /// <summary>The program's verbs, read from its classes: name, what it does, and its flags (the setting flags it takes, its own options, inherited ones included, hidden ones not).</summary>
    static Dictionary<string, (string HelpText, string[] Flags)> Verbs() =>
        typeof(Gpu.Cli.Program).Assembly.GetTypes()
            .Select(t => (Type: t, Verb: t.GetCustomAttribute<CommandLine.VerbAttribute>()))
            .Where(v => v.Verb != null)
            .ToDictionary(v => v.Verb!.Name, v => (v.Verb!.HelpText, Gpu.Cli.SettingFlags.Of(v.Type).Select(f => f.Setting.Flag)
                .Concat(Gpu.Cli.VerbHelp.Options(v.Type).Select(o => o.Flag.Name)).ToArray()));

    static string Words(string text) => Regex.Replace(text, @"\s+", " ");

    /// <summary>An option line of the help screen: "  --flag ..." (or "  -f, --flag ...").</summary>
    static string OptionLine(string flag) => $@"(?m)^\s+(-\w, )?--{Regex.Escape(flag)}\s";

    [Test]
    public void The_program_help_lists_every_verb_with_what_it_does()
    {
        var verbs = Verbs();
        Assert.That(verbs.Keys, Is.EquivalentTo(VerbNames), "the verbs this test covers are the program's");
        var r = Run("--help");
        Assert.That(r.Code, Is.Zero, r.Err);
        foreach (var (name, (help, _)) in verbs)
            Assert.That(Words(r.Out), Does.Contain($" {name} {Words(help)[..40]}"), name);
    }

    [TestCaseSource(nameof(VerbNames))]
    public void Each_verbs_help_says_what_it_does_and_lists_its_own_flags_only(string verb)
    {
        var verbs = Verbs();
        var (help, flags) = verbs[verb];
        var r = Run(verb, "--help");
        Assert.That((r.Code, r.Err), Is.EqualTo((0, "")));
        Assert.That(Words(r.Out), Does.Contain($"gpu {verb}: {Words(help)}"), "what the verb does");
        foreach (var flag in flags.Append("help"))
            Assert.That(r.Out, Does.Match(OptionLine(flag)), $"--{flag} listed");
        foreach (var other in verbs.Values.SelectMany(v => v.Flags).Except(flags).Distinct())
            Assert.That(r.Out, Does.Not.Match(OptionLine(other)), $"--{other} belongs to other verbs");
        Assert.That(Run("help", verb).Out, Is.EqualTo(r.Out), $"'gpu help {verb}' is '{verb} --help'");
    }

    [Test]
    public void Each_flags_help_text_is_shown()
    {
        var r = Run("train", "--help");
        var setting = Gpu.Engine.Settings.Hyperparameter.ByFlag("batch-size");   // a setting: its help comes from the setting table
        Assert.That(Words(r.Out), Does.Contain(Words(setting.Help)));
        var option = Gpu.Cli.VerbHelp.Options(typeof(Gpu.Cli.TrainVerb)).Select(o => o.Flag).First(f => f.Name == "limit");
        Assert.That(Words(r.Out), Does.Contain(Words(option.Help)), "a flag of the verb's own: its help from the flag registry");
        Assert.That(Words(r.Out), Does.Match(@"--batch-size \(Default: 128\)"));
    }

    [Test]
    public void Devices_lists_the_cpu_and_says_why_cuda_is_absent()
    {
        var r = Run("devices");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("cpu").And.Contain("CUDA").And.Contain("--device auto picks"));
    }

    [Test]
    [TestCase("cpu", new[] { "scalar", "vector4", "tiled" })]
    [TestCase("opencl", new[] { "scalar", "tiled", "cl-vector" })]
    public void Check_passes_every_kernel_of_every_family_the_device_runs(string device, string[] families)
    {
        if (device == "opencl" && !DeviceCase.Required("opencl") && !ComputeDevice.List().Any(d => d.Id.StartsWith("opencl:")))
            Assert.Ignore("skipped: no usable OpenCL device (bash .ci/install-opencl installs POCL)");
        var r = Run("check", "--device", device);
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Err, Is.Empty, "nothing on stderr (no driver warnings either)");
        Assert.That(r.Out, Does.Match(@"(\d+) of \1 checks passed"));
        Assert.That(r.Out, Does.Not.Contain("FAILED"));
        foreach (var f in families)
            Assert.That(r.Out, Does.Match($@"dense forward \(relu\)\s+{f}\s").And.Match($@"input gradient \(tanh'\)\s+{f}\s"), f);
        foreach (var kernel in new[] { "softmax cross-entropy", "Nesterov", "AdamW", "dropout backward", "shifted gather", "metric accumulation", "non-finite marker" })
            Assert.That(r.Out, Does.Contain(kernel));
    }

    [Test]
    public void Check_can_take_one_family_in_the_word_the_program_prints()
    {
        var r = Run("check", "--device", "cpu", "--family", "scalar");
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Match(@"dense forward \(relu\)\s+scalar\s").And.Contain("softmax cross-entropy"));
        Assert.That(r.Out, Does.Not.Match(@"dense forward \(relu\)\s+(vector4|tiled)\s"));
        AssertOneLineError(Run("check", "--device", "cpu", "--family", "cl-vector"), "--family cl-vector: cpu does not run it; it runs scalar, vector4, tiled, blocked", 2);
        AssertOneLineError(Run("check", "--family", "Tiled4"), "is not one of scalar, vector4, tiled, cl-vector, blocked, tensor-tf32 or tensor-bf16", 2);
    }

    [Test]
    public void Check_ptx_compiles_every_kernel_with_no_gpu_and_writes_the_ptx()
    {
        var folder = Path.Combine(dir, "ptx");
        var r = Run("check", "--ptx", "--ptx-out", folder);
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        int n = KernelCatalogue.All.Count * 4;
        Assert.That(r.Out, Does.Contain($"{n} of {n} compilations passed"));
        Assert.That(r.Out, Does.Match(@"TiledGemmKernels\.Gemm<Tile64>\s+explicit\s+sm_90\s+sm_80\s+O2\s"));
        Assert.That(r.Out, Does.Not.Contain("tanh.approx").And.Not.Contain("FAILED"));
        Assert.That(Directory.GetFiles(folder, "*.ptx"), Has.Length.EqualTo(n));
        Assert.That(File.ReadAllText(Path.Combine(folder, "TiledGemmKernels.Gemm_Tile64_sm_90_O2.ptx")), Does.Contain(".target sm_80"));
        AssertOneLineError(Run("check", "--ptx-out", folder), "--ptx-out needs --ptx", 2);
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
