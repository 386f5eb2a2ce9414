using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// bf16 products on the tensor cores of NVIDIA GPUs from compute capability 8.0 (kernels/Gpu.Kernels/TensorCoreBf16GemmKernels.cs:
/// mma.sync m16n8k16 with bf16 operands through ILGPU's inline PTX, one strided kernel for the three products, tiled as the
/// tensor-tf32 kernel). It computes --precision bf16 only, so CUDA devices of 8.0 and later take it for bf16
/// (<see cref="GemmFamilies.For"/>) and never for fp32 or tf32. Before a device uses it, it runs one product and compares it
/// with the scalar kernels' bf16 emulation on the same device (<see cref="Unavailable"/>): a device where it disagrees emulates
/// instead, saying why.
/// </summary>
internal sealed record TensorCoreBf16Family : GemmFamily
{
    public override string Name => "tensor-bf16";
    public override string Meaning => "bf16 tensor cores (mma.sync m16n8k16), CUDA compute capability 8.0 and later, --precision bf16 only";
    public override bool RunsOn(DeviceKind kind) => kind == DeviceKind.Cuda;
    public override int Preference(DeviceProfile profile) => 4;
    public override bool Computes(Precision precision) => precision == Precision.Bf16;
    public override bool TensorCores(Precision precision) => precision == Precision.Bf16;
    public override string[] Kernels(GemmProduct product) => ["TensorCoreBf16GemmKernels.Gemm"];

    /// <summary>Compute capability 8.0 or later (mma.sync m16n8k16 with bf16 operands); the 128-thread groups.</summary>
    public override bool Fits(DeviceProfile profile) =>
        profile.ComputeCapability is var (major, _) && major >= 8 && profile.MaxGroupSize >= TensorCoreBf16GemmKernels.Threads;

    /// <summary>The self-test's product: m x n x k, no multiple of the 64x64 block or of the 16-deep step.</summary>
    const int TestRows = 77, TestCols = 45, TestDepth = 35;

    /// <summary>
    /// Null where one forward product (77x45x35, identity) agrees with the scalar kernels' bf16 emulation on this device to 1e-5
    /// (relative to the emulation's norm: the products of bf16 values are exact in fp32, so only the order of the fp32 sums
    /// differs); else why not (each accelerator tests once).
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
                var r = new Random(21);
                float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
                using var x = a.Allocate1D(Values(TestRows * TestDepth));
                using var w = a.Allocate1D(Values(TestCols * TestDepth));
                using var b = a.Allocate1D(new float[TestCols]);
                using var yTensor = a.Allocate1D<float>(TestRows * TestCols);
                using var yEmulated = a.Allocate1D<float>(TestRows * TestCols);
                var stream = a.DefaultStream;
                new Products(Compiled.For(a, k => new TensorKernels(k)), stream).DenseForward(x.View, w.View, b.View, yTensor.View, TestRows, TestCols, TestDepth, Activation.Identity);
                (GemmFamilies.Scalar with { Precision = Precision.Bf16 }).Open(a, stream, DeviceProfile.For(a))
                    .DenseForward(x.View, w.View, b.View, yEmulated.View, TestRows, TestCols, TestDepth, Activation.Identity);
                stream.Synchronize();
                float[] got = yTensor.GetAsArray1D(), want = yEmulated.GetAsArray1D();
                double num = 0, den = 0;
                for (int i = 0; i < got.Length; i++) { double d = got[i] - want[i]; num += d * d; den += (double)want[i] * want[i]; }
                double rel = Math.Sqrt(num / den);
                Failure = rel < 1e-5 ? null : $"its self-test product differs from the bf16 emulation by {rel:E2} (relative)";
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Failure = $"its self-test failed: {e.Message.Split('\n')[0].Trim()}";
            }
        }
    }

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) =>
        Precision == Precision.Bf16
            ? new Products(Compiled.For(accelerator, a => new TensorKernels(a)), stream)
            : throw new ArgumentException($"the {Name} family computes bf16 only, not {Words.Name(Precision)}");

    static readonly PerAccelerator<TensorKernels> Compiled = new();

    sealed class TensorKernels(Accelerator a)
    {
        public readonly Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>>
            Gemm = new(() => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int, int>(TensorCoreBf16GemmKernels.Gemm<TensorCoreMmaBf16>));
    }

    sealed class Products(TensorKernels c, AcceleratorStream s) : IDenseProducts
    {
        // C[rows, cols] = epilogue(sum_p bf16(A(i,p)) bf16(B(j,p))), A(i,p) = a[i*aRow + p*aCol], B(j,p) = b[j*bRow + p*bCol]
        int Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> cOut, ArrayView<float> aux, int rows, int cols, int depth,
            int aRow, int aCol, int bRow, int bCol, int epilogue, Activation act)
        {
            c.Gemm.Value(s, TensorCoreBf16GemmKernels.Config(rows, cols), a, b, cOut, aux, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, (int)act);
            return 1;
        }

        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
            Gemm(x, w, y, b, m, n, k, k, 1, k, 1, Epilogue.BiasAct, act);

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias) =>
            Gemm(dz, h, dw, withBias ? db : dw, n, k, m, 1, n, 1, k, withBias ? Epilogue.RowSums : Epilogue.None, Activation.Identity);

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
            Gemm(dz, w, dx, h, m, k, n, n, 1, 1, k, Epilogue.ActBackprop, act);
    }
}
