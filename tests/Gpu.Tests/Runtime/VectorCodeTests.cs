using System.Diagnostics;
using System.Text.RegularExpressions;
using Gpu.Engine.Runtime;

namespace Gpu.Tests.Runtime;

/// <summary>
/// The OpenCL CPU path is fast only while the driver's compiler emits SIMD code for its hot kernels,
/// and that is fragile (for ILGPU's kernels a group size, a SpecializedValue constant or a compiler
/// flag can turn it into scalar code without any other sign). POCL keeps the machine code it compiles
/// in its kernel cache: this test trains briefly in a child process with a fresh cache (POCL_CACHE_DIR),
/// disassembles the compiled kernels (objdump) and requires packed arithmetic on 256- or 512-bit
/// registers in every hot one. No timing: it reads the code.
/// </summary>
public sealed class VectorCodeTests : TempFolderTest
{
    /// <summary>Kernel (as POCL names its compiled file) and the packed instructions it must contain at least this many of.</summary>
    static readonly (string Kernel, string Pattern, int AtLeast)[] Hot =
    [
        ("dense_forward", PackedFma, 16),
        ("weight_grad", PackedFma, 16),
        ("input_grad", PackedFma, 16),
        ("gemm_packed", PackedFma, 16),
        ("Kernel_SgdMomentum", PackedArithmetic, 4),
        ("Kernel_GatherBatch", PackedConvert, 1),
    ];

    const string PackedFma = @"\bvfn?madd\d*ps\b.*%[yz]mm";
    const string PackedArithmetic = @"\bv(add|sub|mul|fn?madd\d*)ps\b.*%[yz]mm";
    const string PackedConvert = @"\bvcvt(u?dq2ps|dq2ps)\b.*%[yz]mm";

    [Test]
    public void The_hot_kernels_compile_to_simd_code_on_pocl()
    {
        if (!DeviceCase.Required("opencl") && !ComputeDevice.List().Any(d => d.Id.StartsWith("opencl:")))
            Assert.Ignore("skipped: no usable OpenCL device (bash .ci/install-opencl installs POCL)");
        var probe = Tool("objdump", "--version");
        Assert.That(probe.Code, Is.Zero, "objdump (binutils) reads the compiled kernels; bash .ci/install-opencl installs it");

        // 784-128-10 at batch 1024: the first layer's products are large enough to be packed, the second's are not
        var cache = Path.Combine(dir, "pocl-cache");
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "gpu")) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "train", "--device", "opencl", "--limit", "2048", "--epochs", "1", "--layers", "128", "--batch-size", "1024", "--val-fraction", "0" })
            psi.ArgumentList.Add(a);
        psi.Environment["POCL_CACHE_DIR"] = cache;
        using (var p = Process.Start(psi)!)
        {
            var err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.That(p.ExitCode, Is.Zero, err.Result);
        }

        foreach (var (kernel, pattern, atLeast) in Hot)
        {
            var files = Directory.GetFiles(cache, kernel + ".so", SearchOption.AllDirectories);
            Assert.That(files, Is.Not.Empty, $"POCL compiled {kernel}");
            var dis = Tool("objdump", "-d", "--no-show-raw-insn", files[0]);
            int packed = Regex.Matches(dis.Out, pattern, RegexOptions.Multiline).Count;
            TestContext.Out.WriteLine($"{kernel}: {packed} packed instructions matching {pattern}");
            Assert.That(packed, Is.GreaterThanOrEqualTo(atLeast), $"{kernel} compiled to scalar code ({files[0]})");
        }
    }

    static (int Code, string Out) Tool(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            string o = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, o);
        }
        catch (System.ComponentModel.Win32Exception) { return (-1, ""); }
    }
}
