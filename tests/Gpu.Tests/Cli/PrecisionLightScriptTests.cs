using System.Diagnostics;

namespace Gpu.Tests.Cli;

/// <summary>
/// benchmarks/gpu/precision-light.sh, issue 20's measurements on a CUDA machine (tensor cores, --precision tf32|bf16), driven
/// here with stand-ins for the kit's program (gpu and the BenchmarkDotNet suites), PyTorch's peer and ncu (no GPU here): the
/// correctness parts first (the PTX with its mma instructions, gpu check in tf32 and bf16), then the GEMMs and training steps,
/// PyTorch in each precision, the default run's accuracy in tf32 and bf16, the tables and the profile; a failing check or an
/// accuracy out of its tolerance fails the run, a missing tool is only skipped. The tables' targets (tables.py precision) are
/// tested on fixture files directly, met and not met.
/// </summary>
public sealed class PrecisionLightScriptTests : TempFolderTest
{
    static readonly string[] Parts =
    [
        "kit", "machine", "devices", "ptx", "check-tf32", "check-bf16", "gemm", "steps-tf32", "steps-bf16",
        "torch-fp32", "torch-tf32", "torch-bf16", "train-tf32", "train-bf16", "parity", "tables", "ncu-w3-tf32",
    ];

    // gpu: an H200 at cuda:0 (STUB_NO_CUDA: none); check --ptx writes a TF32 and a bf16 tensor-core kernel's PTX (STUB_NO_MMA:
    // neither holds an mma); train prints where the products ran and its accuracy (STUB_ACC_TF32, STUB_ACC_BF16)
    const string GpuStub = """
        #!/usr/bin/env bash
        echo "$*" >> "$STUB_CALLS"
        p=fp32; prev=""; for a in "$@"; do [[ "$prev" == --precision ]] && p="$a"; prev="$a"; done
        case "$1" in
          devices) if [[ -n "${STUB_NO_CUDA:-}" ]]; then echo "cuda       CUDA       no              -  -: no CUDA driver (libcuda.so.1 not found)"
                   else echo "cuda:0     CUDA       yes    139.8 GiB  NVIDIA H200: compute capability SM_90, 132 SMs"; fi
                   echo "--device auto picks cuda:0 (NVIDIA H200), auto: the first CUDA device" ;;
          check) if [[ "$*" == *--ptx* ]]; then
                   mkdir -p "$4"
                   tf="mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32"; bf="mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"
                   [[ -n "${STUB_NO_MMA:-}" ]] && { tf="fma.rn.f32"; bf="fma.rn.f32"; }
                   for sm in sm_80 sm_90; do
                     printf '.version 8.8\n.visible .entry Kernel_Gemm(\n\t%s {%%f1}, {%%r1};\n' "$tf" > "$4/TensorCoreGemmKernels.Gemm_${sm}_O2.ptx"
                     printf '.version 8.8\n.visible .entry Kernel_Gemm(\n\t%s {%%f1}, {%%r1};\n' "$bf" > "$4/TensorCoreBf16Kernels.Gemm_${sm}_O2.ptx"
                     printf '.version 8.8\n.visible .entry Kernel_GatherBatch(\n' > "$4/DataKernels.GatherBatch_${sm}_O2.ptx"
                   done
                   echo "96 of 96 compilations passed (9.0 s); PTX written to $4"
                 else
                   echo "profile: tiled products, 139.8 GB, 132 multiprocessors; checking every kernel family it runs (tensor-$p, vector4) in $p (emulated; against inputs rounded as the hardware rounds them) and every other kernel"
                   echo "412 of 412 checks passed (tolerance 1E-005)"
                 fi ;;
          train) e=1; prev=""; for a in "$@"; do [[ "$prev" == --epochs ]] && e="$a"; prev="$a"; done
                 acc=0.8899; [[ $p == bf16 ]] && acc="${STUB_ACC_BF16:-0.8871}"; [[ $p == tf32 ]] && acc="${STUB_ACC_TF32:-0.8899}"
                 echo "device: cuda:0 (NVIDIA H200), requested"
                 echo "precision $p: tensor cores (the tensor-$p kernels): each product input rounded to ${p^^}, sums in float32"
                 echo "epoch  $e/$e loss 0.290 acc 0.892 | val 0.310 acc 0.889 | 0.4s 1.2M samples/s"
                 echo "test accuracy $acc, test loss 0.3300 (10,000 images); 54,000 train / 6,000 validation images, 6.2 s in all"
                 echo "kernel launches: 11 per training step on cuda:0 (tensor-$p products; evaluation not counted)" ;;
        esac
        if [[ -n "${STUB_FAIL:-}" && "$*" == *"$STUB_FAIL"* ]]; then exit 4; fi
        exit 0
        """;

