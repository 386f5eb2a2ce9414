using System.Text.Json.Nodes;
using Gpu.Engine.Data;
using Gpu.Engine.Model;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using static Gpu.Tests.CliRun;
using static Gpu.Tests.TestFiles;

namespace Gpu.Tests.Interop;

/// <summary>train --init-from: a model.npy or a safetensors file is where training starts; a wrong one is one line naming the sizes.</summary>
public sealed class InitFromTests : TempFolderTest
{
    static readonly MlpSpec Spec = MlpSpec.FromHidden(784, [12], 10);
    string F(string name) => Path.Combine(dir, name);

    string[] Train(string init, string output, params string[] more) =>
        ["train", "--data", Repo.FashionMnist, "--limit", "300", "--epochs", "1", "--layers", "12", "--device", "cpu", "--val-fraction", "0",
            "--init-from", init, "--output", output, .. more];

    [Test]
    public void Training_starts_from_the_given_weights_from_npy_and_from_safetensors_alike()
    {
        var start = Spec.Initialize(99, 0.3f, InitKind.Glorot);   // not what --seed 1 --init he gives
        File.WriteAllBytes(F("start.npy"), Npy.Encode(start));
        ModelWeights.WriteSafeTensors(F("start.safetensors"), Spec, start);
        var a = Run(Train(F("start.npy"), F("a")));
        Assert.That(a.Code, Is.Zero, a.Err);
        Assert.That(a.Out, Does.Contain($"initial weights: {F("start.npy")} (instead of --init he)"));
        var b = Run(Train(F("start.safetensors"), F("b")));
        Assert.That(b.Code, Is.Zero, b.Err);
        var fromNpy = SavedModel.Read(F("a"));
        Assert.That(SavedModel.Read(F("b")).Parameters, Is.EqualTo(fromNpy.Parameters), "the same start gives the same run");
        Assert.That((string?)fromNpy.Info["init_from"], Is.EqualTo(F("start.npy")));

        // a learning rate so small that every step leaves the weights as they were: the run ends where it started
        var still = Run(Train(F("start.npy"), F("c"), "--lr", "1e-30", "--schedule", "constant", "--momentum", "0", "--l2", "0"));
        Assert.That(still.Code, Is.Zero, still.Err);
        Assert.That(SavedModel.Read(F("c")).Parameters, Is.EqualTo(start));
        var seeded = Run(["train", "--data", Repo.FashionMnist, "--limit", "300", "--epochs", "1", "--layers", "12", "--device", "cpu", "--val-fraction", "0",
            "--output", F("d"), "--lr", "1e-30", "--schedule", "constant", "--momentum", "0", "--l2", "0"]);
        Assert.That(SavedModel.Read(F("d")).Parameters, Is.Not.EqualTo(start), "without --init-from the seeded initialisation");
    }

    [Test]
    public void A_model_npy_of_another_network_is_refused_naming_both_sizes()
    {
        File.WriteAllBytes(F("w.npy"), Npy.Encode(new float[1000]));
        AssertOneLineError(Run(Train(F("w.npy"), F("o"))), $"expected {Spec.ParameterCount:N0} float32 values (network 784-12-10, model.npy packing), found 1,000");
        Assert.That(Directory.Exists(F("o")) && File.Exists(Path.Combine(F("o"), "model.npy")), Is.False, "nothing trained");
    }

    [Test]
    public void Safetensors_of_another_shape_type_or_depth_are_refused_in_one_line()
    {
        var other = MlpSpec.FromHidden(784, [16], 10);
        ModelWeights.WriteSafeTensors(F("wide.safetensors"), other, new float[other.ParameterCount]);
        AssertOneLineError(Run(Train(F("wide.safetensors"), F("o1"))), "tensor 0.weight has shape [16, 784], expected [12, 784]");
        var deep = MlpSpec.FromHidden(784, [12, 12], 10);
        ModelWeights.WriteSafeTensors(F("deep.safetensors"), deep, new float[deep.ParameterCount]);
        AssertOneLineError(Run(Train(F("deep.safetensors"), F("o2"))), "tensor 2.weight has shape [12, 12], expected [10, 12]");
        var shallow = MlpSpec.FromHidden(784, [], 10);
        ModelWeights.WriteSafeTensors(F("shallow.safetensors"), shallow, new float[shallow.ParameterCount]);
        AssertOneLineError(Run(Train(F("shallow.safetensors"), F("o3"))), "tensor 0.weight has shape [10, 784], expected [12, 784]");
        // a float64 file as torch writes it from a .double() model: the header names dtype F64
        WriteF64(F("f64.safetensors"));
        AssertOneLineError(Run(Train(F("f64.safetensors"), F("o4"))), "tensor 0.weight is F64; expected F32");
        File.WriteAllText(F("junk.safetensors"), "not a safetensors file");
        AssertOneLineError(Run(Train(F("junk.safetensors"), F("o5"))), "not a valid safetensors file");
        AssertOneLineError(Run(Train(F("missing.npy"), F("o6"))), "file not found");
    }

    void WriteF64(string path)
    {
        var header = new JsonObject
        {
            ["0.weight"] = new JsonObject { ["dtype"] = "F64", ["shape"] = new JsonArray(12, 784), ["data_offsets"] = new JsonArray(0, 8 * 12 * 784) },
        }.ToJsonString();
        while (header.Length % 8 != 0) header += " ";
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)header.Length));
        f.Write(System.Text.Encoding.UTF8.GetBytes(header));
        f.Write(new byte[8 * 12 * 784]);
    }

    [Test]
    public void Init_from_and_resume_are_refused_together() =>
        AssertOneLineError(Run("train", "--resume", F("x"), "--init-from", F("w.npy")), "--init-from starts a fresh run from given weights");
}
