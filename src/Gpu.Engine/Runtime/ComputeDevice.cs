using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using Gpu.Engine.Settings;

namespace Gpu.Engine.Runtime;

/// <summary>One line of the device list: what ILGPU sees, what its driver reports, and whether and why the engine uses it.</summary>
internal sealed record DeviceInfo(string Id, string Kind, string Name, long MemoryBytes, bool Usable, string Note);

/// <summary>
/// An ILGPU context plus one accelerator and its <see cref="DeviceProfile"/>. Device selection lives
/// here: <c>auto</c> takes the fastest usable device (CUDA, then an OpenCL GPU, then an OpenCL CPU
/// device, then ILGPU's CPU accelerator) and says why; <c>cpu</c>, <c>cuda[:i]</c> and <c>opencl[:i]</c>
/// force one. Which OpenCL devices are usable is decided by <see cref="OpenClRule"/>.
/// The CPU accelerator is built with one multiprocessor per core so barrier-free kernels use every core.
/// </summary>
internal sealed class ComputeDevice : IDisposable
{
    public Context Context { get; }
    public Accelerator Accelerator { get; }
    /// <summary>Short id as the user would type it: cpu, cuda:0, opencl:1.</summary>
    public string Id { get; }
    /// <summary>Why this device was chosen (for <c>auto</c>) or "requested".</summary>
    public string Reason { get; }
    public OptimizationLevel OptimizationLevel { get; }
    /// <summary>Every per-device choice of the engine, decided when the device opened.</summary>
    public DeviceProfile Profile { get; }
    public string Name => Accelerator.Name;

    /// <summary>
    /// The stream every kernel and copy of the engine goes to, in order. On CUDA a stream the engine creates (blocking:
    /// it stays ordered with the default stream, which ILGPU's own synchronous copies use), because the default stream is
    /// the legacy NULL stream, which CUDA cannot capture into a graph; elsewhere the accelerator's default stream (an
    /// OpenCL in-order queue, or the CPU accelerator's), where nothing is captured and a second queue would need every copy moved onto it.
    /// </summary>
    public AcceleratorStream Stream { get; }

    ComputeDevice(Context context, Accelerator accelerator, string id, string reason, OptimizationLevel level)
    {
        Context = context; Accelerator = accelerator; Id = id; OptimizationLevel = level;
        Stream = accelerator is CudaAccelerator cuda ? cuda.CreateStream(StreamFlags.CU_STREAM_DEFAULT) : accelerator.DefaultStream;
        var profile = DeviceProfile.For(accelerator);
        if (profile.Gemm.Unavailable(accelerator) is string why)
        {
            var fallback = GemmFamilies.Tiled;   // still correct, only slower
            reason += $"; its {profile.Gemm.Name} kernels do not build ({why}), using the {fallback.Name} kernels";
            profile = profile with { Gemm = fallback };
        }
        Profile = profile;
        Reason = reason;
    }

    readonly Dictionary<Precision, (DeviceProfile Profile, string? NotUsed)> precisions = [];

    /// <summary>
    /// The profile of a run whose products are in <paramref name="precision"/>: <see cref="DeviceProfile.WithPrecision"/>'s; where
    /// that is a tensor-core family that fails its self-test here, the emulation's (<see cref="GemmFamilies.For"/> without tensor
    /// cores); where a family's kernels do not build here, the scalar kernels' (which run every precision on every device).
    /// Decided once per precision.
    /// </summary>
    public DeviceProfile ProfileFor(Precision precision) => ForPrecision(precision).Profile;

    /// <summary>The line a run in <paramref name="precision"/> prints (<see cref="DeviceProfile.PrecisionNote"/>), or null for fp32.</summary>
    public string? PrecisionNote(Precision precision) => ForPrecision(precision) is var (profile, notUsed) ? profile.PrecisionNote(notUsed) : null;