    // BenchmarkDotNet: GemmBenchmarks (Family tensor-tf32 and, unless STUB_NO_BF16, tensor-bf16; no Type column, as in a run of
    // one suite) with its JSON report, at 4096^3
    // tf32 180/160/170 and bf16 300/280/260 TFLOP/s for the forward, weight-grad and input-grad products; TrainingStepBenchmarks
    // in GPU_BENCH_PRECISION (with a Type column and bold rows, which the script reads too): W1 1,200,000 and W3 2,300,000
    // samples/s in tf32, 1,500,000 and 3,000,000 in bf16
    const string BenchStub = """
        #!/usr/bin/env bash
        if [[ "$1" == gpu ]]; then shift; exec "$STUB_GPU" "$@"; fi
        echo "bench $* | precision=${GPU_BENCH_PRECISION:-} families=${GPU_BENCH_FAMILIES:-} workloads=${GPU_BENCH_WORKLOADS:-} quick=${GPU_BENCH_QUICK:-}" >> "$STUB_CALLS"
        art=""; prev=""; for a in "$@"; do [[ "$prev" == --artifacts ]] && art="$a"; prev="$a"; done
        d="$GPU_BENCH_DEVICES"
        mkdir -p "$art/results"
        echo "// * Summary *"
        if [[ "$*" == *GemmBenchmarks* ]]; then
          fam=(tensor-tf32); [[ -z "${STUB_NO_BF16:-}" ]] && fam+=(tensor-bf16)
          echo "| Method                           | Job              | Device | Shape          | Family      | Mean       | GFLOP/s    |"
          echo "|--------------------------------- |----------------- |------- |--------------- |------------ |-----------:|-----------:|"
          json=""
          for f in "${fam[@]}"; do
            if [[ $f == tensor-tf32 ]]; then t=(180 160 170); else t=(300 280 260); fi
            i=0
            for m in Forward WeightGrad InputGrad; do
              ns=$(awk -v t="${t[i]}" 'BEGIN { printf "%.4f", 2 * 4096^3 / (t * 1e3) }')
              echo "| $m | in-process-quick | $d | 4096x4096x4096 | $f | $ns ns | $(( t[i] * 1000 )).00 |"
              json="$json{\"Type\":\"GemmBenchmarks\",\"Method\":\"$m\",\"Parameters\":\"Device=$d&Family=$f&Shape=4096x4096x4096\",\"Statistics\":{\"Mean\":$ns}},"
              i=$(( i + 1 ))
            done
          done
          echo "{\"Title\":\"stub\",\"Benchmarks\":[${json%,}]}" > "$art/results/BenchmarkRun-joined-report-full-compressed.json"
        else
          if [[ "$GPU_BENCH_PRECISION" == bf16 ]]; then w1=1,500,000; w3=3,000,000; else w1=1,200,000; w3=2,300,000; fi
          echo "| Type                       | Method                                   | Job            | Device   | Workload | Mean       | samples/s  | launches/step |"
          echo "|--------------------------- |----------------------------------------- |--------------- |--------- |--------- |-----------:|-----------:|--------------:|"
          echo "| **TrainingStepBenchmarks** | **&#39;training steps (20; W3: 2)&#39;** | **in-process** | **$d** | **W1** | **2.133 ms** | **$w1** | **11** |"
          echo "| TrainingStepBenchmarks     | &#39;training steps (20; W3: 2)&#39;     | in-process     | $d     | W3       | 0.890 ms   | $w3        | 12            |"
          echo '{"Title":"stub","Benchmarks":[]}' > "$art/results/BenchmarkRun-joined-report-full-compressed.json"
        fi
        """;

