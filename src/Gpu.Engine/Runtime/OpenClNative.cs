using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Text;

namespace Gpu.Engine.Runtime;

/// <summary>
/// The few OpenCL entry points the engine calls itself (to build and launch its OpenCL C kernels on
/// the queue and buffers ILGPU owns), and the OpenCL loader's file names (found by <see cref="NativeLoader"/>).
/// </summary>
static unsafe class OpenClNative
{
    public const string Library = "OpenCL";

    /// <summary>The loader's file names, most specific first.</summary>
    public static readonly string[] LoaderNames = ["libOpenCL.so.1", "libOpenCL.so", "OpenCL.dll", "/System/Library/Frameworks/OpenCL.framework/OpenCL"];

    public const int CL_SUCCESS = 0;
    public const uint CL_PROGRAM_BUILD_LOG = 0x1183;
    public const uint CL_DEVICE_TYPE = 0x1000;
    public const uint CL_DEVICE_MAX_COMPUTE_UNITS = 0x1002;
    public const uint CL_DRIVER_VERSION = 0x102D;
    public const uint CL_DEVICE_GENERIC_ADDRESS_SPACE_SUPPORT = 0x1069;

    [DllImport(Library)] public static extern IntPtr clCreateProgramWithSource(IntPtr context, uint count, byte** strings, nuint* lengths, int* error);
    [DllImport(Library)] public static extern int clBuildProgram(IntPtr program, uint numDevices, IntPtr* devices, byte* options, IntPtr notify, IntPtr userData);
    [DllImport(Library)] public static extern int clGetProgramBuildInfo(IntPtr program, IntPtr device, uint name, nuint size, byte* value, nuint* sizeReturned);
    [DllImport(Library)] public static extern IntPtr clCreateKernel(IntPtr program, byte* name, int* error);
    [DllImport(Library)] public static extern int clSetKernelArg(IntPtr kernel, uint index, nuint size, void* value);
    [DllImport(Library)] public static extern int clEnqueueNDRangeKernel(IntPtr queue, IntPtr kernel, uint dimensions, nuint* offsets, nuint* globalSizes,
        nuint* localSizes, uint numEvents, IntPtr* events, IntPtr* evt);
    [DllImport(Library)] public static extern int clGetDeviceInfo(IntPtr device, uint name, nuint size, void* value, nuint* sizeReturned);
    [DllImport(Library)] public static extern int clReleaseKernel(IntPtr kernel);
    [DllImport(Library)] public static extern int clReleaseProgram(IntPtr program);

    /// <summary>Throws with the call's name and OpenCL's error code unless it returned CL_SUCCESS.</summary>
    public static void Check(int error, string call)
    {
        if (error != CL_SUCCESS) throw new InvalidOperationException($"{call} failed with OpenCL error {error}");
    }

    /// <summary>A NUL-terminated ASCII copy of <paramref name="s"/>.</summary>
    public static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s + "\0");
}
