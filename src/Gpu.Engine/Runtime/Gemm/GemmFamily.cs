using Gpu.Engine.Settings;
using ILGPU;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>The three dense-layer products of a training step.</summary>
internal enum GemmProduct
{
    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    Forward,
    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k], without the bias gradient.</summary>
    WeightGrad,
    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k] and db[n] = column sums of dZ, in one pass.</summary>
    WeightAndBiasGrad,
    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]).</summary>
    InputGrad,
}

/// <summary>
/// A family of dense-layer product kernels (forward, weight gradient, input gradient), as one object: its word, what
/// it is for, the devices it runs on, how much a device should want it, its kernels (for the coverage test), the
/// shapes `gpu check` tries it on, its own knobs (a record's properties, varied with <c>with</c>), and how it runs
/// on a device (<see cref="Open"/>). Every family is registered in <see cref="GemmFamilies.All"/>; the device
/// profile picks one per device, `gpu check` and the kernel tests run every family a device can run, and the GEMM
/// benchmarks race them.
/// </summary>
internal abstract record GemmFamily
{
    /// <summary>The word users type and read: "tiled".</summary>
    public abstract string Name { get; }

    /// <summary>What it is, for help texts: "shared-memory tiles, GPUs".</summary>
    public abstract string Meaning { get; }

    /// <summary>Whether a device of this kind can run it (every family a device runs is checked there).</summary>
    public abstract bool RunsOn(DeviceKind kind);

    /// <summary>How much a device of this profile wants it: the runnable family with the highest preference is the device's.</summary>
    public abstract int Preference(DeviceProfile profile);

    /// <summary>The kernel methods a product runs (<c>Class.Method</c>, or <c>dense_layers.cl:kernel</c>), for the coverage test.</summary>
    public abstract string[] Kernels(GemmProduct product);

    /// <summary>The m x n x k shapes `gpu check` runs it on: never multiples of a tile.</summary>
    public virtual IReadOnlyList<(int M, int N, int K)> CheckShapes => GemmFamilies.AnyShapes;

    /// <summary>The variants `gpu check` runs, each named: the family as it is, and any knob setting that takes other kernels.</summary>
    public virtual IEnumerable<(string Variant, GemmFamily Family)> CheckVariants => [(Name, this)];

    /// <summary>
    /// The precision of the products' inputs (a knob every family has; fp32 unless <see cref="GemmFamilies.For"/> sets another):
    /// a family that <see cref="Computes"/> a reduced precision rounds each input element to it as it loads it (emulated on CUDA
    /// cores or CPUs, or handed to tensor cores: <see cref="TensorCores"/>), and sums in fp32.
    /// </summary>
    public Precision Precision { get; init; } = Precision.Fp32;

    /// <summary>Whether the family's kernels compute products in <paramref name="precision"/> (fp32: every family but a tensor-core one).</summary>
    public virtual bool Computes(Precision precision) => precision == Precision.Fp32;

    /// <summary>Whether it computes <paramref name="precision"/>'s products on tensor cores (else, for TF32 and bf16, an emulation).</summary>
    public virtual bool TensorCores(Precision precision) => false;

    /// <summary>The family as it is, or, where it does not compute its <see cref="Precision"/>, in the first precision it does (a tensor-core family's own).</summary>
    public GemmFamily InOwnPrecision() => Computes(Precision) ? this : this with { Precision = Enum.GetValues<Precision>().First(Computes) };

    /// <summary>Whether this family, with its knobs, fits a device of <paramref name="profile"/> (a fixed tile needs groups that large).</summary>
    public virtual bool Fits(DeviceProfile profile) => true;

    /// <summary>Why this family cannot run on <paramref name="accelerator"/> although its kind could (its kernels do not build), or null.</summary>
    public virtual string? Unavailable(Accelerator accelerator) => null;

    /// <summary>The family's kernels on one device, launching on <paramref name="stream"/> (compiled once per accelerator).</summary>
    public abstract IDenseProducts Open(Accelerator accelerator, AcceleratorStream stream, DeviceProfile profile);

    /// <summary>"tiled (64x64 tiles)": the family with the knobs it uses on a device of <paramref name="profile"/>.</summary>
    public virtual string Describe(DeviceProfile profile) => Name;

    /// <summary>Lines saying how the family runs each product shape of a network at a batch size (printed by --verbose); none by default.</summary>
    public virtual IEnumerable<string> Plans(DeviceProfile profile, IEnumerable<(GemmProduct Product, int M, int N, int K)> products) => [];

    public sealed override string ToString() => Name;
}

/// <summary>
/// The three products of one GEMM family on one device, each enqueued on the stream the family was opened with;
/// each returns the number of kernel launches it enqueued (the kernel set counts them).
/// </summary>
internal interface IDenseProducts
{
    /// <summary>Y[m,n] = act(X[m,k] . W[n,k]^T + b[n]).</summary>
    int DenseForward(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Activation act);