    // torch_mlp.py: PyTorch missing (exit code 2) with STUB_NO_TORCH=1; else figures per --precision, and its JSON
    const string PythonStub = """
        #!/usr/bin/env bash
        echo "python $*" >> "$STUB_CALLS"
        if [[ -n "${STUB_NO_TORCH:-}" ]]; then echo "${1##*/}: PyTorch is not installed; nothing measured."; exit 2; fi
        if [[ "$1" == *precision_parity.py ]]; then
          echo "precision parity on cuda: error = ..."
          if [[ -n "${STUB_PARITY_FAIL:-}" ]]; then echo "precision parity: 7 of 8 cases within the limits (30 s)"; exit 1; fi
          echo "precision parity: 8 of 8 cases within the limits (30 s)"; exit 0
        fi
        json=""; p=fp32; prev=""; for a in "$@"; do [[ "$prev" == --json ]] && json="$a"; [[ "$prev" == --precision ]] && p="$a"; prev="$a"; done
        case $p in
          fp32) w1=700000; w3=1104000; g=50000 ;;
          tf32) w1=1160000; w3=2934000; g=333700 ;;
          bf16) w1=1300000; w3=4000000; g=782000 ;;
        esac
        echo "device: NVIDIA H200 | torch 2.11.0 | CUDA 13.0 | now"
        echo "$p; warm-up 20, 200 steps x 5 repeats (median)"
        echo "W1       graph     128   $w1     0.1"
        echo "W3       graph    1024   $w3     0.3"
        echo "4096x4096x4096       square     $g     0.4"
        cat > "$json" << EOF
        {"device":"NVIDIA H200","torch":"2.11.0","precision":"$p","steps":[{"workload":"W1","mode":"graph","batch":128,"samples_per_s":$w1},
         {"workload":"W3","mode":"graph","batch":1024,"samples_per_s":$w3}],"gemm":[{"shape":"4096x4096x4096","gflops":$g,"ms":0.4}]}
        EOF
        """;

    const string NvidiaSmiStub = """
        #!/usr/bin/env bash
        echo "NVIDIA H200, 580.159, 143771 MiB, 1980 MHz"
        """;

    // Nsight Compute: its raw CSV to --log-file (STUB_NCU_PERM: no access to the counters), then the program
    const string NcuStub = """
        #!/usr/bin/env bash
        echo "ncu $*" >> "$STUB_CALLS"
        args=("$@"); log=""; rest=()
        for (( i = 0; i < ${#args[@]}; i++ )); do
          if [[ "${args[i]}" == --log-file ]]; then log="${args[i+1]}"; rest=("${args[@]:i+2}"); break; fi
        done
        if [[ -n "${STUB_NCU_PERM:-}" ]]; then echo "==ERROR== ERR_NVGPUCTRPERM - no permission" > "$log"; "${rest[@]}"; exit 0; fi
        {
          echo '"ID","Kernel Name","Block Size","gpu__time_duration.sum"'
          echo '"","","","nsecond"'
          echo '"0","Kernel_TensorGemm","(128, 1, 1)","300000"'
          echo '"1","Kernel_SgdMomentum","(256, 1, 1)","20000"'
        } > "$log"
        "${rest[@]}"
        """;

    string Stub(string name, string text) => KitScript.Stub(dir, name, text);

    string Out => Path.Combine(dir, "out");

    (int Code, string Summary, string Calls) RunScript(params (string Key, string? Value)[] env)
    {
        var gpu = Stub("gpu", GpuStub);
        var bin = Path.Combine(dir, "bin");
        Directory.CreateDirectory(bin);
        KitScript.Stub(bin, "nvidia-smi", NvidiaSmiStub);
        return KitScript.Run("precision-light.sh", dir, Out,
            [("STUB_GPU", gpu), ("GPU", gpu), ("BENCH", Stub("bench", BenchStub)), ("PYTHON", Stub("python", PythonStub)),
             ("NCU", Stub("ncu", NcuStub)), ("PATH", $"{bin}:{Environment.GetEnvironmentVariable("PATH")}")], env);
    }

    static string Row(string summary, string part) => KitScript.Row(summary, part);

    static string TargetRow(string tables, string target) => tables.Split('\n').Single(l => l.StartsWith($"| {target}"));

