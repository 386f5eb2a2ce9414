using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Gpu.Engine;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using Gpu.Engine.Training;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// Issue 22, items 5 and 6: the final model and the checkpoint's state.json carry SHA-256 digests, so a flipped bit or an
/// edit is refused in one line naming the file instead of being used; a run that collapses to chance says so in a
/// warning line (exit code 0) that model.json keeps.
/// </summary>
public sealed class IntegrityTests : TempFolderTest
{
    static string fixture = null!, model = null!;
    static (int Code, string Out, string Err) trained;

    [OneTimeSetUp]
    public static void TrainTinyModel()
    {
        fixture = Path.Combine(Path.GetTempPath(), "gpu-integrity-" + Guid.NewGuid().ToString("N"));
        model = Path.Combine(fixture, "model");
        trained = Run("train", "--data", Repo.FashionMnist, "--limit", "1500", "--epochs", "2", "--layers", "16", "--device", "cpu", "--output", model);
        Assert.That(trained.Code, Is.Zero, trained.Err);
    }

    [OneTimeTearDown]
    public static void RemoveFixture() { if (Directory.Exists(fixture)) Directory.Delete(fixture, true); }

    string F(string name) => Path.Combine(dir, name);

    /// <summary>A copy of the fixture's model folder (every file), to break.</summary>
    string CopyModel()
    {
        var copy = Directory.CreateDirectory(F("copy")).FullName;
        foreach (var file in Directory.GetFiles(model)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        foreach (var sub in Directory.GetDirectories(model)) CopyTree(sub, Path.Combine(copy, Path.GetFileName(sub)));
        return copy;
    }

    static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    /// <summary>Sets the top exponent bit of the first parameter: a weight below 1 becomes about 1e37, still finite (the reported flip).</summary>
    static void FlipExponentBit(string npy)
    {
        var bytes = File.ReadAllBytes(npy);
        int data = 10 + (bytes[8] | bytes[9] << 8);
        bytes[data + 3] ^= 0x40;
        File.WriteAllBytes(npy, bytes);
        Assert.That(float.IsFinite(BitConverter.ToSingle(bytes, data)), "still a finite number: only the digest can tell");
    }

    // reported: one flipped exponent bit in model.npy, and gpu eval exits 0 with accuracy 0.1000 and loss 1.2e37; predict and export go ahead
    [Test]
    public void A_flipped_bit_in_model_npy_is_refused_by_eval_predict_export_weights_and_Network_Load()
    {
        var copy = CopyModel();
        var npy = Path.Combine(copy, "model.npy");
        FlipExponentBit(npy);
        string expected = $"bad model file {npy}: does not match its SHA-256 digest in model.sha256: the file changed (was edited or damaged) after it was written; " +
            "restore the model folder from a copy or train the model again";
        AssertOneLineError(Run("eval", "--model", copy, "--device", "cpu"), expected, 2);
        AssertOneLineError(Run("predict", "--model", copy, "--input", Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), "--device", "cpu"), expected, 2);
        AssertOneLineError(Run("export", "--model", copy, "--format", "onnx", "--output", F("m.onnx")), expected, 2);
        AssertOneLineError(Run("weights", "--model", copy, "--output", F("w.png")), expected, 2);
        Assert.That(File.Exists(F("m.onnx")) || File.Exists(F("w.png")), Is.False, "nothing written from a damaged model");
        Assert.That(Assert.Throws<UserError>(() => Network.Load(copy))!.Message, Is.EqualTo(expected));
    }

    // reported: --init-from reads a damaged model.npy without a word
    [Test]
    public void Train_init_from_a_model_npy_that_no_longer_matches_its_digest_is_refused()
    {
        var copy = CopyModel();
        var npy = Path.Combine(copy, "model.npy");
        string[] train = ["train", "--data", Repo.FashionMnist, "--limit", "300", "--epochs", "1", "--layers", "16", "--device", "cpu", "--init-from", npy, "--output", F("o")];
        var intact = Run(train);
        Assert.That(intact.Code, Is.Zero, "an intact model.npy starts a run: " + intact.Err);
        FlipExponentBit(npy);
        AssertOneLineError(Run([.. train[..^1], F("o2")]), $"--init-from {npy}: does not match its SHA-256 digest in model.sha256", 2);
        Assert.That(Directory.Exists(F("o2")) && File.Exists(Path.Combine(F("o2"), "model.npy")), Is.False, "nothing trained");
    }

