using System.Reflection;
using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// TF32 products on the tensor cores of NVIDIA GPUs from compute capability 8.0 (kernels/Gpu.Kernels/TensorCoreGemmKernels.cs:
/// mma.sync m16n8k8 through ILGPU's inline PTX, 128 x 128 blocks staged through shared memory, one strided kernel for the three
/// products, as the tiled family's). It computes --precision tf32 only, so CUDA devices of 8.0 and later take it for tf32
/// (<see cref="GemmFamilies.For"/>) and never for fp32. Before a device uses it, it runs one product and compares it with the
/// scalar kernels' TF32 emulation on the same device (<see cref="Unavailable"/>): a device where it disagrees emulates
/// instead, saying why.
/// </summary>
internal sealed record TensorCoreFamily : GemmFamily
{
    public override string Name => "tensor-tf32";
    public override string Meaning => "TF32 tensor cores (mma.sync m16n8k8), CUDA compute capability 8.0 and later, --precision tf32 only";
    public override bool RunsOn(DeviceKind kind) => kind == DeviceKind.Cuda;
    public override int Preference(DeviceProfile profile) => 4;
    public override bool Computes(Precision precision) => precision == Precision.Tf32;
    public override bool TensorCores(Precision precision) => precision == Precision.Tf32;
    public override string[] Kernels(GemmProduct product) => ["TensorCoreGemmKernels.Gemm"];

    /// <summary>Compute capability 8.0 or later (mma.sync with TF32 operands); the 256-thread groups.</summary>
    public override bool Fits(DeviceProfile profile) =>
        profile.ComputeCapability is var (major, _) && major >= 8 && profile.MaxGroupSize >= TensorCoreGemmKernels.Threads;

    /// <summary>
    /// The self-test's product: m x n x k, past one 128 x 128 block in both directions, 19 16-deep tiles, no multiple of any;
    /// in two splits on any GPU of 3 multiprocessors or more (<see cref="Split"/>), so the reduction is tested too.
    /// </summary>
    const int TestRows = 133, TestCols = 141, TestDepth = 300;

    /// <summary>
    /// Null where one forward product (133x141x300, identity) agrees with the scalar kernels' TF32 emulation on this device to 1e-5
    /// (relative to the emulation's norm); else why not (each accelerator tests once).
    /// </summary>
    public override string? Unavailable(Accelerator accelerator) => SelfTests.For(accelerator, a => new SelfTest(a)).Failure;

    static readonly PerAccelerator<SelfTest> SelfTests = new();

    sealed class SelfTest
    {
        public readonly string? Failure;

        public SelfTest(Accelerator a)
        {
            try
            {
                var r = new Random(20);
                float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
                using var x = a.Allocate1D(Values(TestRows * TestDepth));
                using var w = a.Allocate1D(Values(TestCols * TestDepth));
                using var b = a.Allocate1D(new float[TestCols]);
                using var yTensor = a.Allocate1D<float>(TestRows * TestCols);
                using var yEmulated = a.Allocate1D<float>(TestRows * TestCols);
                var stream = a.DefaultStream;
                new Products(Compiled.For(a, k => new TensorKernels(k)), stream).DenseForward(x.View, w.View, b.View, yTensor.View, TestRows, TestCols, TestDepth, Activation.Identity);
                (GemmFamilies.Scalar with { Precision = Precision.Tf32 }).Open(a, stream, DeviceProfile.For(a))
                    .DenseForward(x.View, w.View, b.View, yEmulated.View, TestRows, TestCols, TestDepth, Activation.Identity);
                stream.Synchronize();
                float[] got = yTensor.GetAsArray1D(), want = yEmulated.GetAsArray1D();
                double num = 0, den = 0;
                for (int i = 0; i < got.Length; i++) { double d = got[i] - want[i]; num += d * d; den += (double)want[i] * want[i]; }
                double rel = Math.Sqrt(num / den);
                Failure = rel < 1e-5 ? null : $"its self-test product differs from the TF32 emulation by {rel:E2} (relative)";
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Failure = $"its self-test failed: {e.Message.Split('\n')[0].Trim()}";
            }
        }
    }

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        Precision == Precision.Tf32
            ? new Products(Compiled.For(accelerator, a => new TensorKernels(a)), stream)
            : throw new ArgumentException($"the {Name} family computes tf32 only, not {Words.Name(Precision)}");

    static readonly PerAccelerator<TensorKernels> Compiled = new();

    /// <summary>
    /// The specialisation the kernel is loaded (and PTX-checked) with: groups of 256 threads, two resident per multiprocessor
    /// (.maxntid 256, .minnctapersm 2: ptxas keeps it within 128 registers a thread; ptxas 11.8 gives it 122-124 either way).
    /// </summary>
    public static KernelSpecialization Specialization => new(TensorCoreGemmKernels.Threads, 2);

