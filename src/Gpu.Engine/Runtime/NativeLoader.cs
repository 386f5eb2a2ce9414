using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Where the drivers' libraries are found. ILGPU and the engine import the libraries "OpenCL" and "cuda"; .NET looks
/// for <c>libOpenCL.so</c> and <c>libcuda.so</c>, which only development packages provide, while every OpenCL runtime
/// ships <c>libOpenCL.so.1</c> and every NVIDIA driver <c>libcuda.so.1</c>. A resolver registered when this assembly
/// loads (before ILGPU's first call) maps each name to the first of its files that loads, for ILGPU's imports and ours.
/// </summary>
internal static class NativeLoader
{
    /// <summary>The CUDA driver's file names, most specific first.</summary>
    public static readonly string[] CudaDriverNames = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"];

    /// <summary>Each imported library name with its files, most specific first.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Files = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase)
    {
        [OpenClNative.Library] = OpenClNative.LoaderNames,
        ["cuda"] = CudaDriverNames,
    };

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "the resolver must exist before ILGPU's first driver call")]
    internal static void Register() => AssemblyLoadContext.Default.ResolvingUnmanagedDll += Resolve;

    static IntPtr Resolve(Assembly assembly, string name)
    {
        if (!Files.TryGetValue(name, out var files)) return IntPtr.Zero;
        foreach (var file in files)
            if (NativeLibrary.TryLoad(file, out var handle)) return handle;
        return IntPtr.Zero;
    }

    /// <summary>Whether any of <paramref name="files"/> loads here.</summary>
    public static bool Present(IEnumerable<string> files) => files.Any(file =>
    {
        if (!NativeLibrary.TryLoad(file, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    });
}
