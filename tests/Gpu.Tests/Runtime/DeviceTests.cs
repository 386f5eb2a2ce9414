using Gpu.Engine;
using Gpu.Engine.Runtime;
using Gpu.Engine.Settings;
using ILGPU;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Runtime;

/// <summary>Which devices the engine uses, what it decides for each, and what it tells the user.</summary>
public sealed class DeviceTests
{
    static void NeedOpenCl()
    {
        if (!DeviceCase.Required("opencl") && !ComputeDevice.List().Any(d => d.Id.StartsWith("opencl:")))
            Assert.Ignore("skipped: no usable OpenCL device (bash .ci/install-opencl installs POCL)");
    }

    [Test]
    public void The_cpu_accelerator_profile_uses_the_vector4_products_and_chunked_element_wise_work()
    {
        using var device = ComputeDevice.Open("cpu");
        var p = device.Profile;
        Assert.That((p.Kind, p.Gemm, p.MaxGroupSize, p.ElementwiseThreads), Is.EqualTo((DeviceKind.CpuAccelerator, (GemmFamily)GemmFamilies.Vector4, 4, 8 * Environment.ProcessorCount)));
        Assert.That(p.Gemm.Describe(p), Is.EqualTo("vector4"));
        Assert.That(GemmFamilies.Tiled.Describe(p), Is.EqualTo("tiled (8x8 tiles)"), "groups of 4 take the small tile");
        Assert.That((p.Multiprocessors, p.ComputeCapability), Is.EqualTo((Environment.ProcessorCount, ((int, int)?)null)), "one multiprocessor per core");
        Assert.That(p.IsHost, Is.True);
        Assert.That(p.ResidentDataBytes, Is.EqualTo(p.MemoryBytes / 2));
        Assert.That(p.Chunk(1000), Is.EqualTo((1000 + p.ElementwiseThreads - 1) / p.ElementwiseThreads));
    }

    [Test]
    public void An_opencl_cpu_device_gets_the_cl_vector_products_and_chunked_element_wise_work_in_groups_of_one()
    {
        NeedOpenCl();
        using var device = ComputeDevice.Open("opencl");
        var p = device.Profile;
        Assert.That((p.Kind, p.Gemm.Name, p.ElementwiseThreads, p.ElementwiseGroupSize), Is.EqualTo((DeviceKind.OpenClCpu, "cl-vector", 8 * p.Multiprocessors, 1)),
            "8 chunks per thread of the driver (its compute units)");
        Assert.That(((ClVectorFamily)p.Gemm).PackAboveMacs, Is.EqualTo(ClVectorFamily.PackedProductMacs));
        Assert.That(p.RunnableFamilies.Select(f => f.Name), Is.EquivalentTo(new[] { "scalar", "tiled", "cl-vector", "blocked" }));
        Assert.That(p.Multiprocessors, Is.GreaterThan(0), "the driver's compute units");
        Assert.That(p.IsHost, Is.True);
        Assert.That(device.Reason, Does.Contain("requested").And.Contain("O2"));
    }

    // Issue 21, part 1: an OpenCL GPU whose driver reports no generic address space (NVIDIA's for an H200) was refused,
    // although the O2 kernels need none; it is now used at O2 like POCL, with the GPU families.
    [Test]
    public void The_opencl_rule_accepts_cpus_and_gpus_without_generic_address_space_at_O2()
    {
        foreach (bool cpu in new[] { true, false })
        {
            var v = OpenClRule.Judge(openClC20: true, reportsGenericAddressSpace: false, isCpu: cpu, cVersion: "3.0");
            Assert.That((v.Accepted, v.OverridesDriver), Is.EqualTo((true, true)), cpu ? "CPU" : "GPU");
            Assert.That(v.Why, Does.StartWith("used at ILGPU optimisation level O2"));
        }
        Assert.That(OpenClRule.Judge(true, true, false, "3.0"), Is.EqualTo(new OpenClVerdict(true, false, "used: the driver reports the generic address space ILGPU's kernels use")));
        var old = OpenClRule.Judge(false, false, false, "1.2");
        Assert.That((old.Accepted, old.Why), Is.EqualTo((false, "refused: OpenCL C 1.2; ILGPU's kernels need OpenCL 2.0 or later")));
    }

    [Test]
    public void Gpus_prefer_the_blocked_products_and_cpus_their_own()
    {
        Assert.That(DeviceProfile.For(DeviceKind.OpenClGpu, 1L << 34, multiprocessors: 132).Gemm.Name, Is.EqualTo("blocked"));
        Assert.That(DeviceProfile.For(DeviceKind.Cuda, 1L << 34, multiprocessors: 132).Gemm.Name, Is.EqualTo("blocked"));
        Assert.That(DeviceProfile.For(DeviceKind.OpenClCpu, 1L << 34).Gemm.Name, Is.EqualTo("cl-vector"));
        Assert.That(DeviceProfile.For(DeviceKind.CpuAccelerator, 1L << 34).Gemm.Name, Is.EqualTo("vector4"));
        Assert.That(DeviceProfile.For(DeviceKind.OpenClGpu, 1L << 34).RunnableFamilies.Select(f => f.Name), Does.Not.Contain("cl-vector"), "written for CPU vector units");
    }

    [Test]
    public void Auto_prefers_an_opencl_cpu_device_to_the_cpu_accelerator_and_says_why()
    {
        NeedOpenCl();
        using var device = ComputeDevice.Open("auto");
        Assert.That(device.Id, Does.StartWith("opencl:"));
        Assert.That(device.Reason, Does.StartWith("auto: no CUDA").And.Contain("no OpenCL GPU").And.Contain("OpenCL CPU device"));
    }

    [Test]
    public void Devices_lists_what_the_driver_reports_and_why_the_engine_uses_the_device()
    {
        NeedOpenCl();
        var r = Run("devices");
        Assert.That(r.Code, Is.Zero, r.Err);
        var line = r.Out.Split('\n').Single(l => l.StartsWith("opencl:0"));
        Assert.That(line, Does.Contain("OpenCL CPU").And.Contain("yes").And.Contain("OpenCL 3.0").And.Contain("generic address space: no")
            .And.Contain("used at ILGPU optimisation level O2"));
        Assert.That(r.Out, Does.Contain("--device auto picks opencl:0"));
    }

    [Test]
    public void A_device_without_generic_address_space_is_refused_below_O2_in_one_line()
    {
        NeedOpenCl();
        var e = Assert.Throws<UserError>(() => ComputeDevice.Open("opencl", OptimizationLevel.O1))!;
        Assert.That(e.Message, Does.StartWith("opencl:0 (").And.Contain("O2 only").And.Contain("generic address space"));
        Assert.That(e.Message, Does.Not.Contain("\n"));
        using var auto = ComputeDevice.Open("auto", OptimizationLevel.O1);   // auto leaves it out at O1
        Assert.That(auto.Id, Is.EqualTo("cpu"));
    }

    [Test]
    public void Asking_for_a_device_that_is_not_there_is_one_line()
    {
        NeedOpenCl();
        AssertOneLineError(Run("check", "--device", "opencl:7"), "no OpenCL device 7: there are 1 usable", 2);
        AssertOneLineError(Run("check", "--device", "vulkan"), "unknown device 'vulkan'", 2);
    }

    [Test]
    public void A_kernel_set_refuses_a_family_its_device_cannot_run()
    {
        using var device = ComputeDevice.Open("cpu");
        Assert.Throws<ArgumentException>(() => KernelSet.For(device, device.Profile with { Gemm = GemmFamilies.ClVector }));
    }
}