    (DeviceProfile Profile, string? NotUsed) ForPrecision(Precision precision)
    {
        lock (precisions)
        {
            if (precisions.TryGetValue(precision, out var known)) return known;
            var profile = Profile.WithPrecision(precision);
            string? notUsed = null;
            if (profile.Gemm.TensorCores(precision) && profile.Gemm.Unavailable(Accelerator) is string why)
            {
                notUsed = why;
                profile = Profile with { Gemm = GemmFamilies.For(Profile, precision, tensorCores: false) };
            }
            if (profile.Gemm.Unavailable(Accelerator) != null) profile = Profile with { Gemm = GemmFamilies.Scalar with { Precision = precision } };
            return precisions[precision] = (profile, notUsed);
        }
    }

    /// <summary>The CPU accelerator used as the fallback: one multiprocessor per core, 4 threads per warp, 1 warp per group.</summary>
    public static CPUDevice CpuDevice() => new(4, 1, Math.Max(1, Environment.ProcessorCount));

    /// <summary>
    /// A context with only a CPU accelerator shaped as <paramref name="device"/> (e.g. 32-lane warps, as CUDA's, where the
    /// tensor-core kernel runs with its mma emulated by warp shuffles), opened with the engine's settings at <paramref name="level"/>.
    /// </summary>
    public static Context CpuOnlyContext(CPUDevice device, OptimizationLevel level = OptimizationLevel.O2) =>
        Context.Create(b => Configure(b, level).CPU(device));

    /// <summary>The context settings every device is opened with (and the PTX check compiles with): optimisation level, default math, profiling, ILGPU.Algorithms.</summary>
    public static Context.Builder Configure(Context.Builder b, OptimizationLevel level) =>
        b.Optimize(level).Math(MathMode.Default).Profiling().EnableAlgorithms();   // profiling: markers let the streamed data path wait for one copy

