using System.Text.Json.Nodes;

namespace Gpu.Tests.Interop;

/// <summary>
/// benchmarks/peers/torch_mlp.py, the PyTorch peer benchmarks/gpu/precision-light.sh runs beside the engine on a GPU, as a
/// smoke test on the CPU in each --precision: it runs, says what it computes (fp32 with TF32 off; tf32, which on the CPU is
/// fp32 and says so; bf16 autocast on the CPU), records the precision in its JSON, measures the steps and the GEMMs, and
/// leaves out the 4096^3 square on the CPU.
/// </summary>
public sealed class TorchPeerTests : TempFolderTest
{
    [TestCase("fp32", "fp32, TF32 off; warm-up 1")]
    [TestCase("tf32", "tf32 asked, but TF32 is a CUDA matmul setting: on the CPU PyTorch computes fp32, so these are fp32 figures")]
    [TestCase("bf16", "bf16: GEMMs on bfloat16 tensors; training steps' forward and loss under torch.autocast('cpu', dtype=torch.bfloat16)")]
    public void Runs_on_the_cpu_in_each_precision_and_says_what_it_computes(string precision, string says)
    {
        var json = Path.Combine(dir, "torch.json");
        var output = Python.Peer("torch_mlp.py", "--device", "cpu", "--workloads", "W2", "--steps", "2", "--repeats", "1", "--warmup", "1",
            "--precision", precision, "--json", json);
        Assert.That(output, Does.Contain(says));
        var doc = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.That((string?)doc["precision"], Is.EqualTo(precision));
        Assert.That((string?)doc["computes"], Does.StartWith(says.Split(';')[0]));
        var step = doc["steps"]!.AsArray().Single();
        Assert.That(((string?)step!["workload"], (string?)step["mode"]), Is.EqualTo(("W2", "eager")));
        Assert.That((double)step["samples_per_s"]!, Is.GreaterThan(0));
        var shapes = doc["gemm"]!.AsArray().Select(g => (string?)g!["shape"]).ToList();
        Assert.That(shapes, Has.Count.EqualTo(10).And.Contain("1024x1024x1024").And.Not.Contain("4096x4096x4096"));
        Assert.That(doc["gemm"]!.AsArray().Select(g => (double)g!["gflops"]!), Has.All.GreaterThan(0));
    }
}
