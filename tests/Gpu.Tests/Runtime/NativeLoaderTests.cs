using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ArchUnitNET.Domain.Dependencies;
using ArchUnitNET.Loader;
using Gpu.Engine.Runtime;

namespace Gpu.Tests.Runtime;

/// <summary>
/// The drivers' libraries are found by the engine's resolver (Runtime/NativeLoader.cs), which must be registered before
/// ILGPU's first driver call (ILGPU decides once per process whether CUDA exists), and gpu devices tells "no CUDA driver"
/// from "a CUDA driver that sees no GPU" (Runtime/CudaDriver.cs).
/// </summary>
public sealed class NativeLoaderTests
{
    /// <summary>A probe that says yes to <paramref name="present"/> and records what it was asked, in order.</summary>
    static (Func<string, bool> Probe, List<string> Asked) Files(params string[] present)
    {
        var asked = new List<string>();
        return (f => { asked.Add(f); return present.Contains(f); }, asked);
    }

    [Test]
    public void Cuda_resolves_to_libcuda_so_1_then_libcuda_so_then_nvcuda_dll_asking_no_further_than_the_first_that_loads()
    {
        var all = Files("libcuda.so.1", "libcuda.so", "nvcuda.dll");
        Assert.That(NativeLoader.Choose("cuda", all.Probe), Is.EqualTo("libcuda.so.1"));
        Assert.That(all.Asked, Is.EqualTo(new[] { "libcuda.so.1" }));

        var noSo1 = Files("libcuda.so", "nvcuda.dll");   // a development link without the driver's own name
        Assert.That(NativeLoader.Choose("cuda", noSo1.Probe), Is.EqualTo("libcuda.so"));
        Assert.That(noSo1.Asked, Is.EqualTo(new[] { "libcuda.so.1", "libcuda.so" }));

        var windows = Files("nvcuda.dll");
        Assert.That(NativeLoader.Choose("CUDA", windows.Probe), Is.EqualTo("nvcuda.dll"), "names are matched without case, as .NET's imports are");
        Assert.That(windows.Asked, Is.EqualTo(new[] { "libcuda.so.1", "libcuda.so", "nvcuda.dll" }));

        var none = Files();
        Assert.That(NativeLoader.Choose("cuda", none.Probe), Is.Null);
        Assert.That(none.Asked, Has.Count.EqualTo(3));
    }

    [Test]
    public void OpenCl_resolves_to_libOpenCL_so_1_first_and_other_names_are_left_to_dotnet()
    {
        var all = Files(OpenClNative.LoaderNames);
        Assert.That(NativeLoader.Choose("OpenCL", all.Probe), Is.EqualTo("libOpenCL.so.1"));
        var other = Files("libm.so.6");
        Assert.That(NativeLoader.Choose("m", other.Probe), Is.Null);
        Assert.That(other.Asked, Is.Empty, "a name the engine does not map is not probed");
    }

    [Test]
    public void The_resolver_is_registered_by_the_engines_module_initializer()
    {
        var register = typeof(NativeLoader).GetMethod(nameof(NativeLoader.Register), System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic)!;
        Assert.That(register.GetCustomAttributes(typeof(ModuleInitializerAttribute), false), Is.Not.Empty,
            "registered when the engine's assembly loads, before any of its code runs");
        Assert.That(NativeLoader.Registered, Is.True);
    }

    /// <summary>ILGPU members whose first call asks a driver (and fixes ILGPU's view of CUDA or OpenCL for the process).</summary>
    static bool OpensDrivers(MethodCallDependency d)
    {
        string type = d.Target.FullName, member = d.TargetMember.Name;
        return (type == "ILGPU.Context" && member.StartsWith("Create"))
            || (type is "ILGPU.Context+Builder" or "ILGPU.Context/Builder" && (member.StartsWith("Default(") || member.StartsWith("AllAccelerators(")))
            || (type.EndsWith("ContextExtensions") && (member.StartsWith("Cuda(") || member.StartsWith("OpenCL(")))   // b.Cuda(), b.OpenCL(): extension methods
            || (type.StartsWith("ILGPU.Runtime.Cuda.Cuda") && (type.EndsWith("Device") || type.EndsWith("API") || type.EndsWith("Accelerator")) && member != "get_Architecture()")
            || (type.StartsWith("ILGPU.Runtime.OpenCL.CL") && (type.EndsWith("Device") || type.EndsWith("API")) && member.StartsWith("GetDevices"));
    }