    // reported: editing model.json (relu to tanh) is accepted
    [Test]
    public void An_edited_model_json_is_refused_naming_it()
    {
        var copy = CopyModel();
        var json = Path.Combine(copy, "model.json");
        File.WriteAllText(json, File.ReadAllText(json).Replace("\"activation\": \"relu\"", "\"activation\": \"tanh\""));
        Assert.That(File.ReadAllText(json), Does.Contain("\"activation\": \"tanh\""), "the edit took");
        AssertOneLineError(Run("eval", "--model", copy, "--device", "cpu"), $"bad model file {json}: does not match its SHA-256 digest in model.sha256", 2);
        Assert.That(Assert.Throws<UserError>(() => Network.Load(copy))!.Message, Does.Contain($"bad model file {json}: does not match"));
    }

    [Test]
    public void Every_writer_leaves_a_sha256sum_digest_and_models_without_one_still_load()
    {
        AssertDigests(model);   // train --output
        var saved = F("saved");
        Network.Load(model).Save(saved);   // the library's Save
        AssertDigests(saved);
        FlipExponentBit(Path.Combine(saved, "model.npy"));
        Assert.Throws<UserError>(() => Network.Load(saved), "Save's digest is checked too");

        // a model of an earlier version (or copied without its digest) loads unchecked
        var copy = CopyModel();
        File.Delete(Path.Combine(copy, SavedModel.DigestName));
        var r = Run("eval", "--model", copy, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
    }

    /// <summary>model.sha256 holds "&lt;sha256&gt;  model.npy" and "&lt;sha256&gt;  model.json", computed here independently (sha256sum -c's check).</summary>
    static void AssertDigests(string folder)
    {
        string Hex(string name) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(folder, name))));
        Assert.That(File.ReadAllLines(Path.Combine(folder, "model.sha256")), Is.EqualTo(new[] { $"{Hex("model.npy")}  model.npy", $"{Hex("model.json")}  model.json" }));
    }

    // reported: a one-bit change to the checkpoint's state.json (seed 1 to 3) resumes with exit 0 into a different model
    [Test]
    public void A_one_bit_change_to_state_json_is_damage_refused_on_resume_or_passed_over_for_the_older_checkpoint()
    {
        var copy = CopyModel();
        var checkpoint = Path.Combine(copy, "checkpoint");
        var state = Path.Combine(checkpoint, "state.json");
        string text = File.ReadAllText(state);
        Assert.That(text, Does.Contain("\"seed\": 1,"));
        File.WriteAllText(state, text.Replace("\"seed\": 1,", "\"seed\": 3,"));   // '1' 0x31 -> '3' 0x33: one bit
        string[] resume = ["train", "--resume", copy, "--epochs", "3", "--device", "cpu"];
        AssertOneLineError(Run(resume), $"corrupt checkpoint {state}: does not match its SHA-256 digest in state.sha256", 2);
        Assert.Throws<UserError>(() => Checkpoint.Read(copy));

        // with a complete older checkpoint beside it the resume goes on from that one, as for a damaged .npy
        CopyTree(Path.Combine(model, "checkpoint"), checkpoint + ".old");
        var r = Run(resume);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain($"note: corrupt checkpoint {state}: does not match its SHA-256 digest in state.sha256"));
        Assert.That(File.ReadAllText(Path.Combine(copy, "checkpoint.damaged", "state.json")), Does.Contain("\"seed\": 3,"), "the damaged one set aside");
        Assert.That((int?)JsonNode.Parse(File.ReadAllText(Path.Combine(copy, "model.json")))!["seed"], Is.EqualTo(1), "the run's own seed, not the edited one");
    }

    [Test]
    public void A_checkpoint_of_an_earlier_version_without_state_sha256_still_resumes()
    {
        var copy = CopyModel();
        File.Delete(Path.Combine(copy, "checkpoint", "state.sha256"));
        var r = Run("train", "--resume", copy, "--epochs", "3", "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(File.Exists(Path.Combine(copy, "checkpoint", "state.sha256")), "the new checkpoint has its digest");
    }

    // reported: --lr 0.6 --warmup-epochs 2 collapses to chance (test accuracy 0.1000) and exits 0 without a word
    [Test]
    public void A_run_that_collapses_to_chance_warns_in_one_line_keeps_exit_0_and_model_json_holds_the_warning()
    {
        var output = F("collapsed");
        var r = Run("train", "--data", Repo.FashionMnist, "--limit", "2000", "--epochs", "3", "--lr", "0.5", "--warmup-epochs", "0", "--device", "cpu", "--output", output);
        Assert.That(r.Code, Is.Zero, r.Err);
        var warnings = r.Out.Split('\n').Where(l => l.StartsWith("warning: ")).ToArray();
        Assert.That(warnings, Has.Length.EqualTo(1), r.Out);
        Assert.That(warnings[0], Does.StartWith("warning: training went wrong: validation accuracy ").And.Contain("is about chance (1/10 = 0.1000)").And.Contain("lower --lr"));
        var stored = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "model.json")))!["warnings"]!.AsArray();
        Assert.That(stored.Select(w => "warning: " + (string?)w), Is.EqualTo(warnings), "model.json keeps it");
        Assert.That(Network.Load(output).Warnings, Has.Count.EqualTo(1));
    }

    [Test]
    public void A_healthy_run_prints_no_warning_and_stores_none()
    {
        Assert.That(trained.Out, Does.Not.Contain("warning:"));
        Assert.That(JsonNode.Parse(File.ReadAllText(Path.Combine(model, "model.json")))!["warnings"]!.AsArray(), Is.Empty);
        Assert.That(Network.Load(model).Warnings, Is.Empty);
    }

    [Test]
    public void The_library_s_Train_result_carries_the_warning()
    {
        using var device = Device.Open("cpu");
        var data = ImageData.Load(Repo.FashionMnist).TakeTrain(2000);
        var network = Network.Train(device, data, new TrainOptions { Epochs = 3, LearningRate = 0.5f, WarmupEpochs = 0 });
        Assert.That(network.Warnings, Has.Count.EqualTo(1));
        Assert.That(network.Warnings[0], Does.StartWith("training went wrong: "));
    }

    static TrainResult Result(int classes, params (double Loss, double? ValAccuracy, double TrainAccuracy)[] epochs) =>
        new(MlpSpec.FromHidden(784, [16], classes), [], epochs.Select((e, i) => new EpochStats(i + 1, e.Loss, e.TrainAccuracy, e.ValAccuracy == null ? null : 1.0, e.ValAccuracy, 1, 1, 0)).ToArray(),
            new EvalStats(0, 0, 0), 0, 0, 0, 0, DataPath.Resident);

    [Test]
    public void The_collapse_rule_flags_chance_accuracy_or_a_rising_loss_and_nothing_else()
    {
        // the reported run: loss 1.11, 2.73, 2.30, accuracy 0.10
        Assert.That(Result(10, (1.11, 0.30, 0.5), (2.73, 0.12, 0.2), (2.30, 0.10, 0.1)).Warning,
            Does.Contain("validation accuracy 0.1000 after epoch 3 is about chance").And.Contain("the training loss rose from 1.110 in epoch 1 to 2.300 in epoch 3"));
        Assert.That(Result(10, (0.9, null, 0.6), (1.2, null, 0.5)).Warning, Does.Contain("the training loss rose"), "a rising loss alone");
        Assert.That(Result(10, (2.3, null, 0.11)).Warning, Does.Contain("training accuracy 0.1100 after epoch 1 is about chance"), "no validation split: training accuracy");
        Assert.That(Result(10, (0.9, 0.70, 0.6), (0.5, 0.80, 0.8)).Warning, Is.Null, "healthy");
        Assert.That(Result(2, (0.6, 0.70, 0.6), (0.5, 0.72, 0.7)).Warning, Is.Null, "0.72 on two classes is learning, though below 1.5/classes");
        Assert.That(Result(2, (0.7, 0.52, 0.5), (0.69, 0.53, 0.5)).Warning, Does.Contain("is about chance (1/2 = 0.5000)"));
        var stopped = Result(10, (0.9, 0.70, 0.6), (0.5, 0.80, 0.8), (1.5, 0.10, 0.1)) with { StoppedEarlyAtBestEpoch = 2 };
        Assert.That(stopped.Warning, Is.Null, "early stopping kept epoch 2's weights");
    }
}
