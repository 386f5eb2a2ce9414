using System.Text;
using Gpu.Engine.Settings;
using Gpu.Kernels.OpenCl;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.OpenCL;
using static Gpu.Engine.Runtime.OpenClNative;

namespace Gpu.Engine.Runtime;

/// <summary>
/// The cl-vector GEMM family's program: <c>kernels/Gpu.Kernels/OpenCl/dense_layers.cl</c> built by the OpenCL
/// device's own compiler, its kernels launched with ILGPU's buffers on the engine's stream (the in-order queue
/// ILGPU's own kernels use, so every launch keeps its place in the step).
/// Built once per accelerator (Gemm/ClVectorFamily.cs), when the device opens. A product of at least <c>packAbove</c>
/// multiply-adds first packs its operands into contiguous panels (two scratch buffers it owns, grown
/// as needed, reused in queue order): large layers' strided rows otherwise miss the caches.
/// </summary>
sealed unsafe class ClVectorGemm : IDisposable
{
    readonly CLAccelerator acc;
    readonly IntPtr program, forward, weightGrad, inputGrad, packRows, packCols, gemmPacked;
    readonly object gate = new();   // kernel arguments are per kernel object: set and enqueue as one
    IntPtr queue;                   // the command queue of the product being enqueued (set under the gate)
    DeviceProfile? profile;         // the device's profile, whose rule sizes the launch (set under the gate)
    long flopsPerGroup;             // the family's knob for the rule (set under the gate); 0: one block per work-item
    MemoryBuffer1D<float, Stride1D.Dense>? panelA, panelB;

    ClVectorGemm(CLAccelerator acc, IntPtr program)
    {
        this.acc = acc; this.program = program;
        forward = Kernel(program, "dense_forward"); weightGrad = Kernel(program, "weight_grad"); inputGrad = Kernel(program, "input_grad");
        packRows = Kernel(program, "pack_rows"); packCols = Kernel(program, "pack_cols");
        gemmPacked = Kernel(program, "gemm_packed");
    }