    [Test]
    public void Only_the_engine_opens_drivers_through_ILGPU_so_the_resolver_is_registered_before_the_first_driver_call()
    {
        // the engine, the gpu program, these tests and the benchmarks (the kit's program), as Gpu.sln builds them
        var assemblies = new[] { typeof(NativeLoader).Assembly, typeof(Gpu.Cli.Program).Assembly, typeof(NativeLoaderTests).Assembly };
        var output = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/', '\\'));   // tests/Gpu.Tests/bin/<configuration>/<framework>
        string benchmarks = Path.Combine(Repo.Root, "benchmarks", "Gpu.Benchmarks", "bin", output.Parent!.Name, output.Name, "Gpu.Benchmarks.dll");
        Assert.That(File.Exists(benchmarks), $"{benchmarks}: build Gpu.sln");
        var architecture = new ArchLoader().LoadAssemblies(assemblies).LoadFilteredDirectory(Path.GetDirectoryName(benchmarks)!, "Gpu.Benchmarks.dll").Build();
        Assert.That(architecture.Types.Select(t => t.Assembly.FullName.Split(',')[0]).Distinct(), Is.SupersetOf(new[] { "Gpu.Engine", "gpu", "Gpu.Tests", "Gpu.Benchmarks" }));
        var calls = architecture.Types.SelectMany(t => t.Dependencies.OfType<MethodCallDependency>()
            .Where(OpensDrivers).Select(d => (Caller: t, Call: $"{t.FullName} -> {d.Target.FullName}.{d.TargetMember.Name}"))).ToList();
        var engine = calls.Where(c => c.Caller.Assembly.FullName.StartsWith("Gpu.Engine,")).Select(c => c.Call).ToList();
        Assert.That(engine, Has.Some.Contains("ILGPU.Context.Create"), "the scan finds the engine's own context creation (else it proves nothing)");
        Assert.That(engine, Has.Some.Contains("CudaContextExtensions.Cuda("), "and its registration of CUDA devices");
        Assert.That(calls.Where(c => !c.Caller.Assembly.FullName.StartsWith("Gpu.Engine,")).Select(c => c.Call), Is.Empty,
            "code outside Gpu.Engine calls ILGPU's driver entry points directly: it may run before the engine's module initializer registers the resolver; open devices through ComputeDevice");
    }

    [Test]
    public void No_cuda_driver_and_a_driver_that_sees_no_GPU_read_differently()
    {
        string none = CudaDriver.AbsenceReason(new CudaProbe(null));
        Assert.That(none, Is.EqualTo("no CUDA driver (none of libcuda.so.1, libcuda.so, nvcuda.dll loads)"));

        string noGpu = CudaDriver.AbsenceReason(new CudaProbe("libcuda.so.1", HasInit: true, InitResult: 100, DriverVersion: 12080));
        Assert.That(noGpu, Does.StartWith("a CUDA driver is installed (libcuda.so.1, CUDA 12.8) but sees no GPU: cuInit returned CUDA_ERROR_NO_DEVICE (100)"));
        Assert.That(noGpu, Does.Contain("--gpus all"));

        string counted0 = CudaDriver.AbsenceReason(new CudaProbe("libcuda.so", HasInit: true, InitResult: 0, DriverVersion: 13000, DeviceCount: 0));
        Assert.That(counted0, Is.EqualTo("a CUDA driver is installed (libcuda.so, CUDA 13.0) but sees no GPU (it counts 0 devices)"));

        Assert.That(CudaDriver.AbsenceReason(new CudaProbe("libcuda.so.1", HasInit: true, InitResult: 34)),
            Is.EqualTo("a CUDA driver is installed (libcuda.so.1) but sees no GPU: cuInit returned CUDA_ERROR_STUB_LIBRARY (34) (the CUDA toolkit's stub library, not the driver, is first on the library path)"));
        Assert.That(CudaDriver.AbsenceReason(new CudaProbe("libcuda.so.1")), Is.EqualTo("libcuda.so.1 loads but is not a CUDA driver (it has no cuInit)"));
        Assert.That(CudaDriver.AbsenceReason(new CudaProbe("libcuda.so.1", true, 0, 12080, 2)), Does.EndWith("counts 2 GPUs, but ILGPU opened none"));
        foreach (var m in new[] { none, noGpu, counted0 }) Assert.That(m, Does.Not.Contain("\n"));
    }

