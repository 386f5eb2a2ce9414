using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// 4x8 blocks of four-float loads for ILGPU's CPU accelerator (kernels/Gpu.Kernels/VectorGemmKernels.cs): a product
/// whose loaded dimensions (and views' offsets) are multiples of 4 runs them, any other falls back to the scalar kernels.
/// It emulates TF32 and bf16 (its kernels and the scalar ones instantiated with the precision's <see cref="IInputRounding"/>).
/// </summary>
internal sealed record Vector4Family : GemmFamily
{
    public override string Name => "vector4";
    public override string Meaning => "4x8 blocks of four-float loads, ILGPU's CPU accelerator";
    public override bool RunsOn(DeviceKind kind) => kind == DeviceKind.CpuAccelerator;
    public override int Preference(DeviceProfile profile) => 2;
    public override bool Computes(Precision precision) => true;

    public override string[] Kernels(GemmProduct product) => product switch
    {
        GemmProduct.Forward => ["VectorGemmKernels.DenseForward"],
        GemmProduct.InputGrad => ["VectorGemmKernels.InputGrad"],
        _ => ["VectorGemmKernels.WeightGrad"],
    };

    /// <summary>The loaded dimensions are multiples of 4, never of its 4x8 block.</summary>
    public override IReadOnlyList<(int M, int N, int K)> CheckShapes { get; } = [(1, 4, 4), (7, 12, 36), (33, 20, 132), (129, 260, 12), (65, 36, 788), (3, 4, 20)];

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) => Precision switch
    {
        Precision.Tf32 => Products<Tf32Rounding>.For(accelerator, stream),
        Precision.Bf16 => Products<Bf16Rounding>.For(accelerator, stream),
        _ => Products<NoRounding>.For(accelerator, stream),
    };

    sealed class Vector4Kernels<TRound>(Accelerator a) where TRound : struct, IInputRounding
    {
        public static readonly PerAccelerator<Vector4Kernels<TRound>> Compiled = new();

        public readonly Lazy<Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>>
            Forward = new(() => a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.DenseForward<TRound>)),
            WeightGrad = new(() => a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.WeightGrad<TRound>)),
            InputGrad = new(() => a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(VectorGemmKernels.InputGrad<TRound>));
    }

    sealed class Products<TRound>(Vector4Kernels<TRound> v, ScalarKernels<TRound> scalar, AcceleratorStream s) : IDenseProducts where TRound : struct, IInputRounding
    {
        public static Products<TRound> For(Accelerator accelerator, AcceleratorStream stream) =>
            new(Vector4Kernels<TRound>.Compiled.For(accelerator, a => new Vector4Kernels<TRound>(a)), ScalarKernels<TRound>.For(accelerator), stream);

        /// <summary>Whether a product loading <paramref name="a"/> along dimension <paramref name="dimA"/> and <paramref name="b"/> along <paramref name="dimB"/> can take four floats at a time.</summary>
        static bool Fits(int dimA, ArrayView<float> a, int dimB, ArrayView<float> b) =>
            dimA % 4 == 0 && Index(a) % 4 == 0 && dimB % 4 == 0 && Index(b) % 4 == 0;

        static long Index(ArrayView<float> v) => ((IContiguousArrayView<float>)v).Index;

        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act)
        {
            if (!Fits(k, x, k, w)) return scalar.Forward(s, x, w, b, y, m, n, k, act);
            v.Forward.Value(s, VectorGemmKernels.Threads(m, n), x, w, b, y, m, n, k, (int)act);
            return 1;
        }

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias)
        {
            if (!Fits(n, dz, k, h)) return scalar.WeightGrad(s, dz, h, dw, db, m, n, k, withBias);
            v.WeightGrad.Value(s, VectorGemmKernels.Threads(n, k), dz, h, dw, withBias ? db : dw, m, n, k, withBias ? 1 : 0);
            return 1;
        }

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act)
        {
            if (!Fits(n, dz, k, w)) return scalar.InputGrad(s, dz, w, h, dx, m, n, k, act);
            v.InputGrad.Value(s, VectorGemmKernels.Threads(m, k), dz, w, h, dx, m, n, k, (int)act);
            return 1;
        }
    }
}
