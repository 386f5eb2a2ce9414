using System.Diagnostics;

namespace Gpu.Tests.Cli;

/// <summary>
/// benchmarks/gpu/devices-light.sh, issue 21's measurements on a GPU machine, driven here with stand-ins for the program
/// and NumPy (no GPU here): it registers the NVIDIA OpenCL driver when no ICD file names it and hands the registration to
/// every later run, finds the OpenCL GPU and POCL in gpu devices, runs the check and W1/W3 on the OpenCL GPU and on CUDA,
/// POCL at every thread count asked for after compiling into its own kernel cache, and NumPy, and puts the figures side
/// by side with the ratios the issue's targets are about; a device that is not there is skipped, a failed check fails.
/// </summary>
public sealed class DevicesLightScriptTests : TempFolderTest
{
    static readonly string[] Parts =
    [
        "kit", "machine", "icd", "devices", "check-cl-gpu", "w1-cl-gpu", "w3-cl-gpu", "w1-cuda", "w3-cuda", "pocl-compile-w1",
        "pocl-compile-w3", "w1-pocl", "w1-pocl-8", "w1-pocl-2", "w3-pocl", "w3-pocl-8", "w3-pocl-2", "numpy",
    ];

    // gpu: an OpenCL GPU at opencl:1 and POCL at opencl:0 (STUB_NO_GPU: neither the OpenCL GPU nor CUDA); train prints one
    // line per epoch, its figure chosen by device and POCL thread count
    const string GpuStub = """
        #!/usr/bin/env bash
        echo "gpu $* | icd=${OCL_ICD_VENDORS:+$(cat "$OCL_ICD_VENDORS/nvidia.icd")} | threads=${POCL_MAX_PTHREAD_COUNT:-all} | cache=${POCL_CACHE_DIR:+set}" >> "$STUB_CALLS"
        case "$1" in
          devices) if [[ -n "${STUB_NO_GPU:-}" ]]; then
                     echo "cuda       CUDA       no              -  -: no CUDA driver (none of libcuda.so.1, libcuda.so, nvcuda.dll loads)"
                   else
                     echo "cuda:0     CUDA       yes    139.8 GiB  NVIDIA H200: compute capability SM_90, 132 SMs"
                     echo "opencl:1   OpenCL GPU yes    139.8 GiB  NVIDIA H200: OpenCL 3.0 CUDA, NVIDIA CUDA, generic address space: no; used at ILGPU optimisation level O2"
                   fi
                   echo "opencl:0   OpenCL CPU yes     60.0 GiB  pthread-sapphirerapids: OpenCL 3.0, Portable Computing Language, generic address space: no; used at O2"
                   echo "--device auto picks opencl:0 (pthread), auto" ;;
          check) echo "808 of 808 checks passed (tolerance 1E-005)" ;;
          train) d=""; e=1; prev=""; for a in "$@"; do [[ "$prev" == --device ]] && d="$a"; [[ "$prev" == --epochs ]] && e="$a"; prev="$a"; done
                 case "$d:${POCL_MAX_PTHREAD_COUNT:-all}" in
                   cuda*) f=(400k 800k 800k) ;; opencl:1*) f=(300k 600k 600k) ;;
                   opencl:0:all) f=(100k 150k 160k) ;; opencl:0:8) f=(120k 141k 141k) ;; *) f=(70k 79k 79k) ;;
                 esac
                 for (( i = 1; i <= e; i++ )); do echo "epoch   $i/$e loss 0.4 acc 0.86 | val 0.34 acc 0.87 | 0.4s ${f[i-1]} samples/s"; done
                 echo "test accuracy 0.8700, test loss 0.37 (10,000 images); 54,000 train / 6,000 validation images, 2.0 s in all" ;;
        esac
        if [[ -n "${STUB_FAIL:-}" && "$*" == *"$STUB_FAIL"* ]]; then exit 4; fi
        exit 0
        """;

    const string PythonStub = """
        #!/usr/bin/env bash
        echo "python $*" >> "$STUB_CALLS"
        if [[ "$*" == *"import numpy"* ]]; then exit 0; fi
        echo "BLAS: libopenblasp-r0.3.21.so | openblas 0.3.21 | core SkylakeX | threads 16"
        echo "workload mode    batch      samples/s    ms/step   steps"
        echo "W1       numpy     128         88,000     1.4545     100"
        echo "W3       numpy    1024         15,800    64.8000      10"
        """;

    string Stub(string name, string text) => KitScript.Stub(dir, name, text);

    string Out => Path.Combine(dir, "out");

    (int Code, string Summary, string Calls) RunScript(params (string Key, string? Value)[] env)
    {
        Assume.That(Directory.Exists("/etc/OpenCL/vendors") && Directory.GetFiles("/etc/OpenCL/vendors").Any(f => File.ReadAllText(f).Contains("nvidia")), Is.False,
            "this machine registers the NVIDIA OpenCL driver itself");
        string library = Path.Combine(dir, "libnvidia-opencl.so.1");
        File.WriteAllText(library, "");
        return KitScript.Run("devices-light.sh", dir, Out,
            [("BENCH", "stub"), ("GPU", Stub("gpu", GpuStub)), ("PYTHON", Stub("python", PythonStub)), ("NVIDIA_OPENCL", library),
             ("POCL_MAX_PTHREAD_COUNT", null), ("OCL_ICD_VENDORS", null)], env);
    }

