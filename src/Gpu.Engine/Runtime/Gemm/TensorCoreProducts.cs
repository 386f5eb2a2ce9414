using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// One instance of the staged tensor-core kernel (<see cref="TensorCoreGemmKernels.Gemm{TMma}"/>) on one accelerator, loaded on
/// first use with <see cref="TensorCoreFamily.Specialization"/>: what the tensor-tf32 and tensor-bf16 families run.
/// </summary>
internal sealed class TensorCoreKernel
{
    public Accelerator Accelerator { get; }

    public readonly Lazy<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>> Gemm;

    TensorCoreKernel(Accelerator a, Func<Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>> load)
    {
        Accelerator = a;
        Gemm = new(load);
    }

    /// <summary>The instance for <typeparamref name="TMma"/> (its precision, on the tensor cores or emulated).</summary>
    public static TensorCoreKernel Load<TMma>(Accelerator a) where TMma : struct, IStagedMma =>
        new(a, () => a.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmArgs>(
            TensorCoreGemmKernels.Gemm<TMma>, TensorCoreFamily.Specialization));
}

/// <summary>
/// The three products of a layer on one staged tensor-core kernel instance (TF32 or bf16, as loaded), split along the
/// contraction where the blocks alone would not fill the device (<see cref="TensorCoreFamily.Split"/>, the splits added by
/// <see cref="SplitK"/>).
/// </summary>
internal sealed class TensorCoreProducts(TensorCoreKernel c, AcceleratorStream s) : IDenseProducts
{
    // C[rows, cols] = epilogue(sum_p r(A(i,p)) r(B(j,p))), A(i,p) = a[i*aRow + p*aCol], B(j,p) = b[j*bRow + p*bCol], r the kernel's rounding
    int Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> cOut, ArrayView<float> aux, int rows, int cols, int depth,
        int aRow, int aCol, int bRow, int bCol, int epilogue, Activation act)
    {
        if (rows == 0 || cols == 0) return 0;   // no groups to launch (the engine has no empty layers)
        var args = TensorCoreFamily.Args(a, b, rows, cols, depth, aRow, aCol, bRow, bCol, epilogue, (int)act);
        (args.Splits, args.SplitDepth) = TensorCoreFamily.Split(rows, cols, depth, c.Accelerator.NumMultiprocessors);
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

/// <summary>
/// The self-test a tensor-core family runs before a device uses it: one forward product, m x n x k past one 128 x 128 block in
/// both directions, 19 16-deep tiles, no multiple of any (in two splits on any GPU of 3 multiprocessors or more,
/// <see cref="TensorCoreFamily.Split"/>, so the reduction is tested too), against the scalar kernels' emulation of the same
/// precision on the same device.
/// </summary>
internal static class TensorCoreSelfTest
{
    public const int Rows = 133, Cols = 141, Depth = 300;

    /// <summary>
    /// Null where <paramref name="tensor"/>'s identity forward product agrees with the scalar emulation of <paramref name="precision"/>
    /// to 1e-5 (relative to the emulation's norm: only the order of the fp32 sums may differ); else why not.
    /// </summary>
    public static string? Run(Accelerator a, IDenseProducts tensor, Precision precision, int seed)
    {
        try
        {
            var r = new Random(seed);
            float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
            using var x = a.Allocate1D(Values(Rows * Depth));
            using var w = a.Allocate1D(Values(Cols * Depth));
            using var b = a.Allocate1D(new float[Cols]);
            using var yTensor = a.Allocate1D<float>(Rows * Cols);
            using var yEmulated = a.Allocate1D<float>(Rows * Cols);
            var stream = a.DefaultStream;
            tensor.DenseForward(x.View, w.View, b.View, yTensor.View, Rows, Cols, Depth, Activation.Identity);
            (GemmFamilies.Scalar with { Precision = precision }).Open(a, stream, DeviceProfile.For(a))
                .DenseForward(x.View, w.View, b.View, yEmulated.View, Rows, Cols, Depth, Activation.Identity);
            stream.Synchronize();
            float[] got = yTensor.GetAsArray1D(), want = yEmulated.GetAsArray1D();
            double num = 0, den = 0;
            for (int i = 0; i < got.Length; i++) { double d = got[i] - want[i]; num += d * d; den += (double)want[i] * want[i]; }
            double rel = Math.Sqrt(num / den);
            return rel < 1e-5 ? null : $"its self-test product differs from the {Words.Name(precision)} emulation by {rel:E2} (relative)";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"its self-test failed: {e.Message.Split('\n')[0].Trim()}";
        }
    }
}
