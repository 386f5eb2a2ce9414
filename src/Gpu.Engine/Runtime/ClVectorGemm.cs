using System.Text;
using Gpu.Engine.Settings;
using Gpu.Kernels.OpenCl;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;
using static Gpu.Engine.Runtime.OpenClNative;

namespace Gpu.Engine.Runtime;

/// <summary>
/// The cl-vector GEMM family: <c>kernels/Gpu.Kernels/OpenCl/dense_layers.cl</c> built by the OpenCL
/// device's own compiler, its kernels launched with ILGPU's buffers on the accelerator's default stream
/// (the in-order queue ILGPU's own kernels use, so every launch keeps its place in the step).
/// Built once per accelerator, when the device opens.
/// </summary>
sealed unsafe class ClVectorGemm : IDisposable
{
    readonly IntPtr queue, program, forward, weightGrad, inputGrad;
    readonly object gate = new();   // kernel arguments are per kernel object: set and enqueue as one

    ClVectorGemm(IntPtr queue, IntPtr program, IntPtr forward, IntPtr weightGrad, IntPtr inputGrad)
    {
        this.queue = queue; this.program = program; this.forward = forward; this.weightGrad = weightGrad; this.inputGrad = inputGrad;
    }

    /// <summary>Builds the kernels for <paramref name="a"/>; throws with the first lines of the compiler's log if they do not build.</summary>
    public static ClVectorGemm Build(CLAccelerator a)
    {
        var source = Encoding.ASCII.GetBytes(OpenClSources.DenseLayers);
        int error;
        IntPtr program;
        fixed (byte* s = source)
        {
            byte* strings = s;
            nuint length = (nuint)source.Length;
            program = clCreateProgramWithSource(a.NativePtr, 1, &strings, &length, &error);
        }
        Check(error, "clCreateProgramWithSource");
        IntPtr device = a.DeviceId;
        fixed (byte* options = Ascii("-cl-std=CL1.2"))
            error = clBuildProgram(program, 1, &device, options, IntPtr.Zero, IntPtr.Zero);
        if (error != CL_SUCCESS)
        {
            string log = BuildLog(program, device);
            clReleaseProgram(program);
            throw new InvalidOperationException($"dense_layers.cl does not build on {a.Name} (OpenCL error {error}): {log}");
        }
        var stream = (CLStream)a.DefaultStream;
        return new ClVectorGemm(stream.CommandQueue, program, Kernel(program, "dense_forward"), Kernel(program, "weight_grad"), Kernel(program, "input_grad"));
    }

    static IntPtr Kernel(IntPtr program, string name)
    {
        int error;
        IntPtr k;
        fixed (byte* n = Ascii(name)) k = clCreateKernel(program, n, &error);
        Check(error, $"clCreateKernel({name})");
        return k;
    }

    static string BuildLog(IntPtr program, IntPtr device)
    {
        nuint size;
        if (clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, null, &size) != CL_SUCCESS || size == 0) return "(no build log)";
        var log = new byte[(int)size];
        fixed (byte* l = log) clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, size, l, null);
        var lines = Encoding.ASCII.GetString(log).TrimEnd('\0').Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join(" | ", lines.Take(3));
    }

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    public void DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act)
    {
        lock (gate)
        {
            uint i = 0;
            View(forward, ref i, x); View(forward, ref i, w); View(forward, ref i, b); View(forward, ref i, y);
            Int(forward, ref i, m); Int(forward, ref i, n); Int(forward, ref i, k); Int(forward, ref i, (int)act);
            Enqueue(forward, Blocks(n, OpenClSources.ForwardCols), Blocks(m, OpenClSources.ForwardRows));
        }
    }

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k], and db[n] = column sums of dZ in the same pass when <paramref name="withBias"/>.</summary>
    public void WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias)
    {
        lock (gate)
        {
            uint i = 0;
            View(weightGrad, ref i, dz); View(weightGrad, ref i, h); View(weightGrad, ref i, dw); View(weightGrad, ref i, db);
            Int(weightGrad, ref i, m); Int(weightGrad, ref i, n); Int(weightGrad, ref i, k); Int(weightGrad, ref i, withBias ? 1 : 0);
            Enqueue(weightGrad, Blocks(k, OpenClSources.OuterCols), Blocks(n, OpenClSources.OuterRows));
        }
    }

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]).</summary>
    public void InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act)
    {
        lock (gate)
        {
            uint i = 0;
            View(inputGrad, ref i, dz); View(inputGrad, ref i, w); View(inputGrad, ref i, h); View(inputGrad, ref i, dx);
            Int(inputGrad, ref i, m); Int(inputGrad, ref i, n); Int(inputGrad, ref i, k); Int(inputGrad, ref i, (int)act);
            Enqueue(inputGrad, Blocks(k, OpenClSources.OuterCols), Blocks(m, OpenClSources.OuterRows));
        }
    }

    static nuint Blocks(int size, int block) => (nuint)((size + block - 1) / block);

    /// <summary>A view as two arguments: its buffer's cl_mem and its element offset in that buffer.</summary>
    static void View(IntPtr kernel, ref uint index, ArrayView<float> view)
    {
        var v = (IContiguousArrayView<float>)view;
        IntPtr mem = ((CLMemoryBuffer)v.Buffer).NativePtr;
        Check(clSetKernelArg(kernel, index++, (nuint)sizeof(IntPtr), &mem), "clSetKernelArg");
        Int(kernel, ref index, checked((int)v.Index));
    }

    static void Int(IntPtr kernel, ref uint index, int value) =>
        Check(clSetKernelArg(kernel, index++, sizeof(int), &value), "clSetKernelArg");

    /// <summary>One work-item per output block, in groups of one: the driver spreads the blocks over its threads.</summary>
    void Enqueue(IntPtr kernel, nuint columnBlocks, nuint rowBlocks)
    {
        nuint* global = stackalloc nuint[2] { columnBlocks, rowBlocks };
        nuint* local = stackalloc nuint[2] { 1, 1 };
        Check(clEnqueueNDRangeKernel(queue, kernel, 2, null, global, local, 0, null, null), "clEnqueueNDRangeKernel");
    }

    public void Dispose()
    {
        clReleaseKernel(forward); clReleaseKernel(weightGrad); clReleaseKernel(inputGrad);
        clReleaseProgram(program);
    }
}
