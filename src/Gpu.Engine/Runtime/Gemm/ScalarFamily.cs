using Gpu.Engine.Settings;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>
/// Barrier-free 4x4 register blocks (kernels/Gpu.Kernels/GemmKernels.cs): any shape, any device; one thread per
/// 4x4 block of the output, no shared memory. The fallback of every device, and of every precision: it emulates TF32 and
/// bf16 (its kernels instantiated with the precision's <see cref="IInputRounding"/>).
/// </summary>
internal sealed record ScalarFamily : GemmFamily
{
    public override string Name => "scalar";
    public override string Meaning => "4x4 register blocks, any device";
    public override bool RunsOn(DeviceKind kind) => true;
    public override int Preference(DeviceProfile profile) => 0;
    public override bool Computes(Precision precision) => true;

    public override string[] Kernels(GemmProduct product) => product switch
    {
        GemmProduct.Forward => ["GemmKernels.DenseForward"],
        GemmProduct.InputGrad => ["GemmKernels.InputGrad"],
        _ => ["GemmKernels.WeightGrad"],
    };

    public override IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile) => Precision switch
    {
        Precision.Tf32 => new Products<Tf32Rounding>(ScalarKernels<Tf32Rounding>.For(accelerator), stream),
        Precision.Bf16 => new Products<Bf16Rounding>(ScalarKernels<Bf16Rounding>.For(accelerator), stream),
        _ => new Products<NoRounding>(ScalarKernels<NoRounding>.For(accelerator), stream),
    };

    sealed class Products<TRound>(ScalarKernels<TRound> c, AcceleratorStream s) : IDenseProducts where TRound : struct, IInputRounding
    {
        public int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act) =>
            c.Forward(s, x, w, b, y, m, n, k, act);

        public int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias) =>
            c.WeightGrad(s, dz, h, dw, db, m, n, k, withBias);

        public int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act) =>
            c.InputGrad(s, dz, w, h, dx, m, n, k, act);
    }
}

/// <summary>The scalar kernels of one accelerator with one input rounding (the vector4 family falls back to them), loaded on first use.</summary>
internal sealed class ScalarKernels<TRound>(Accelerator a) where TRound : struct, IInputRounding
{
    static readonly PerAccelerator<ScalarKernels<TRound>> Compiled = new();

    public static ScalarKernels<TRound> For(Accelerator accelerator) => Compiled.For(accelerator, x => new ScalarKernels<TRound>(x));

    readonly Lazy<Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>>
        forward = new(() => a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.DenseForward<TRound>)),
        weightGrad = new(() => a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.WeightGrad<TRound>)),
        inputGrad = new(() => a.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int>(GemmKernels.InputGrad<TRound>));

    public int Forward(AcceleratorStream s, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act)
    {
        forward.Value(s, GemmKernels.Threads(m, n), x, w, b, y, m, n, k, (int)act);
        return 1;
    }

    public int WeightGrad(AcceleratorStream s, ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias)
    {
        weightGrad.Value(s, GemmKernels.Threads(n, k), dz, h, dw, withBias ? db : dw, m, n, k, withBias ? 1 : 0);
        return 1;
    }

    public int InputGrad(AcceleratorStream s, ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act)
    {
        inputGrad.Value(s, GemmKernels.Threads(m, k), dz, w, h, dx, m, n, k, (int)act);
        return 1;
    }
}
