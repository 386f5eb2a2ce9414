using System.Diagnostics;

namespace Gpu.Tests.Cli;

/// <summary>
/// benchmarks/gpu/first-light.sh, the script a GPU machine runs first, driven here with stand-ins for the published
/// programs (no GPU, no publish): its parts run in the issue's order, it writes the results file and the summary table,
/// it fails when a check fails, a training run learns too little or a part runs out of time, and PyTorch missing is
/// only "skipped".
/// </summary>
public sealed class FirstLightScriptTests : TempFolderTest
{
    static readonly string[] Parts = ["machine", "devices", "ptx", "check", "gradcheck-relu", "gradcheck-tanh", "train-resident", "train-stream", "bench", "torch"];

    const string GpuStub = """
        #!/usr/bin/env bash
        echo "$*" >> "$STUB_CALLS"
        case "$1" in
          devices) if [[ -n "${STUB_NO_CUDA:-}" ]]; then echo "cuda       CUDA       no              -  -: no CUDA driver (libcuda.so.1 not found)"
                   else echo "cuda:0     CUDA       yes     79.1 GiB  NVIDIA H100: compute capability SM_90, 132 SMs"; fi
                   echo "--device auto picks cuda:0 (NVIDIA H100), auto: the first CUDA device" ;;
          check) if [[ "$*" == *--ptx* ]]; then echo "64 of 64 compilations passed (5.0 s)"; else echo "700 of 700 checks passed (tolerance 1E-005)"; fi ;;
          gradcheck) echo "relative error ||analytic - numeric|| / ||numeric|| = 2.10e-07 (threshold 1.00e-04)" ;;
          train) echo "epoch   2/2 loss 0.379 acc 0.860 | val 0.340 acc 0.876 | 0.7s 72k samples/s"
                 echo "test accuracy ${STUB_ACCURACY:-0.8512}, test loss 0.4100 (10,000 images)"
                 echo "kernel launches: 11 per training step on cuda:0 (tiled products; evaluation not counted)" ;;
        esac
        if [[ -n "${STUB_SLEEP:-}" && "$*" == *"$STUB_SLEEP"* ]]; then sleep 30; fi
        if [[ -n "${STUB_FAIL:-}" && "$*" == *"$STUB_FAIL"* ]]; then exit 4; fi
        exit 0
        """;

    const string BenchStub = """
        #!/usr/bin/env bash
        echo "bench $*" >> "$STUB_CALLS"
        echo "| Method | Device | Workload | Mean | samples/s | launches/step |"
        echo "|------- |------- |--------- |----- |---------- |-------------- |"
        echo "| 'training steps (20; W3: 2)' | $GPU_BENCH_DEVICES | W1 | 1.0 ms | 2,560,000 | 11 |"
        """;

    const string PythonStub = """
        #!/usr/bin/env bash
        echo "torch_mlp.py: PyTorch is not installed; nothing measured."
        exit 2
        """;

    (int Code, string Summary, string Calls) RunScript(params (string Key, string Value)[] env)
    {
        string Stub(string name, string text)
        {
            var path = Path.Combine(dir, name);
            File.WriteAllText(path, text.Replace("\r\n", "\n") + "\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            return path;
        }
        var out_ = Path.Combine(dir, "out");
        var calls = Path.Combine(dir, "calls.txt");
        File.WriteAllText(calls, "");
        var start = new ProcessStartInfo("bash", [Path.Combine(Repo.Root, "benchmarks", "gpu", "first-light.sh")])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir,
        };
        start.Environment["OUT"] = out_;
        start.Environment["GPU"] = Stub("gpu", GpuStub);
        start.Environment["BENCH"] = Stub("bench", BenchStub);
        start.Environment["PYTHON"] = Stub("python", PythonStub);
        start.Environment["STUB_CALLS"] = calls;
        foreach (var (k, v) in env) start.Environment[k] = v;
        using var p = Process.Start(start)!;
        p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(File.Exists(Path.Combine(out_, "results.txt")), "results.txt written");
        return (p.ExitCode, File.ReadAllText(Path.Combine(out_, "summary.md")), File.ReadAllText(calls));
    }

    static string Row(string summary, string part) => summary.Split('\n').Single(l => l.StartsWith($"| {part} |"));

