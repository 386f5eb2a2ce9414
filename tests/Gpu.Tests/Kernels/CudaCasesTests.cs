namespace Gpu.Tests.Kernels;

/// <summary>
/// Where no CUDA device is present, the CUDA fixtures of the kernel and gradient tests are not generated
/// (<see cref="DeviceCase.All"/>); this one test says so, once, with the reason.
/// </summary>
public sealed class CudaCasesTests
{
    [Test]
    public void Cuda_kernel_and_gradient_cases_run_where_a_cuda_device_is()
    {
        if (DeviceCase.CudaMissing is string why && !DeviceCase.Required("cuda"))
            Assert.Ignore($"skipped: the CUDA kernel and gradient cases (KernelTests, GradientTests at O1 and O2) need a CUDA device: {why}");
        Assert.That(DeviceCase.All().Count(d => d.Device == "cuda"), Is.EqualTo(2), "both CUDA optimisation levels have fixtures");
    }
}