    /// <summary>dW[n,k] = dZ[m,n]^T . H[m,k]; with <paramref name="withBias"/> also db[n] = column sums of dZ (each summed over the rows in order) in the same launch.</summary>
    int WeightGrad(ArrayView<float> dz, ArrayView<float> h, ArrayView<float> dw, ArrayView<float> db, int m, int n, int k, bool withBias);

    /// <summary>dX[m,k] = (dZ[m,n] . W[n,k]) * act'(from H[m,k]); Identity: no factor.</summary>
    int InputGrad(ArrayView<float> dz, ArrayView<float> w, ArrayView<float> h, ArrayView<float> dx, int m, int n, int k, Activation act);
}

/// <summary>
/// The registry of GEMM families: a new family is one <see cref="GemmFamily"/> record added to <see cref="All"/>.
/// Its word is parsed and listed here (`gpu check --family`, the benchmarks).
/// </summary>
internal static class GemmFamilies
{
    // (first: the families' shape lists use it while they are built)
    /// <summary>m x n x k shapes for any family: 1, primes and off-by-one sizes around the tiles and blocks.</summary>
    public static readonly (int M, int N, int K)[] AnyShapes =
        [(1, 1, 1), (1, 7, 33), (7, 1, 5), (33, 7, 129), (129, 10, 33), (64, 33, 784), (5, 129, 3), (130, 67, 9)];

    public static readonly ScalarFamily Scalar = new();
    public static readonly Vector4Family Vector4 = new();
    public static readonly TiledFamily Tiled = new();
    public static readonly ClVectorFamily ClVector = new();
    public static readonly BlockedFamily Blocked = new();
    public static readonly TensorCoreFamily TensorTf32 = new();
    public static readonly TensorCoreBf16Family TensorBf16 = new();

    /// <summary>Every family, in the order help texts list them.</summary>
    public static IReadOnlyList<GemmFamily> All { get; } = [Scalar, Vector4, Tiled, ClVector, Blocked, TensorTf32, TensorBf16];

    /// <summary>The families a device of this kind runs, in registry order.</summary>
    public static IReadOnlyList<GemmFamily> RunnableOn(DeviceKind kind) => All.Where(f => f.RunsOn(kind)).ToList();

    /// <summary>The family a device of <paramref name="profile"/> uses: the runnable one it prefers most (the first of equals).</summary>
    public static GemmFamily Preferred(DeviceProfile profile) => Preferred(profile, Precision.Fp32);

    /// <summary>
    /// The runnable family that a device of <paramref name="profile"/> prefers most among those that compute <paramref name="precision"/>
    /// and fit it, tensor-core families left out unless <paramref name="tensorCores"/> (the first of equals).
    /// </summary>
    static GemmFamily Preferred(DeviceProfile profile, Precision precision, bool tensorCores = true) =>
        RunnableOn(profile.Kind).Where(f => f.Computes(precision) && f.Fits(profile) && (tensorCores || !f.TensorCores(precision)))
            .Aggregate((best, f) => f.Preference(profile) > best.Preference(profile) ? f : best);

    /// <summary>
    /// The one rule for a precision's products, with <see cref="GemmFamily.Precision"/> set: fp32 is the profile's own family;
    /// for TF32 or bf16 a tensor-core family the device runs and prefers (tensor-tf32 or tensor-bf16 on CUDA from compute capability 8.0;
    /// left out when not <paramref name="tensorCores"/>, as after a failed self-test), else the profile's family, with its
    /// knobs, if it emulates the precision, else the runnable family the device prefers among those that emulate it (scalar
    /// runs everywhere; the CPU families vector4 and cl-vector emulate; tiled and blocked do not, so a GPU without a
    /// tensor-core family for the precision emulates in the scalar kernels).
    /// </summary>
    public static GemmFamily For(DeviceProfile profile, Precision precision, bool tensorCores = true)
    {
        var own = profile.Gemm;
        bool ownEmulates = own.Computes(precision) && !own.TensorCores(precision);
        var best = Preferred(profile, precision, tensorCores);
        return (precision == Precision.Fp32 ? (own.Computes(precision) ? own : best)
            : best.TensorCores(precision) || !ownEmulates ? best : own) with { Precision = precision };
    }

    /// <summary>The family named by a word (case and surrounding blanks ignored); anything else is a <see cref="FormatException"/> listing the words.</summary>
    public static GemmFamily Parse(string text)
    {
        string t = text.Trim().ToLowerInvariant();
        return All.FirstOrDefault(f => f.Name == t) ?? throw new FormatException($"'{text}' is not one of {List()}");
    }

    /// <summary>"scalar, vector4, tiled or cl-vector".</summary>
    public static string List() => Join(All.Select(f => f.Name));

    /// <summary>"scalar (4x4 register blocks, any device), ...": the words with their meanings, for help texts.</summary>
    public static string Describe() => Join(All.Select(f => $"{f.Name} ({f.Meaning})"));

    static string Join(IEnumerable<string> items)
    {
        var list = items.ToList();
        return list.Count <= 1 ? string.Join("", list) : $"{string.Join(", ", list[..^1])} or {list[^1]}";
    }
}