    [Test]
    public void Every_part_runs_in_order_and_the_summary_has_a_row_each()
    {
        var (code, summary, calls) = RunScript();
        Assert.That(code, Is.Zero, summary);
        var rows = summary.Split('\n').Where(l => l.StartsWith("| ") && !l.StartsWith("| part") && !l.StartsWith("| Method") && !l.StartsWith("| '")).ToList();
        Assert.That(rows.Select(r => r.Split(" | ")[0].TrimStart('|', ' ')), Is.EqualTo(Parts));
        var lines = calls.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "devices", $"check --ptx --ptx-out {Path.Combine(dir, "out", "ptx")}", "check --device cuda",
            "gradcheck --device cuda --activation relu", "gradcheck --device cuda --activation tanh",
            $"train --device cuda --data-path resident --epochs 2 --verbose --output {Path.Combine(dir, "out", "train-resident")}",
            $"train --device cuda --data-path stream --epochs 2 --verbose --output {Path.Combine(dir, "out", "train-stream")}",
            $"bench --filter *TrainingStepBenchmarks* *GemmBenchmarks* --artifacts {Path.Combine(dir, "out", "bdn")}",
        }));
        Assert.That(Row(summary, "check"), Does.Contain("| ok |").And.Contain("700 of 700 checks passed"));
        Assert.That(Row(summary, "train-resident"), Does.Contain("test accuracy 0.8512").And.Contain("72k samples/s").And.Contain("kernel launches: 11 per training step"));
        Assert.That(Row(summary, "bench"), Does.Contain("1 cases").And.Contain("W1: 2,560,000 samples/s, 11 launches/step"));
        Assert.That(Row(summary, "torch"), Does.Contain("skipped"), "no PyTorch is not a failure");
        Assert.That(summary, Does.Contain("| 'training steps (20; W3: 2)' | cuda:0 | W1 |"), "the benchmark table follows the rows");
        Assert.That(summary, Does.Contain("all parts passed"));
        var results = File.ReadAllText(Path.Combine(dir, "out", "results.txt"));
        foreach (var part in Parts.Where(p => p != "torch"))
            Assert.That(results, Does.Contain($"=== {part}"), part);
    }

    [Test]
    public void A_failed_check_fails_the_run_and_the_later_parts_still_run()
    {
        var (code, summary, calls) = RunScript(("STUB_FAIL", "--activation tanh"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "gradcheck-tanh"), Does.Contain("FAILED (exit code 4)"));
        Assert.That(Row(summary, "gradcheck-relu"), Does.Contain("| ok |"));
        Assert.That(calls, Does.Contain("--data-path stream").And.Contain("bench"), "the training runs and benchmarks are still measured");
        Assert.That(summary, Does.Contain("**FAILED**"));
    }

    [Test]
    public void A_run_that_learns_too_little_fails()
    {
        var (code, summary, _) = RunScript(("STUB_ACCURACY", "0.5012"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "train-resident"), Does.Contain("FAILED (test accuracy below 0.80)").And.Contain("test accuracy 0.5012"));
    }

    [Test]
    public void No_usable_cuda_device_fails_the_devices_part()
    {
        var (code, summary, _) = RunScript(("STUB_NO_CUDA", "1"));   // gpu devices itself succeeds
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "devices"), Does.Contain("FAILED (no usable CUDA device)"));
        var rehearsal = RunScript(("STUB_NO_CUDA", "1"), ("DEVICE", "opencl:0"));
        Assert.That(Row(rehearsal.Summary, "devices"), Does.Contain("| ok |"), "a rehearsal on another device needs no CUDA");
    }

    [Test]
    public void The_budget_stops_a_part_that_hangs_and_the_rest_are_not_run()
    {
        var watch = Stopwatch.StartNew();
        var (code, summary, calls) = RunScript(("STUB_SLEEP", "check --device"), ("BUDGET", "9"));
        Assert.That(watch.Elapsed.TotalSeconds, Is.LessThan(25), "the whole run keeps to its budget");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "check"), Does.Contain("FAILED (timed out)"));
        Assert.That(Row(summary, "train-stream"), Does.Contain("NOT RUN"));
        Assert.That(calls, Does.Not.Contain("train"));
    }
}
