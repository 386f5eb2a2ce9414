using Gpu.Engine.Runtime;

namespace Gpu;

/// <summary>
/// A compute device the engine trains and predicts on: a CUDA GPU, an OpenCL device, or ILGPU's CPU
/// accelerator. Open one with <see cref="Open"/>, use it for any number of <see cref="Network"/> calls,
/// and dispose it at the end.
/// </summary>
public sealed class Device : IDisposable
{
    internal ComputeDevice Compute { get; }

    Device(ComputeDevice compute) => Compute = compute;

    /// <summary>
    /// Opens a device: <c>auto</c> (CUDA, then an OpenCL GPU, then an OpenCL CPU device, then the CPU
    /// accelerator), <c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>, <c>opencl</c> or <c>opencl:N</c>, as <c>gpu train --device</c> takes.
    /// A device that is not there is a <see cref="Gpu.Engine.UserError"/> saying what is.
    /// </summary>
    /// <param name="spec">Which device; <c>auto</c> picks the best one present.</param>
    public static Device Open(string spec = "auto") => new(ComputeDevice.Open(spec));

    /// <summary>The device's id as <c>--device</c> takes it: <c>cpu</c>, <c>cuda:0</c>, <c>opencl:0</c>.</summary>
    public string Id => Compute.Id;

    /// <summary>The device's name as its driver reports it.</summary>
    public string Name => Compute.Name;

    /// <summary>Id, name and why it was chosen, as <c>gpu train</c> prints it on its first line.</summary>
    public string Description => Compute.Describe();

    /// <summary>The description (<see cref="Description"/>).</summary>
    public override string ToString() => Description;

    /// <summary>Releases the device and its compiled kernels.</summary>
    public void Dispose() => Compute.Dispose();
}