    /// <summary>Whether <paramref name="method"/> is the kernel, with any mma (what <see cref="KernelEntry.Specialization"/> asks).</summary>
    public static bool IsKernel(MethodInfo method) =>
        method.IsGenericMethod && method.GetGenericMethodDefinition() == GemmDefinition;

    static readonly MethodInfo GemmDefinition = typeof(TensorCoreGemmKernels).GetMethod(nameof(TensorCoreGemmKernels.Gemm))!;

    /// <summary>A product's scalar arguments, with whether each input view starts on a 16-byte boundary (its element offset a multiple of 4).</summary>
    internal static GemmArgs Args(ArrayView<float> a, ArrayView<float> b, int rows, int cols, int depth, int aRow, int aCol, int bRow, int bCol, int epilogue, int act) => new()
    {
        Rows = rows, Cols = cols, Depth = depth, ARow = aRow, ACol = aCol, BRow = bRow, BCol = bCol, Epilogue = epilogue, Act = act,
        Aligned = (StartsOn16Bytes(a) ? 1 : 0) | (StartsOn16Bytes(b) ? 2 : 0), Splits = 1, SplitDepth = depth,
    };

    static bool StartsOn16Bytes(ArrayView<float> v) => ((IContiguousArrayView<float>)v).Index % 4 == 0;

    /// <summary>
    /// Splits of the contraction for C[rows, cols] (a model, not measured): the fewest that give each of
    /// <paramref name="multiprocessors"/> two groups (the two that stay resident, <see cref="Specialization"/>), each split at
    /// least 8 tiles (128) deep; 1 where the blocks alone do. Each split covers the same whole number of 16-deep tiles, and the
    /// splits returned are those actually made (every one non-empty). Pure: the same inputs give the same splits.
    /// </summary>
    public static (int Splits, int SplitDepth) Split(int rows, int cols, int depth, int multiprocessors)
    {
        const int tile = TensorCoreGemmKernels.TileDepth, minTiles = 8;
        long blocks = (long)((rows + TensorCoreGemmKernels.Block - 1) / TensorCoreGemmKernels.Block) * ((cols + TensorCoreGemmKernels.Block - 1) / TensorCoreGemmKernels.Block);
        int tiles = SplitK.Steps(depth, tile);
        if (tiles == 0 || blocks == 0) return (1, tile);
        long wanted = Math.Min(Math.Max(1, tiles / minTiles), Math.Max(1, (2L * multiprocessors + blocks - 1) / blocks));
        return SplitK.Cut(depth, tile, (int)wanted);
    }

    sealed class TensorKernels(Accelerator a)
    {
        public Accelerator Accelerator => a;

        public readonly Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>>
            Gemm = new(() => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(
                TensorCoreGemmKernels.Gemm<TensorCoreWarpMma>, Specialization));
    }

    sealed class Products(TensorKernels c, AcceleratorStream s) : IDenseProducts
    {
        // C[rows, cols] = epilogue(sum_p tf32(A(i,p)) tf32(B(j,p))), A(i,p) = a[i*aRow + p*aCol], B(j,p) = b[j*bRow + p*bCol]
        int Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> cOut, ArrayView<float> aux, int rows, int cols, int depth,
            int aRow, int aCol, int bRow, int bCol, int epilogue, Activation act)
        {
            if (rows == 0 || cols == 0) return 0;   // no groups to launch (the engine has no empty layers)
            var args = Args(a, b, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, (int)act);
            (args.Splits, args.SplitDepth) = Split(rows, cols, depth, c.Accelerator.NumMultiprocessors);
            var config = TensorCoreGemmKernels.Config(rows, cols, args.Splits);
            if (args.Splits == 1)
            {
                c.Gemm.Value(s, config, a, b, cOut, aux, args);
                return 1;
            }
            var splitK = SplitK.For(c.Accelerator);
            var partials = splitK.Workspace(s, (long)args.Splits * rows * cols);
            c.Gemm.Value(s, config, a, b, partials, aux, args);
            splitK.Reduce(s, partials, cOut, aux, a, args);
            return 2;
        }

        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
            Gemm(x, w, y, b, m, n, k, k, 1, k, 1, Epilogue.BiasAct, act);

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias) =>
            Gemm(dz, h, dw, withBias ? db : dw, n, k, m, 1, n, 1, k, withBias ? Epilogue.RowSums : Epilogue.None, Activation.Identity);

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
            Gemm(dz, w, dx, h, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, act);
    }
}