    [Test]
    public void Every_part_runs_in_order_and_the_targets_are_judged_from_the_figures()
    {
        var (code, summary, calls) = RunScript();
        Assert.That(code, Is.Zero, summary);
        Assert.That(KitScript.PartRows(summary), Is.EqualTo(Parts));
        var o = Out;
        string[] expected =
        [
            "devices", $"check --ptx --ptx-out {o}/ptx", "check --device cuda --precision tf32", "check --device cuda --precision bf16",
            $"bench --filter *GemmBenchmarks* --exporters json --artifacts {o}/bdn-gemm | precision= families=tensor-tf32,tensor-bf16 workloads= quick=1",
            $"bench --filter *TrainingStepBenchmarks* --exporters json --artifacts {o}/bdn-steps-tf32 | precision=tf32 families= workloads=W1,W3 quick=1",
            $"bench --filter *TrainingStepBenchmarks* --exporters json --artifacts {o}/bdn-steps-bf16 | precision=bf16 families= workloads=W1,W3 quick=1",
            $"python benchmarks/peers/torch_mlp.py --precision fp32 --workloads W1,W3 --json {o}/torch-fp32.json",
            $"python benchmarks/peers/torch_mlp.py --precision tf32 --workloads W1,W3 --json {o}/torch-tf32.json",
            $"python benchmarks/peers/torch_mlp.py --precision bf16 --workloads W1,W3 --json {o}/torch-bf16.json",
            $"train --device cuda --data-path resident --epochs 10 --precision tf32 --verbose --output {o}/train-tf32",
            $"train --device cuda --data-path resident --epochs 10 --precision bf16 --verbose --output {o}/train-bf16",
            "python tests/parity/precision_parity.py --gpu ",
            // W3's launches per step from the steps-tf32 table (12): 5 steps skipped, 20 profiled
            $"ncu --clock-control none --metrics gpu__time_duration.sum --print-units base --launch-skip 60 --launch-count 240 --csv --page raw --log-file {o}/ncu-w3-tf32.csv",
            "train --device cuda --layers 2048,2048 --batch-size 1024 --epochs 1 --limit 32000 --precision tf32 --verbose --output ",
        ];
        var lines = calls.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(expected.Length), calls);
        for (int i = 0; i < expected.Length; i++) Assert.That(lines[i], Does.StartWith(expected[i]), $"call {i}");

        Assert.That(Row(summary, "machine"), Does.Contain("| ok |").And.Contain("NVIDIA H200, 580.159"));
        Assert.That(Row(summary, "ptx"), Does.Contain("| ok |").And.Contain("96 of 96 compilations passed (9.0 s); TF32 mma (m16n8k8) in 2 PTX files, bf16 mma (m16n8k16) in 2"));
        Assert.That(Row(summary, "check-bf16"), Does.Contain("| ok |").And.Contain("412 of 412 checks passed (tolerance 1E-005); families (tensor-bf16, vector4)"));
        Assert.That(Row(summary, "gemm"), Does.Contain("| ok |").And.Contain("6 cases with figures (families: tensor-bf16,tensor-tf32)"));
        Assert.That(Row(summary, "steps-tf32"), Does.Contain("| ok |").And.Contain("samples/s: W1 1,200,000, W3 2,300,000"));
        Assert.That(Row(summary, "steps-bf16"), Does.Contain("samples/s: W1 1,500,000, W3 3,000,000"));
        Assert.That(Row(summary, "torch-tf32"), Does.Contain("| ok |").And.Contain("graph samples/s: W1 1160000, W3 2934000; 4096^3 333700 GFLOP/s"));
        Assert.That(Row(summary, "train-tf32"), Does.Contain("| ok |").And.Contain("test accuracy 0.8899 (fp32: 0.8903); 6.2 s in all; precision tf32: tensor cores (the tensor-tf32 kernels)"));
        Assert.That(Row(summary, "train-bf16"), Does.Contain("| ok |").And.Contain("test accuracy 0.8871"));
        Assert.That(Row(summary, "parity"), Does.Contain("| ok |").And.Contain("precision parity: 8 of 8 cases within the limits"));
        Assert.That(Row(summary, "tables"), Does.Contain("| ok |").And.Contain("targets met: 6 of 6 (0 not met, 0 not measured); goals met: 0"));
        Assert.That(Row(summary, "ncu-w3-tf32"), Does.Contain("| ok |").And.Contain("2 launches of 2 kernels"));