    [Test]
    public void Gpu_devices_finds_a_library_named_libcuda_so_1_through_the_resolver_in_a_fresh_process()
    {
        Assume.That(NativeLibrary.TryLoad("libcuda.so", out _) || NativeLibrary.TryLoad("libcuda.so.1", out _), Is.False,
            "a CUDA driver is installed here: the fake one would not be the one found");
        Assume.That(OperatingSystem.IsLinux(), "ELF shared libraries and LD_LIBRARY_PATH");
        // any shared library without cuInit, under the driver's file name only (no libcuda.so): .NET's own probing never finds it
        string dir = Directory.CreateTempSubdirectory("gpu-fake-cuda-").FullName;
        try
        {
            File.Copy(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libSystem.Native.so"), Path.Combine(dir, "libcuda.so.1"));
            var (code, output, err) = Run(Path.Combine(AppContext.BaseDirectory, "gpu"), ["devices"], dir);
            Assert.That(code, Is.Zero, err);
            Assert.That(output, Does.Contain("libcuda.so.1 loads but is not a CUDA driver (it has no cuInit)"), output);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Builds a library named libcuda.so.1 whose cuInit says CUDA_ERROR_NO_DEVICE, as a driver in a container without GPUs does.</summary>
    [Test]
    public void Gpu_devices_says_a_driver_that_sees_no_GPU_sees_no_GPU_in_a_fresh_process()
    {
        Assume.That(NativeLibrary.TryLoad("libcuda.so", out _) || NativeLibrary.TryLoad("libcuda.so.1", out _), Is.False, "a CUDA driver is installed here");
        Assume.That(OperatingSystem.IsLinux(), "ELF shared libraries and LD_LIBRARY_PATH");
        string dir = Directory.CreateTempSubdirectory("gpu-nogpu-cuda-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "cuda.c"),
                "int cuInit(unsigned f) { return 100; }\nint cuDriverGetVersion(int* v) { *v = 12080; return 0; }\nint cuDeviceGetCount(int* c) { *c = 0; return 3; }\n");
            var (code, _, err) = Run("cc", ["-shared", "-fPIC", "-o", Path.Combine(dir, "libcuda.so.1"), Path.Combine(dir, "cuda.c")], dir);
            Assume.That(code, Is.Zero, $"no C compiler to build the stand-in driver ({err})");
            var (rc, output, error) = Run(Path.Combine(AppContext.BaseDirectory, "gpu"), ["devices"], dir);
            Assert.That(rc, Is.Zero, error);
            Assert.That(output, Does.Contain("cuda       CUDA       no              -  -: a CUDA driver is installed (libcuda.so.1, CUDA 12.8) but sees no GPU: cuInit returned CUDA_ERROR_NO_DEVICE (100)"), output);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Runs <paramref name="file"/> with <paramref name="dir"/> as LD_LIBRARY_PATH; exit code -1 when it cannot start.</summary>
    static (int Code, string Out, string Err) Run(string file, string[] args, string dir)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["LD_LIBRARY_PATH"] = dir;
        try
        {
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output, err.Result);
        }
        catch (System.ComponentModel.Win32Exception e) { return (-1, "", e.Message); }
    }
}
