using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Gpu.Engine.Runtime;

/// <summary>One line of the device list: what ILGPU sees, and why a device cannot be used where that is so.</summary>
public sealed record DeviceInfo(string Id, string Kind, string Name, long MemoryBytes, bool Usable, string Note);

/// <summary>
/// An ILGPU context plus one accelerator. Device selection lives here: <c>auto</c> prefers CUDA,
/// then OpenCL, then the CPU accelerator; <c>cpu</c>, <c>cuda[:i]</c> and <c>opencl[:i]</c> force one.
/// The CPU accelerator is built with one multiprocessor per core so barrier-free kernels use every core.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    public Context Context { get; }
    public Accelerator Accelerator { get; }
    /// <summary>Short id as the user would type it: cpu, cuda:0, opencl:1.</summary>
    public string Id { get; }
    /// <summary>Why this device was chosen (for <c>auto</c>) or "requested".</summary>
    public string Reason { get; }
    public OptimizationLevel OptimizationLevel { get; }
    public bool IsCpu => Accelerator.AcceleratorType == AcceleratorType.CPU;
    public string Name => Accelerator.Name;

    ComputeDevice(Context context, Accelerator accelerator, string id, string reason, OptimizationLevel level)
    {
        Context = context; Accelerator = accelerator; Id = id; Reason = reason; OptimizationLevel = level;
    }

    /// <summary>The CPU accelerator used as the fallback: one multiprocessor per core, 4 threads per warp, 1 warp per group.</summary>
    public static CPUDevice CpuDevice() => new(4, 1, Math.Max(1, Environment.ProcessorCount));

    static Context CreateContext(OptimizationLevel level, bool gpus) =>
        Context.Create(b =>
        {
            b.Optimize(level).Math(MathMode.Default).Profiling().EnableAlgorithms();   // profiling: markers let the streamed data path wait for one copy
            b.CPU(CpuDevice());
            if (gpus)
            {
                if (CudaDriverPresent()) b.Cuda();
                if (OpenClLoaderPresent()) b.OpenCL();
            }
        });

    /// <summary>Opens the device named by <paramref name="spec"/> (auto, cpu, cuda[:i], opencl[:i]).</summary>
    public static ComputeDevice Open(string spec, OptimizationLevel level = OptimizationLevel.O2)
    {
        spec = (spec ?? "auto").Trim().ToLowerInvariant();
        string kind = spec;
        int index = -1;
        int colon = spec.IndexOf(':');
        if (colon >= 0)
        {
            kind = spec[..colon];
            if (!int.TryParse(spec[(colon + 1)..], out index) || index < 0)
                throw new UserError($"bad device '{spec}': the index after ':' must be a whole number >= 0 (see 'gpu devices')");
        }
        if (kind is not ("auto" or "cpu" or "cuda" or "opencl"))
            throw new UserError($"unknown device '{spec}': use auto, cpu, cuda[:N] or opencl[:N] (see 'gpu devices')");

        var context = CreateContext(level, gpus: kind != "cpu");
        try
        {
            var cuda = context.GetCudaDevices();
            var cl = context.GetCLDevices();
            Device device;
            string id, reason;
            switch (kind)
            {
                case "cpu":
                    device = context.GetCPUDevice(0); id = "cpu"; reason = "requested";
                    break;
                case "cuda":
                    if (cuda.Count == 0) throw new UserError($"no CUDA device: {CudaAbsenceReason()}; use --device cpu or auto");
                    index = index < 0 ? 0 : index;
                    if (index >= cuda.Count) throw new UserError($"no CUDA device {index}: there are {cuda.Count} (see 'gpu devices')");
                    device = cuda[index]; id = $"cuda:{index}"; reason = "requested";
                    break;
                case "opencl":
                    if (cl.Count == 0) throw new UserError($"no usable OpenCL device: {OpenClAbsenceReason()}; use --device cpu or auto");
                    index = index < 0 ? 0 : index;
                    if (index >= cl.Count) throw new UserError($"no OpenCL device {index}: there are {cl.Count} usable (see 'gpu devices')");
                    device = cl[index]; id = $"opencl:{index}"; reason = "requested";
                    break;
                default:
                    if (cuda.Count > 0) { device = cuda[0]; id = "cuda:0"; reason = "auto: first CUDA device"; }
                    else if (cl.Count > 0) { device = cl[0]; id = "opencl:0"; reason = $"auto: no CUDA ({CudaAbsenceReason()}); first usable OpenCL device"; }
                    else
                    {
                        device = context.GetCPUDevice(0); id = "cpu";
                        reason = $"auto: no CUDA ({CudaAbsenceReason()}), no usable OpenCL ({OpenClAbsenceReason()}); using the CPU accelerator";
                    }
                    break;
            }
            Accelerator acc;
            try { acc = device.CreateAccelerator(context); }
            catch (Exception e) when (e is not UserError)
            {
                throw new UserError($"could not open device {id} ({device.Name}): {FirstLine(e.Message)}; try --device cpu");
            }
            return new ComputeDevice(context, acc, id, reason, level);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>Everything ILGPU can see, with a note on why a device is unusable where that is so.</summary>
    public static List<DeviceInfo> List()
    {
        var list = new List<DeviceInfo>();
        using var context = CreateContext(OptimizationLevel.O2, gpus: true);
        var cuda = context.GetCudaDevices();
        for (int i = 0; i < cuda.Count; i++)
            list.Add(new DeviceInfo($"cuda:{i}", "CUDA", cuda[i].Name, cuda[i].MemorySize, true,
                $"compute capability {cuda[i].Architecture}, {cuda[i].NumMultiprocessors} SMs"));
        if (cuda.Count == 0) list.Add(new DeviceInfo("cuda", "CUDA", "-", 0, false, CudaAbsenceReason()));

        var usableCollection = context.GetCLDevices();
        var usable = new List<CLDevice>();
        for (int i = 0; i < usableCollection.Count; i++) usable.Add(usableCollection[i]);
        for (int i = 0; i < usable.Count; i++)
            list.Add(new DeviceInfo($"opencl:{i}", "OpenCL", usable[i].Name, usable[i].MemorySize, true,
                $"{usable[i].DeviceVersion}, {usable[i].PlatformName}"));
        foreach (var d in AllOpenClDevices())
        {
            if (usable.Any(u => u.DeviceId == d.DeviceId)) continue;
            list.Add(new DeviceInfo("-", "OpenCL", d.Name, d.MemorySize, false,
                $"{d.DeviceVersion}: ILGPU needs OpenCL 2.0+ with generic address space support, which this device lacks"));
        }
        if (usable.Count == 0 && !AllOpenClDevices().Any())
            list.Add(new DeviceInfo("opencl", "OpenCL", "-", 0, false, OpenClAbsenceReason()));

        var cpu = context.GetCPUDevice(0);
        list.Add(new DeviceInfo("cpu", "CPU", "ILGPU CPU accelerator", GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, true,
            $"{Environment.ProcessorCount} multiprocessors (one per core), always available"));
        return list;
    }

    static IEnumerable<CLDevice> AllOpenClDevices()
    {
        if (!OpenClLoaderPresent()) return [];
        try { return CLDevice.GetDevices(_ => true).OfType<CLDevice>().ToList(); }
        catch { return []; }
    }

    static bool CudaDriverPresent() => TryLoad("libcuda.so.1") || TryLoad("libcuda.so") || TryLoad("nvcuda.dll");
    static bool OpenClLoaderPresent() => TryLoad("libOpenCL.so.1") || TryLoad("libOpenCL.so") || TryLoad("OpenCL.dll");

    static bool TryLoad(string name)
    {
        if (!NativeLibrary.TryLoad(name, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }

    static string CudaAbsenceReason() =>
        CudaDriverPresent() ? "the CUDA driver is installed but reports no device" : "no CUDA driver (libcuda.so.1 not found)";

    static string OpenClAbsenceReason()
    {
        if (!OpenClLoaderPresent()) return "no OpenCL runtime (libOpenCL.so.1 not found)";
        return AllOpenClDevices().Any()
            ? "OpenCL devices lack generic address space support (OpenCL 2.0+) that ILGPU needs"
            : "the OpenCL runtime reports no device";
    }

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>A device failure as one user-facing line (exit code 4): the device, what it was doing, the exception's first line, and what to do.</summary>
    public UserError Fault(string doing, Exception e, string advice) =>
        new($"device error on {Id} ({Name}) {doing}: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}; {advice}", 4);

    public string Describe() => $"{Id} ({Name}), {Reason}";

    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}