        // the tables, from the stand-ins' figures: 4096^3 tf32's slowest product 160 (of 494.5: 32%), bf16's 260 (26%);
        // W3 in tf32 1024 / 2.3M = 0.445 ms against PyTorch's TF32 graph 0.349 ms; W1 1.2M against 1.16M
        Assert.That(summary, Does.Contain("| tf32 | tensor-tf32 | weight grad dZ^T.H | 4096x4096x4096 | 160.0 | 333.7 | 0.48x | 32% |"));
        Assert.That(summary, Does.Contain("| bf16 | tensor-bf16 | input grad dZ.W | 4096x4096x4096 | 260.0 | 782.0 | 0.33x | 26% |"));
        Assert.That(summary, Does.Contain("| W3 | tf32 | 2,300,000 | 0.445 | - | 2,934,000 | 0.349 | 0.78x |"));
        Assert.That(summary, Does.Contain("| W1 | fp32 | - | - | - | 700,000 | 0.183 | - |"), "PyTorch's fp32 beside it, the engine's not measured here");
        Assert.That(TargetRow(summary, "TF32 GEMM"), Does.EndWith("| 160.0 | 32% | >= 150 | yes | >= 200 | no |"));
        Assert.That(TargetRow(summary, "bf16 GEMM"), Does.EndWith("| 260.0 | 26% | >= 250 | yes | >= 400 | no |"));
        Assert.That(TargetRow(summary, "W3 step"), Does.EndWith("| 0.445 | - | <= 0.5 | yes | <= PyTorch TF32 graph (0.349) | no |"));
        Assert.That(TargetRow(summary, "W1 step"), Does.EndWith("| 1,200,000 | - | >= PyTorch TF32 graph (1,160,000) | yes | - | - |"));
        Assert.That(TargetRow(summary, "test accuracy in bf16"), Does.EndWith("| -0.0032 | - | within 0.005 | yes | - | - |"));
        Assert.That(summary, Does.Contain("| bf16 | 0.8871 | -0.0032 | yes | 6.2 | tensor cores |"));
        Assert.That(summary, Does.Contain("Kernel_TensorGemm"), "the profile's table");
        Assert.That(summary, Does.EndWith("all parts passed\n"));
    }

    [Test]
    public void A_failing_check_fails_the_run_and_the_rest_still_runs()
    {
        var (code, summary, _) = RunScript(("STUB_FAIL", "check --device cuda --precision bf16"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "check-bf16"), Does.Contain("| FAILED (exit code 4) |"));
        Assert.That(Row(summary, "check-tf32"), Does.Contain("| ok |"));
        Assert.That(Row(summary, "train-bf16"), Does.Contain("| ok |"));
        Assert.That(summary, Does.Contain("**FAILED**"));
    }

    [Test]
    public void A_case_off_pytorch_fails_the_parity_part_and_the_run()
    {
        var (code, summary, _) = RunScript(("STUB_PARITY_FAIL", "1"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "parity"), Does.Contain("| FAILED (exit code 1) |").And.Contain("precision parity: 7 of 8 cases within the limits"));
        Assert.That(Row(summary, "tables"), Does.Contain("| ok |"));
    }

    [Test]
    public void An_accuracy_out_of_its_tolerance_fails_the_run_and_a_wider_tolerance_passes_it()
    {
        var (code, summary, _) = RunScript(("STUB_ACC_BF16", "0.8790"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "train-bf16"), Does.Contain("| FAILED (test accuracy not within 0.005 of 0.8903) |").And.Contain("test accuracy 0.8790"));
        Assert.That(Row(summary, "train-tf32"), Does.Contain("| ok |"));
        Assert.That(TargetRow(summary, "test accuracy in bf16"), Does.Contain("| -0.0113 | - | within 0.005 | no |"));

        var (wide, wideSummary, _) = RunScript(("STUB_ACC_BF16", "0.8790"), ("ACC_TOLERANCE", "0.02"));
        Assert.That(wide, Is.Zero, wideSummary);
        Assert.That(Row(wideSummary, "train-bf16"), Does.Contain("| ok |"));
    }

    [Test]
    public void No_tf32_mma_in_the_ptx_fails_the_ptx_part()
    {
        var (code, summary, _) = RunScript(("STUB_NO_MMA", "1"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "ptx"), Does.Contain("| FAILED (no TF32 mma.sync in any PTX file) |").And.Contain("TF32 mma (m16n8k8) in 0 PTX files"));
    }

    [Test]
    public void Missing_tools_and_a_missing_family_are_skipped_or_not_measured_and_fail_nothing()
    {
        var (code, summary, calls) = RunScript(("STUB_NO_TORCH", "1"), ("NCU", Path.Combine(dir, "no-such-ncu")), ("STUB_NO_BF16", "1"));
        Assert.That(code, Is.Zero, summary);
        foreach (var p in new[] { "fp32", "tf32", "bf16" })
            Assert.That(Row(summary, $"torch-{p}"), Does.Contain("| skipped |").And.Contain("PyTorch is not installed"));
        Assert.That(Row(summary, "ncu-w3-tf32"), Does.Contain("| skipped |").And.Contain("no ncu"));
        Assert.That(Row(summary, "gemm"), Does.Contain("| ok |").And.Contain("3 cases with figures (families: tensor-tf32; not in the tables: tensor-bf16)"));
        Assert.That(TargetRow(summary, "bf16 GEMM"), Does.EndWith("| - | - | >= 250 | - | >= 400 | - |"), "not measured, not failed");
        Assert.That(TargetRow(summary, "W1 step"), Does.Contain("| >= PyTorch TF32 graph (-) | - |"), "no PyTorch: not judged");
        Assert.That(Row(summary, "tables"), Does.Contain("targets met: 4 of 6 (0 not met, 2 not measured)"));
        Assert.That(calls, Does.Not.Contain("ncu "));
    }

    [Test]
    public void No_access_to_the_performance_counters_skips_the_profile()
    {
        var (code, summary, _) = RunScript(("STUB_NCU_PERM", "1"));
        Assert.That(code, Is.Zero, summary);
        Assert.That(Row(summary, "ncu-w3-tf32"), Does.Contain("| skipped |").And.Contain("ERR_NVGPUCTRPERM"));
    }

    [Test]
    public void Without_cuda_the_devices_part_fails()
    {
        var (code, summary, _) = RunScript(("STUB_NO_CUDA", "1"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "devices"), Does.Contain("| FAILED (no usable CUDA device) |"));
    }

    [Test]
    public void A_budget_too_short_leaves_the_last_parts_not_run_and_fails()
    {
        var (code, summary, _) = RunScript(("BUDGET", "4"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "train-bf16"), Does.Contain("NOT RUN (budget spent)"));
    }

    // ---------------------------------------------------------------- tables.py precision on fixture files

    (int Code, string Line, string Md) Tables(params string[] args)
    {
        var md = Path.Combine(dir, "precision.md");
        var psi = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])[Path.Combine(Repo.Root, "benchmarks", "gpu", "tables.py"), "precision", "--md", md, "--device", "cuda:0", .. args])
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        var line = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.That(err.Result, Is.Empty);
        return (p.ExitCode, line.Trim(), File.ReadAllText(md));
    }

    string Fixture(string name, string text) { var path = Path.Combine(dir, name); Directory.CreateDirectory(Path.GetDirectoryName(path)!); File.WriteAllText(path, text); return path; }

    /// <summary>A GemmBenchmarks JSON report: each (family, TFLOP/s) at 4096^3 as the three products' figure.</summary>
    string GemmReport(params (string Family, double Tflops)[] cases)
    {
        var folder = Path.Combine(dir, "bdn-gemm");
        double flops = 2.0 * 4096 * 4096 * 4096;
        var items = cases.SelectMany(c => new[] { "Forward", "WeightGrad", "InputGrad" }.Select(m =>
            "{\"Type\":\"GemmBenchmarks\",\"Method\":\"" + m + "\",\"Parameters\":\"Device=cuda:0&Family=" + c.Family +
            "&Shape=4096x4096x4096\",\"Statistics\":{\"Mean\":" + (flops / (c.Tflops * 1e3)).ToString(System.Globalization.CultureInfo.InvariantCulture) + "}}"));
        Fixture(Path.Combine("bdn-gemm", "results", "x-report-full-compressed.json"), $$"""{"Benchmarks":[{{string.Join(",", items)}}]}""");
        return folder;
    }

    string StepsLog(string name, string w1, string w3) => Fixture(name, $"""
        | Type | Method | Device | Workload | Mean | samples/s | launches/step |
        |--- |--- |--- |--- |---:|---:|---:|
        | **TrainingStepBenchmarks** | **'training steps (20; W3: 2)'** | **cuda:0** | **W1** | **1 ms** | **{w1}** | **11** |
        | TrainingStepBenchmarks | 'training steps (20; W3: 2)' | cuda:0 | W3 | 1 ms | {w3} | 12 |
        """);

    string TorchJson(string name, double w1Graph, double w3Graph, double gflops4096) => Fixture(name,
        $$$"""{"precision":"x","steps":[{"workload":"W1","mode":"graph","samples_per_s":{{{w1Graph}}}},{"workload":"W3","mode":"graph","samples_per_s":{{{w3Graph}}}}],"gemm":[{"shape":"4096x4096x4096","gflops":{{{gflops4096}}}}]}""");

    string TrainLog(string name, string accuracy) => Fixture(name,
        $"precision x: tensor cores (the tensor-x kernels): each product input rounded, sums in float32\ntest accuracy {accuracy}, test loss 0.33 (10,000 images); 54,000 train / 6,000 validation images, 7.5 s in all\n");

    [Test]
    public void The_targets_are_met_at_their_thresholds_and_goals_from_the_figures_given()
    {
        var (code, line, md) = Tables("--gpu", "NVIDIA H200", "--gemm-bdn", GemmReport(("tensor-tf32", 210), ("tensor-bf16", 410)),
            "--steps", "tf32=" + StepsLog("s32.txt", "1,300,000", "3,072,000"), "--torch", "tf32=" + TorchJson("t32.json", 1_160_000, 2_934_000, 333_700),
            "--train", "tf32=" + TrainLog("a.txt", "0.8950"), "--train", "bf16=" + TrainLog("b.txt", "0.8856"));
        Assert.That(code, Is.Zero);
        Assert.That(TargetRow(md, "TF32 GEMM"), Does.EndWith("| 210.0 | 42% | >= 150 | yes | >= 200 | yes |"));
        Assert.That(TargetRow(md, "bf16 GEMM"), Does.EndWith("| 410.0 | 41% | >= 250 | yes | >= 400 | yes |"));
        Assert.That(TargetRow(md, "W3 step"), Does.EndWith("| 0.333 | - | <= 0.5 | yes | <= PyTorch TF32 graph (0.349) | yes |"));
        Assert.That(TargetRow(md, "W1 step"), Does.EndWith("| 1,300,000 | - | >= PyTorch TF32 graph (1,160,000) | yes | - | - |"));
        Assert.That(TargetRow(md, "test accuracy in tf32"), Does.EndWith("| +0.0047 | - | within 0.005 | yes | - | - |"));
        Assert.That(TargetRow(md, "test accuracy in bf16"), Does.EndWith("| -0.0047 | - | within 0.005 | yes | - | - |"));
        Assert.That(line, Is.EqualTo("targets met: 6 of 6 (0 not met, 0 not measured); goals met: 3"));
        Assert.That(md, Does.Contain("Peak: NVIDIA H200, dense TF32 494.5 and bf16 989.5 TFLOP/s"));
    }

    [Test]
    public void Figures_below_the_targets_are_not_met_and_an_unknown_gpu_has_no_fraction_of_peak()
    {
        var (code, line, md) = Tables("--gpu", "NVIDIA H100 PCIe", "--gemm-bdn", GemmReport(("tensor-tf32", 149.9), ("tensor-bf16", 249)),
            "--steps", "tf32=" + StepsLog("s32.txt", "1,100,000", "2,000,000"), "--torch", "tf32=" + TorchJson("t32.json", 1_160_000, 2_934_000, 333_700),
            "--train", "tf32=" + TrainLog("a.txt", "0.8852"), "--acc-tolerance", "0.005");
        Assert.That(code, Is.Zero);
        Assert.That(TargetRow(md, "TF32 GEMM"), Does.EndWith("| 149.9 | - | >= 150 | no | >= 200 | no |"));
        Assert.That(TargetRow(md, "bf16 GEMM"), Does.EndWith("| 249.0 | - | >= 250 | no | >= 400 | no |"));
        Assert.That(TargetRow(md, "W3 step"), Does.EndWith("| 0.512 | - | <= 0.5 | no | <= PyTorch TF32 graph (0.349) | no |"));
        Assert.That(TargetRow(md, "W1 step"), Does.EndWith("| 1,100,000 | - | >= PyTorch TF32 graph (1,160,000) | no | - | - |"));
        Assert.That(TargetRow(md, "test accuracy in tf32"), Does.EndWith("| -0.0051 | - | within 0.005 | no | - | - |"));
        Assert.That(TargetRow(md, "test accuracy in bf16"), Does.EndWith("| - | - | within 0.005 | - | - | - |"), "no bf16 run: not measured");
        Assert.That(line, Is.EqualTo("targets met: 0 of 6 (5 not met, 1 not measured); goals met: 0"));
        Assert.That(md, Does.Contain("Peak: not known for 'NVIDIA H100 PCIe'"));
    }
}
