using System.Reflection;
using ILGPU.Runtime.OpenCL;

namespace Gpu.Engine.Runtime;

/// <summary>Whether the engine uses an OpenCL device, and why, in words for <c>gpu devices</c>.</summary>
internal sealed record OpenClVerdict(bool Accepted, bool OverridesDriver, string Why);

/// <summary>
/// The one rule for OpenCL devices. ILGPU refuses every OpenCL device whose driver does not report the
/// generic address space, which OpenCL 2.0 required and OpenCL 3.0 made optional; many OpenCL 3.0
/// drivers (POCL, Intel's, Windows on ARM) do not report it. Whether kernels need it depends on the
/// optimisation level: at O2, ILGPU specialises every kernel parameter to the global address space and
/// every other pointer to its own, so the OpenCL C it emits has no generic pointer; at O1 it keeps
/// <c>__generic</c> pointers, which such a driver's compiler rejects ("OpenCL C version 3.0 does not
/// support the '__generic' type qualifier" on POCL). So the engine accepts a device that lacks the
/// feature, CPU or GPU (NVIDIA's OpenCL driver reports none for an H200), at O2 only (its default), and records the
/// capability ILGPU asks for. <c>auto</c> still takes CUDA before an OpenCL GPU, so the same NVIDIA GPU runs through
/// CUDA unless <c>--device opencl:N</c> names it. Every kernel is verified on an accepted device by <c>gpu check</c>.
/// </summary>
internal static unsafe class OpenClRule
{
    public static bool IsCpu(CLDevice d) => (d.DeviceType & CLDeviceType.CL_DEVICE_TYPE_CPU) != 0;

    /// <summary>What the driver itself says about generic address space (whatever the engine overrode since).</summary>
    public static bool DriverReportsGenericAddressSpace(CLDevice d)
    {
        if (d.DeviceVersion < CLDeviceVersion.CL20) return false;
        if (d.DeviceVersion < CLDeviceVersion.CL30) return true;
        uint value = 0;
        return OpenClNative.clGetDeviceInfo(d.DeviceId, OpenClNative.CL_DEVICE_GENERIC_ADDRESS_SPACE_SUPPORT, sizeof(uint), &value, null) == OpenClNative.CL_SUCCESS
            && value != 0;
    }

    public static OpenClVerdict Judge(CLDevice d) =>
        Judge(d.CLStdVersion >= ILGPU.Backends.OpenCL.CLCVersion.CL20, DriverReportsGenericAddressSpace(d), IsCpu(d), d.CVersion.ToString());

    /// <summary>
    /// The rule itself, on what a driver reports: OpenCL C 2.0 or later is needed; a driver that reports the generic
    /// address space is used as ILGPU would; one that does not, CPU or GPU, is used at O2, whose kernels have no generic pointers.
    /// </summary>
    public static OpenClVerdict Judge(bool openClC20, bool reportsGenericAddressSpace, bool isCpu, string cVersion)
    {
        if (!openClC20)
            return new(false, false, $"refused: OpenCL C {cVersion}; ILGPU's kernels need OpenCL 2.0 or later");
        if (reportsGenericAddressSpace)
            return new(true, false, "used: the driver reports the generic address space ILGPU's kernels use");
        return new(true, true, $"used at ILGPU optimisation level O2, whose kernels have no generic pointers (the {(isCpu ? "driver" : "GPU's driver")} reports no generic address space, optional since OpenCL 3.0)");
    }

    /// <summary>The device registration predicate: accepts by <see cref="Judge(bool, bool, bool, string)"/>, and lets ILGPU open an accepted device by recording the capability the rule vouches for.</summary>
    public static bool Admit(CLDevice d)
    {
        var v = Judge(d);
        if (v.OverridesDriver) SetGenericAddressSpace(d);
        return v.Accepted;
    }

    /// <summary>"OpenCL 3.0, Portable Computing Language, driver 3.1, 16 compute units, generic address space: no"</summary>
    public static string Reported(CLDevice d) =>
        $"{VersionName(d.DeviceVersion)}, {d.PlatformName}{(DriverVersion(d) is { Length: > 0 } v ? $", driver {v}" : "")}, " +
        $"{ComputeUnits(d)} compute units, generic address space: {(DriverReportsGenericAddressSpace(d) ? "yes" : "no")}";

    /// <summary>The driver's version string (CL_DRIVER_VERSION: POCL's release, NVIDIA's driver number), or "" if it gives none.</summary>
    public static string DriverVersion(CLDevice d)
    {
        var buffer = new byte[256];
        nuint size = 0;
        fixed (byte* b = buffer)
            if (OpenClNative.clGetDeviceInfo(d.DeviceId, OpenClNative.CL_DRIVER_VERSION, (nuint)buffer.Length, b, &size) != OpenClNative.CL_SUCCESS) return "";
        return System.Text.Encoding.ASCII.GetString(buffer, 0, (int)Math.Min(size, (nuint)buffer.Length)).TrimEnd('\0').Trim();
    }

    /// <summary>The compute units the driver reports (a CPU driver's threads: POCL follows POCL_MAX_PTHREAD_COUNT).</summary>
    public static uint ComputeUnits(CLDevice d)
    {
        uint units = 0;
        return OpenClNative.clGetDeviceInfo(d.DeviceId, OpenClNative.CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(uint), &units, null) == OpenClNative.CL_SUCCESS ? units : 0;
    }

    static string VersionName(CLDeviceVersion v) => $"OpenCL {v}";

    /// <summary>ILGPU's capability setter is internal; the accelerator reads this flag when it is created.</summary>
    static void SetGenericAddressSpace(CLDevice d)
    {
        var property = d.Capabilities.GetType().GetProperty("GenericAddressSpace", BindingFlags.Public | BindingFlags.Instance)
            ?? throw new InvalidOperationException("this ILGPU version has no GenericAddressSpace capability to set");
        property.GetSetMethod(nonPublic: true)!.Invoke(d.Capabilities, [true]);
    }
}