    static Context CreateContext(OptimizationLevel level, bool gpus) =>
        Context.Create(b =>
        {
            Configure(b, level);
            b.CPU(CpuDevice());
            if (gpus)
            {
                if (CudaDriverPresent()) b.Cuda();
                if (OpenClLoaderPresent()) b.OpenCL(OpenClRule.Admit);
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
        if (colon >= 0 && kind is "auto" or "cpu")
            throw new UserError($"bad device '{spec}': {kind} takes no index (there is one CPU accelerator); use {kind}, cuda[:N] or opencl[:N] (see 'gpu devices')");

        var context = CreateContext(level, gpus: kind != "cpu");
        try
        {
            var cuda = context.GetCudaDevices();
            var clDevices = context.GetCLDevices();
            var cl = new List<CLDevice>();
            for (int i = 0; i < clDevices.Count; i++) cl.Add(clDevices[i]);
            // a device the rule accepts at O2 only cannot run kernels built at a lower level: leave it out of auto, refuse it by name
            bool Opens(CLDevice d) => level >= OptimizationLevel.O2 || !OpenClRule.Judge(d).OverridesDriver;
            ILGPU.Runtime.Device device;   // qualified: Gpu.Device (the public API) is nearer in name lookup
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
                    if (!Opens(cl[index]))
                        throw new UserError($"opencl:{index} ({cl[index].Name}) runs the engine's kernels at ILGPU optimisation level O2 only: its driver reports no generic address space, which lower levels emit");
                    device = cl[index]; id = $"opencl:{index}"; reason = $"requested; {OpenClRule.Judge(cl[index]).Why}";
                    break;
                default:
                    int gpu = cl.FindIndex(d => !OpenClRule.IsCpu(d) && Opens(d)), cpuCl = cl.FindIndex(d => OpenClRule.IsCpu(d) && Opens(d));
                    if (cuda.Count > 0) { device = cuda[0]; id = "cuda:0"; reason = "auto: the first CUDA device"; }
                    else if (gpu >= 0) { device = cl[gpu]; id = $"opencl:{gpu}"; reason = $"auto: no CUDA ({CudaAbsenceReason()}); the first usable OpenCL GPU"; }
                    else if (cpuCl >= 0)
                    {
                        device = cl[cpuCl]; id = $"opencl:{cpuCl}";
                        reason = $"auto: no CUDA ({CudaAbsenceReason()}), no OpenCL GPU; an OpenCL CPU device runs the CPU's vector units far faster than ILGPU's CPU accelerator";
                    }
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

    /// <summary>Everything ILGPU can see, with what each driver reports and why a device is used or refused.</summary>
    public static List<DeviceInfo> List()
    {
        var list = new List<DeviceInfo>();
        using var context = CreateContext(OptimizationLevel.O2, gpus: true);
        var cuda = context.GetCudaDevices();
        for (int i = 0; i < cuda.Count; i++)
            list.Add(new DeviceInfo($"cuda:{i}", "CUDA", cuda[i].Name, cuda[i].MemorySize, true,
                $"compute capability {cuda[i].Architecture}, {cuda[i].NumMultiprocessors} SMs"));
        if (cuda.Count == 0) list.Add(new DeviceInfo("cuda", "CUDA", "-", 0, false, CudaAbsenceReason()));

        var usable = context.GetCLDevices();
        var all = AllOpenClDevices();
        foreach (var d in all)
        {
            int index = -1;
            for (int i = 0; i < usable.Count; i++) if (usable[i].DeviceId == d.DeviceId) index = i;
            var verdict = OpenClRule.Judge(d);
            list.Add(new DeviceInfo(index >= 0 ? $"opencl:{index}" : "-", OpenClRule.IsCpu(d) ? "OpenCL CPU" : "OpenCL GPU", d.Name, d.MemorySize, index >= 0,
                $"{OpenClRule.Reported(d)}; {verdict.Why}"));
        }
        if (all.Count == 0) list.Add(new DeviceInfo("opencl", "OpenCL", "-", 0, false, OpenClAbsenceReason()));

        list.Add(new DeviceInfo("cpu", "CPU", "ILGPU CPU accelerator", GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, true,
            $"{Environment.ProcessorCount} multiprocessors (one per core), always available"));
        return list;
    }

    /// <summary>Every OpenCL device the drivers report, usable or not (judged afresh, without overriding anything).</summary>
    static List<CLDevice> AllOpenClDevices()
    {
        if (!OpenClLoaderPresent()) return [];
        try { return CLDevice.GetDevices(_ => true).OfType<CLDevice>().ToList(); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException) { return []; }
    }

    static bool CudaDriverPresent() => NativeLoader.Present(NativeLoader.CudaDriverNames);
    static bool OpenClLoaderPresent() => NativeLoader.Present(OpenClNative.LoaderNames);

    /// <summary>Why ILGPU found no CUDA device: no driver, or a driver that sees no GPU (<see cref="CudaDriver"/>).</summary>
    static string CudaAbsenceReason() => CudaDriver.AbsenceReason();

    static string OpenClAbsenceReason()
    {
        if (!OpenClLoaderPresent()) return "no OpenCL runtime (libOpenCL.so.1 not found; on Debian or Ubuntu: apt-get install ocl-icd-libopencl1 pocl-opencl-icd)";
        var all = AllOpenClDevices();
        return all.Count == 0
            ? "the OpenCL loader finds no driver (no ICD in /etc/OpenCL/vendors; on Debian or Ubuntu: apt-get install pocl-opencl-icd)"
            : string.Join("; ", all.Select(d => $"{d.Name}: {OpenClRule.Judge(d).Why}"));
    }

    static string FirstLine(string s) => s.Split('\n')[0].Trim();

    /// <summary>A device failure as one user-facing line (exit code 4): the device, what it was doing, the exception's first line, and what to do.</summary>
    public UserError Fault(string doing, Exception e, string advice) =>
        new($"device error on {Id} ({Name}) {doing}: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}; {advice}", 4);

    public string Describe() => $"{Id} ({Name}), {Reason}";

    public void Dispose()
    {
        if (Stream != Accelerator.DefaultStream) Stream.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }
}
