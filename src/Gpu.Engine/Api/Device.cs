using Gpu.Engine.Analysis;
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

    /// <summary>Every device ILGPU sees on this machine, usable or not, with what its driver reports or why it is refused (<c>gpu devices</c>).</summary>
    public static IReadOnlyList<DeviceListing> List() =>
        ComputeDevice.List().Select(d => new DeviceListing(d.Id, d.Kind, d.Name, d.MemoryBytes, d.Usable, d.Note)).ToArray();

    /// <summary>
    /// Checks every kernel on this device against the float64 reference (random awkward shapes, NaN-poisoned outputs), as
    /// <c>gpu check</c>: each GEMM family it runs, or only <paramref name="family"/>'s, in <paramref name="precision"/>, and every
    /// other kernel. The profile, a table of every case and a summary go to <paramref name="say"/>.
    /// </summary>
    /// <param name="family">One GEMM family (<see cref="ProductFamilies"/>), or null for all the device runs.</param>
    /// <param name="precision">The products' precision.</param>
    /// <param name="say">Each line.</param>
    /// <exception cref="Gpu.Engine.UserError">Exit code 4 when any case fails; 2 for a family the device does not run.</exception>
    public void CheckKernels(string? family, Gpu.Engine.Settings.Precision precision, Action<string> say) => CheckReport.Kernels(Compute, family, precision, say);

    /// <summary>
    /// Compiles every kernel to CUDA PTX (sm_80, sm_90; O1, O2) with no GPU and checks it: it compiles, no local memory in a
    /// product, no approximate instruction (<c>gpu check --ptx</c>); <paramref name="folder"/>: also write each kernel's PTX there.
    /// </summary>
    /// <exception cref="Gpu.Engine.UserError">Exit code 4 when any compilation fails its check.</exception>
    public static void CheckPtx(string? folder, Action<string> say) => CheckReport.Ptx(folder, say);

    /// <summary>The GEMM families, with what each is: "scalar (...), vector4 (...) or ...".</summary>
    public static string ProductFamilies => GemmFamilies.Describe();

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

/// <summary>A device of this machine as <see cref="Device.List"/> reports it.</summary>
/// <param name="Id">What <c>--device</c> and <see cref="Device.Open"/> take: cpu, cuda:0, opencl:1.</param>
/// <param name="Kind">cpu, cuda or opencl.</param>
/// <param name="Name">The device's name as its driver reports it.</param>
/// <param name="MemoryBytes">Its memory (0 where the driver reports none).</param>
/// <param name="Usable">Whether the engine can train on it.</param>
/// <param name="Note">What the driver reports of it, or why it is refused.</param>
public sealed record DeviceListing(string Id, string Kind, string Name, long MemoryBytes, bool Usable, string Note);