    static string Row(string summary, string part) => KitScript.Row(summary, part);

    static List<string> PartRows(string summary) => KitScript.PartRows(summary);

    [Test]
    public void Every_device_is_measured_in_order_and_the_figures_stand_side_by_side()
    {
        var (code, summary, calls) = RunScript();
        Assert.That(code, Is.Zero, summary);
        Assert.That(PartRows(summary), Is.EqualTo(Parts));
        Assert.That(Row(summary, "icd"), Does.Contain("| ok |").And.Contain($"registered {Path.Combine(dir, "libnvidia-opencl.so.1")}"));
        Assert.That(Row(summary, "check-cl-gpu"), Does.Contain("opencl:1: 808 of 808 checks passed"));
        Assert.That(Row(summary, "w1-cl-gpu"), Does.Contain("samples/s per epoch: 300k, 600k, 600k; test accuracy 0.8700"));
        Assert.That(Row(summary, "w3-cl-gpu"), Does.Contain("samples/s per epoch: 300k, 600k;"), "W3: 2 epochs");

        var lines = calls.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines.Where(l => l.StartsWith("gpu ")), Has.All.Contains($"icd={Path.Combine(dir, "libnvidia-opencl.so.1")}"),
            "every run sees the registered NVIDIA OpenCL driver");
        Assert.That(lines, Has.Some.StartsWith("gpu check --device opencl:1 |"));
        Assert.That(lines.Where(l => l.Contains("--device opencl:0")).Select(l => l.Split("threads=")[1].Split(' ')[0]),
            Is.EqualTo(new[] { "all", "all", "all", "8", "2", "all", "8", "2" }), "the compile runs, then W1 and W3 at each thread count");
        Assert.That(lines.Where(l => l.Contains("--device opencl:0")), Has.All.Contains("cache=set"), "POCL compiles into its own kernel cache");
        Assert.That(lines.Where(l => l.Contains("--device opencl:0") && l.Contains("--limit 20000")).Count(), Is.EqualTo(3), "W3 on POCL: 20000 images");

        Assert.That(summary, Does.Contain("| W1 | w1-cl-gpu | 300k / 600k | OpenCL / CUDA (last epochs): 0.75x (target >= 0.5x) |"));
        Assert.That(summary, Does.Contain("| W3 | w3-cuda | 400k / 800k | - |"));
        Assert.That(summary, Does.Contain("| W1 | w1-pocl | 100k / 160k | / NumPy: first epoch 1.14x, last 1.82x |"));
        Assert.That(summary, Does.Contain("| W1 | w1-pocl-8 | 120k / 141k | / NumPy: first epoch 1.36x, last 1.60x |"));
        Assert.That(summary, Does.Contain("| W3 | w3-pocl-2 | 70k / 70k | / NumPy: first epoch 4.43x, last 4.43x |"));
        Assert.That(summary, Does.Contain("| W3 | numpy | 15,800 | - |"));
        Assert.That(summary, Does.EndWith("all parts passed\n"));
    }

    [Test]
    public void Without_an_opencl_gpu_or_cuda_their_parts_are_skipped_and_the_run_passes()
    {
        var (code, summary, _) = RunScript(("STUB_NO_GPU", "1"), ("POCL_THREADS", "all 2"));
        Assert.That(code, Is.Zero, summary);
        foreach (var part in new[] { "check-cl-gpu", "w1-cl-gpu", "w3-cl-gpu" })
            Assert.That(Row(summary, part), Does.Contain("| skipped |").And.Contain("no usable OpenCL GPU"));
        Assert.That(Row(summary, "w1-cuda"), Does.Contain("| skipped |").And.Contain("no CUDA driver"));
        Assert.That(PartRows(summary), Does.Not.Contain("w1-pocl-8").And.Contain("w1-pocl-2"));
        Assert.That(summary, Does.Not.Contain("OpenCL / CUDA"));
    }

    [Test]
    public void A_failed_check_on_the_opencl_gpu_fails_the_run_and_the_rest_still_runs()
    {
        var (code, summary, _) = RunScript(("STUB_FAIL", "check --device opencl:1"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "check-cl-gpu"), Does.Contain("| FAILED (exit code 4) |"));
        Assert.That(Row(summary, "numpy"), Does.Contain("| ok |").And.Contain("W1 88,000, W3 15,800 samples/s"));
        Assert.That(summary, Does.Contain("**FAILED**"));
    }

    [Test]
    public void A_budget_too_short_leaves_the_last_parts_not_run_and_fails()
    {
        var (code, summary, _) = RunScript(("BUDGET", "4"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(Row(summary, "numpy"), Does.Contain("NOT RUN (budget spent)"));
    }
}