    /// <summary>
    /// Builds the kernels for <paramref name="a"/>, rounding the products' inputs to <paramref name="precision"/> (fp32: no
    /// define, the source as it is); throws with the first lines of the compiler's log if they do not build.
    /// </summary>
    public static ClVectorGemm Build(CLAccelerator a, Precision precision)
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
        string define = precision switch { Precision.Tf32 => " -DROUND_TF32", Precision.Bf16 => " -DROUND_BF16", _ => "" };
        fixed (byte* options = Ascii("-cl-std=CL1.2" + define))
            error = clBuildProgram(program, 1, &device, options, IntPtr.Zero, IntPtr.Zero);
        if (error != CL_SUCCESS)
        {
            string log = BuildLog(program, device);
            clReleaseProgram(program);
            throw new InvalidOperationException($"dense_layers.cl does not build on {a.Name} (OpenCL error {error}): {log}");
        }
        return new ClVectorGemm(a, program);
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

    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]); packed when m n k reaches <paramref name="packAbove"/>. Returns the launches enqueued (1, or 3 packed).</summary>
    public int DenseForward(CLStream stream, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act, long packAbove, DeviceProfile profile, long flopsPerGroup)
    {
        lock (gate)
        {
            queue = stream.CommandQueue; this.profile = profile; this.flopsPerGroup = flopsPerGroup;
            if ((long)m * n * k >= packAbove)
            {
                var (a8, b32) = Panels(m, n, k);
                PackRows(x, m, k, OpenClSources.OuterRows, a8);
                PackRows(w, n, k, OpenClSources.OuterCols, b32);
                Packed(k, y, m, n, b, OpenClSources.EpilogueBiasAct, act, b);
                return 3;
            }
            Launch(forward, x, w, b, y, m, n, k, (int)act, Blocks(n, OpenClSources.ForwardCols), Blocks(m, OpenClSources.ForwardRows), 2L * m * n * k);
            return 1;
        }
    }

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k], and db[n] = column sums of dZ in the same pass when <paramref name="withBias"/>; packed when m n k reaches <paramref name="packAbove"/>.</summary>
    public int WeightGrad(CLStream stream, ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias, long packAbove, DeviceProfile profile, long flopsPerGroup)
    {
        lock (gate)
        {
            queue = stream.CommandQueue; this.profile = profile; this.flopsPerGroup = flopsPerGroup;
            if ((long)m * n * k >= packAbove)
            {
                var (a8, b32) = Panels(n, k, m);
                PackCols(dz, m, n, OpenClSources.OuterRows, a8);    // A(r, p) = dZ[p, r]: dZ's columns in blocks of 8
                PackCols(h, m, k, OpenClSources.OuterCols, b32);
                Packed(m, dw, n, k, dw, withBias ? OpenClSources.EpilogueRowSums : OpenClSources.EpilogueNone, Activation.Identity, db);
                return 3;
            }
            Launch(weightGrad, dz, h, dw, db, m, n, k, withBias ? 1 : 0, Blocks(n, OpenClSources.OuterRows), Blocks(k, OpenClSources.OuterCols), 2L * m * n * k);
            return 1;
        }
    }

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]); packed when m n k reaches <paramref name="packAbove"/>.</summary>
    public int InputGrad(CLStream stream, ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act, long packAbove, DeviceProfile profile, long flopsPerGroup)
    {
        lock (gate)
        {
            queue = stream.CommandQueue; this.profile = profile; this.flopsPerGroup = flopsPerGroup;
            if ((long)m * n * k >= packAbove)
            {
                var (a8, b32) = Panels(m, k, n);
                PackRows(dz, m, n, OpenClSources.OuterRows, a8);
                PackCols(w, n, k, OpenClSources.OuterCols, b32);
                Packed(n, dx, m, k, h, OpenClSources.EpilogueActBackprop, act, h);
                return 3;
            }
            Launch(inputGrad, dz, w, h, dx, m, n, k, (int)act, Blocks(m, OpenClSources.OuterRows), Blocks(k, OpenClSources.OuterCols), 2L * m * n * k);
            return 1;
        }
    }

    /// <summary>Scratch for C[rows, cols] over <paramref name="depth"/>: A as blocks of 8 rows, B as strips of 32 columns, padded.</summary>
    (ArrayView<float> A, ArrayView<float> B) Panels(int rows, int cols, int depth)
    {
        long a = (long)(rows + OpenClSources.OuterRows - 1) / OpenClSources.OuterRows * OpenClSources.OuterRows * depth;
        long b = (long)(cols + OpenClSources.OuterCols - 1) / OpenClSources.OuterCols * OpenClSources.OuterCols * depth;
        return (Scratch(ref panelA, a).SubView(0, a), Scratch(ref panelB, b).SubView(0, b));
    }

    /// <summary>A scratch buffer of at least <paramref name="length"/> floats (grown by replacing it; the queue is in order, so a replaced one is no longer needed once enqueued work ends, and ILGPU frees it after that).</summary>
    ArrayView<float> Scratch(ref MemoryBuffer1D<float, Stride1D.Dense>? buffer, long length)
    {
        if (buffer == null || buffer.Length < length)
        {
            if (buffer != null) { acc.Synchronize(); buffer.Dispose(); }
            buffer = acc.Allocate1D<float>(length);
        }
        return buffer.View;
    }

    /// <summary>
    /// One of the three products: four views, four ints (m, n, k and the activation or bias switch), and the blocks each
    /// work-item does along each dimension (the profile's rule, <see cref="DeviceProfile.ProductSplit(long, long, long, long)"/>).
    /// </summary>
    void Launch(IntPtr kernel, ArrayView<float> v0, ArrayView<float> v1, ArrayView<float> v2, ArrayView<float> v3, int m, int n, int k, int last,
        nuint blocks0, nuint blocks1, long flops)
    {
        var (per0, per1) = flopsPerGroup > 0 ? profile!.ProductSplit((long)blocks0, (long)blocks1, flops, flopsPerGroup) : (1, 1);
        uint i = 0;
        View(kernel, ref i, v0); View(kernel, ref i, v1); View(kernel, ref i, v2); View(kernel, ref i, v3);
        Int(kernel, ref i, m); Int(kernel, ref i, n); Int(kernel, ref i, k); Int(kernel, ref i, last);
        Int(kernel, ref i, per0); Int(kernel, ref i, per1);
        Enqueue(kernel, (blocks0 + (nuint)per0 - 1) / (nuint)per0, (blocks1 + (nuint)per1 - 1) / (nuint)per1);
    }

    /// <summary>Blocks of <paramref name="width"/> rows of <paramref name="src"/> [rows, depth] side by side, into <paramref name="panel"/>.</summary>
    void PackRows(ArrayView<float> src, int rows, int depth, int width, ArrayView<float> panel)
    {
        uint i = 0;
        View(packRows, ref i, src); Int(packRows, ref i, rows); Int(packRows, ref i, depth); Int(packRows, ref i, width); Buffer(packRows, ref i, panel);
        Enqueue(packRows, Blocks(depth, OpenClSources.PackRun), Blocks(rows, width));
    }

    /// <summary>Strips of <paramref name="width"/> columns of <paramref name="src"/> [rows, cols] one after another, into <paramref name="panel"/>.</summary>
    void PackCols(ArrayView<float> src, int rows, int cols, int width, ArrayView<float> panel)
    {
        uint i = 0;
        View(packCols, ref i, src); Int(packCols, ref i, rows); Int(packCols, ref i, cols); Int(packCols, ref i, width); Buffer(packCols, ref i, panel);
        Enqueue(packCols, Blocks(rows, OpenClSources.PackRun), Blocks(cols, width));
    }

    /// <summary>C[rows, cols] = epilogue(panels A . B over <paramref name="depth"/>).</summary>
    void Packed(int depth, ArrayView<float> c, int rows, int cols, ArrayView<float> aux, int epilogue, Activation act, ArrayView<float> sums)
    {
        uint i = 0;
        Buffer(gemmPacked, ref i, panelA!.View); Buffer(gemmPacked, ref i, panelB!.View); Int(gemmPacked, ref i, depth);
        View(gemmPacked, ref i, c); Int(gemmPacked, ref i, rows); Int(gemmPacked, ref i, cols);
        View(gemmPacked, ref i, aux); Int(gemmPacked, ref i, epilogue); Int(gemmPacked, ref i, (int)act); View(gemmPacked, ref i, sums);
        Enqueue(gemmPacked, Blocks(rows, OpenClSources.OuterRows), Blocks(cols, OpenClSources.OuterCols));
    }

    static nuint Blocks(int size, int block) => (nuint)((size + block - 1) / block);

    /// <summary>A whole buffer as one argument (a panel: always from its start).</summary>
    static void Buffer(IntPtr kernel, ref uint index, ArrayView<float> view)
    {
        IntPtr mem = ((CLMemoryBuffer)((IContiguousArrayView<float>)view).Buffer).NativePtr;
        Check(clSetKernelArg(kernel, index++, (nuint)sizeof(IntPtr), &mem), "clSetKernelArg");
    }

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

    /// <summary>One work-item per group: the driver spreads the groups over its threads in order, dimension 0 fastest.</summary>
    void Enqueue(IntPtr kernel, nuint items0, nuint items1)
    {
        nuint* global = stackalloc nuint[2] { items0, items1 };
        nuint* local = stackalloc nuint[2] { 1, 1 };
        Check(clEnqueueNDRangeKernel(queue, kernel, 2, null, global, local, 0, null, null), "clEnqueueNDRangeKernel");
    }

    public void Dispose()
    {
        panelA?.Dispose(); panelB?.Dispose();
        foreach (var k in new[] { forward, weightGrad, inputGrad, packRows, packCols, gemmPacked }) clReleaseKernel(k);
        clReleaseProgram(program);
    }
}
