namespace Gpu.Tests.Interop;

/// <summary>
/// tests/parity/precision_parity.py, the PyTorch parity of --precision tf32 and bf16 through the command line only, which
/// benchmarks/gpu/precision-light.sh runs on a GPU machine (no .NET there): here on the CPU accelerator through this build's
/// gpu, two cases per precision, where it must pass; and through a gpu that trains every run in fp32 whatever --precision
/// says, where it must fail every case (the precision's effect is then the error itself).
/// </summary>
public sealed class PrecisionParityScriptTests : TempFolderTest
{
    static string Gpu => $"dotnet {Path.Combine(AppContext.BaseDirectory, "gpu.dll")}";

    [Test]
    public void The_cpu_accelerator_passes_it_in_tf32_and_bf16()
    {
        var r = Python.ScriptResult("precision_parity.py", "--gpu", Gpu, "--device", "cpu", "--cases", "2", "--work", dir);
        TestContext.Out.WriteLine(r.Out);
        Assert.That(r.Code, Is.Zero, r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("precision parity: 4 of 4 cases within the limits"));
        Assert.That(r.Out, Does.Contain("[precision tf32: emulated").And.Contain("[precision bf16: emulated"), "each run said how it computes its precision");
    }

    [Test]
    public void A_gpu_that_ignores_the_precision_fails_every_case()
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the stand-in gpu is a bash script");
        string wrapper = Path.Combine(dir, "gpu-fp32");
        File.WriteAllText(wrapper, $$"""
            #!/usr/bin/env bash
            # the gpu program, but --precision X becomes --precision fp32
            args=(); next=0
            for a in "$@"; do
              if (( next )); then args+=(fp32); next=0; continue; fi
              [[ $a == --precision ]] && next=1
              args+=("$a")
            done
            exec {{Gpu}} "${args[@]}"
            """);
        if (OperatingSystem.IsLinux()) File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var r = Python.ScriptResult("precision_parity.py", "--gpu", wrapper, "--device", "cpu", "--cases", "2", "--work", Path.Combine(dir, "work"));
        TestContext.Out.WriteLine(r.Out);
        Assert.That(r.Code, Is.EqualTo(1), r.Out + r.Err);
        Assert.That(r.Out, Does.Contain("precision parity: 0 of 4 cases within the limits"));
    }
}
