using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Where the drivers' libraries are found. ILGPU and the engine import the libraries "OpenCL" and "cuda"; .NET looks
/// for <c>libOpenCL.so</c> and <c>libcuda.so</c>, which only development packages provide, while every OpenCL runtime
/// ships <c>libOpenCL.so.1</c> and every NVIDIA driver <c>libcuda.so.1</c>. A resolver registered when this assembly
/// loads (its module initializer, so before any of the engine's code, and so before ILGPU's first driver call, which
/// only the engine makes: <c>tests/Gpu.Tests/Runtime/NativeLoaderTests.cs</c>) maps each name to the first of its files
/// that loads, for ILGPU's imports and ours. ILGPU decides once per process whether CUDA exists (its driver API is a
/// static), so a resolver registered after its first CUDA call would be too late for the whole run.
/// </summary>
internal static class NativeLoader
{
    /// <summary>The CUDA driver's file names, most specific first.</summary>
    public static readonly string[] CudaDriverNames = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"];

    /// <summary>Each imported library name with its files, most specific first.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Files = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase)
    {
        [OpenClNative.Library] = OpenClNative.LoaderNames,
        [CudaDriver.Library] = CudaDriverNames,
    };

    /// <summary>Whether <see cref="Register"/> has run in this process (it runs when this assembly's module initializes).</summary>
    public static bool Registered { get; private set; }

    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "the resolver must exist before ILGPU's first driver call")]
    internal static void Register()
    {
        if (Registered) return;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += Resolve;
        Registered = true;
    }

    static IntPtr Resolve(Assembly assembly, string name)
    {
        IntPtr handle = IntPtr.Zero;
        Choose(name, file => NativeLibrary.TryLoad(file, out handle));
        return handle;
    }

    /// <summary>
    /// The file an import of <paramref name="name"/> resolves to: the first of its candidates (<see cref="Files"/>, in
    /// order) for which <paramref name="loads"/> says yes, asking no further; null for a name the engine does not map or
    /// when none loads. The resolver passes a probe that loads the file (and keeps the handle).
    /// </summary>
    public static string? Choose(string name, Func<string, bool> loads) =>
        Files.TryGetValue(name, out var files) ? files.FirstOrDefault(loads) : null;

    /// <summary>The file of <paramref name="name"/> that loads here (as <see cref="Choose"/> picks it), or null.</summary>
    public static string? Loadable(string name) => Choose(name, file =>
    {
        if (!NativeLibrary.TryLoad(file, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    });

    /// <summary>Whether any of <paramref name="files"/> loads here.</summary>
    public static bool Present(IEnumerable<string> files) => files.Any(file =>
    {
        if (!NativeLibrary.TryLoad(file, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    });
}
