using System.Runtime.InteropServices;

namespace Gpu.Engine.Runtime;

/// <summary>
/// What the CUDA driver said when the engine asked it itself: which of its files loaded, whether it is a driver at all
/// (it has <c>cuInit</c>), <c>cuInit</c>'s result, the driver's CUDA version and how many GPUs it counts.
/// </summary>
internal readonly record struct CudaProbe(string? File, bool HasInit = false, int InitResult = 0, int DriverVersion = 0, int DeviceCount = 0);

/// <summary>
/// The engine's own look at the CUDA driver, asked only when ILGPU found no CUDA device, to tell the user which of the
/// cases it is: no driver at all; a library by that name that is no driver; a driver that sees no GPU (a machine or
/// container without one, or without access to it); a driver that counts GPUs ILGPU did not open.
/// The words are a pure function of a <see cref="CudaProbe"/> (<see cref="AbsenceReason(CudaProbe)"/>), tested without a driver.
/// </summary>
internal static class CudaDriver
{
    /// <summary>The library name ILGPU imports on Linux (mapped by <see cref="NativeLoader"/>).</summary>
    public const string Library = "cuda";

    const int Success = 0, NoDevice = 100, StubLibrary = 34, SystemDriverMismatch = 803, NotInitialized = 3, InvalidDevice = 101,
        DeviceUnavailable = 46, CompatNotSupported = 804, OperatingSystem = 304;

    [DllImport(Library)] static extern int cuInit(uint flags);
    [DllImport(Library)] static extern int cuDriverGetVersion(out int version);
    [DllImport(Library)] static extern int cuDeviceGetCount(out int count);

    /// <summary>Asks the driver (loading it through <see cref="NativeLoader"/>'s mapping).</summary>
    public static CudaProbe Probe()
    {
        string? file = NativeLoader.Loadable(Library);
        if (file == null) return new(null);
        try
        {
            int version = cuDriverGetVersion(out int v) == Success ? v : 0;
            int init = cuInit(0);
            int count = init == Success && cuDeviceGetCount(out int c) == Success ? c : 0;
            return new(file, true, init, version, count);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException or BadImageFormatException)
        {
            return new(file);
        }
    }

    /// <summary>Why ILGPU found no CUDA device here, asking the driver now.</summary>
    public static string AbsenceReason() => AbsenceReason(Probe());

    /// <summary>Why there is no CUDA device, in words, from what the driver said: "no CUDA driver (...)" or "a CUDA driver ... sees no GPU ...".</summary>
    public static string AbsenceReason(CudaProbe p)
    {
        if (p.File == null) return $"no CUDA driver (none of {string.Join(", ", NativeLoader.CudaDriverNames)} loads)";
        if (!p.HasInit) return $"{p.File} loads but is not a CUDA driver (it has no cuInit)";
        string driver = $"a CUDA driver is installed ({p.File}{(p.DriverVersion > 0 ? $", CUDA {p.DriverVersion / 1000}.{p.DriverVersion % 1000 / 10}" : "")})";
        if (p.InitResult != Success) return $"{driver} but sees no GPU: cuInit returned {ErrorName(p.InitResult)}{Hint(p.InitResult)}";
        if (p.DeviceCount == 0) return $"{driver} but sees no GPU (it counts 0 devices)";
        return $"{driver} and counts {p.DeviceCount} GPU{(p.DeviceCount == 1 ? "" : "s")}, but ILGPU opened none";
    }

    static string ErrorName(int code) => code switch
    {
        NoDevice => "CUDA_ERROR_NO_DEVICE (100)",
        StubLibrary => "CUDA_ERROR_STUB_LIBRARY (34)",
        SystemDriverMismatch => "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH (803)",
        NotInitialized => "CUDA_ERROR_NOT_INITIALIZED (3)",
        InvalidDevice => "CUDA_ERROR_INVALID_DEVICE (101)",
        DeviceUnavailable => "CUDA_ERROR_DEVICE_UNAVAILABLE (46)",
        CompatNotSupported => "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE (804)",
        OperatingSystem => "CUDA_ERROR_OPERATING_SYSTEM (304)",
        _ => $"error {code}",
    };

    static string Hint(int code) => code switch
    {
        NoDevice => " (no GPU is visible to this process: in a container, start it with the GPUs, e.g. docker run --gpus all)",
        StubLibrary => " (the CUDA toolkit's stub library, not the driver, is first on the library path)",
        SystemDriverMismatch => " (the driver library and the loaded kernel module are different versions: reboot or reinstall the driver)",
        _ => "",
    };
}
