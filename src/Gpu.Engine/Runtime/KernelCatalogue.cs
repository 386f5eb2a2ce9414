using System.Reflection;
using Gpu.Kernels;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Runtime;

namespace Gpu.Engine.Runtime;

/// <summary>How a kernel is launched: one thread per index, grouped by ILGPU (an <c>Index1D</c> first parameter), or in explicit groups with shared memory and barriers.</summary>
internal enum KernelGrouping { Implicit, Explicit }

/// <summary>One ILGPU kernel as the engine loads it: the method (generic ones instantiated with one tile), how it is grouped, whether it is a dense-layer product.</summary>
internal sealed record KernelEntry(string Name, MethodInfo Method, KernelGrouping Grouping, bool IsProduct)
{
    /// <summary>The entry point ILGPU compiles: implicitly grouped (auto-grouped or in fixed groups) or explicitly grouped.</summary>
    public EntryPointDescription EntryPoint => Grouping == KernelGrouping.Explicit
        ? EntryPointDescription.FromExplicitlyGroupedKernel(Method)
        : EntryPointDescription.FromImplicitlyGroupedKernel(Method);

    /// <summary>
    /// The specialisation the engine loads it with on a device of <paramref name="profile"/>: a fixed group size for the
    /// element-wise kernels where the profile sets one; a blocked GEMM tile's group size and register budget
    /// (<see cref="BlockedTile.Specialization"/>), the tensor-core kernel's (<see cref="TensorCoreFamily.Specialization"/>); none otherwise.
    /// </summary>
    public KernelSpecialization Specialization(DeviceProfile profile) =>
        BlockedGemm.TileOf(Method) is BlockedTile tile ? tile.Specialization
        : TensorCoreFamily.IsKernel(Method) ? TensorCoreFamily.Specialization
        : Grouping == KernelGrouping.Implicit && profile.ElementwiseGroupSize > 0 && CompiledKernels.GroupSized.Contains(Method)
            ? new KernelSpecialization(profile.ElementwiseGroupSize, null)
            : KernelSpecialization.Empty;

    public override string ToString() => Name;
}

/// <summary>
/// Every ILGPU kernel of kernels/Gpu.Kernels, found the way the coverage test finds them (public static void methods of
/// public static classes taking an ArrayView), each generic one instantiated with every struct of kernels/ that satisfies its
/// type parameter's constraints (its tile interface: <see cref="ITile"/> for the tiled kernel, <see cref="IBlockedTile"/> for
/// the blocked one): what the PTX check compiles. A kernel or tile added to kernels/ is in this list without further work.
/// </summary>
internal static class KernelCatalogue
{
    public static IReadOnlyList<KernelEntry> All { get; } = Scan();

    static List<KernelEntry> Scan()
    {
        var assembly = typeof(GemmKernels).Assembly;
        var structs = assembly.GetTypes().Where(t => !t.IsNested && t.IsValueType && !t.IsEnum && !t.IsGenericTypeDefinition).OrderBy(t => t.Name).ToList();
        var list = new List<KernelEntry>();
        foreach (var type in assembly.GetTypes().Where(t => !t.IsNested && t.IsAbstract && t.IsSealed).OrderBy(t => t.Name))   // static classes
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly).OrderBy(m => m.Name))
            {
                if (m.ReturnType != typeof(void) || !m.GetParameters().Any(p => p.ParameterType.Name.StartsWith("ArrayView"))) continue;
                bool product = type.Name.EndsWith("GemmKernels");
                var instances = m.IsGenericMethodDefinition
                    ? structs.Where(t => Satisfies(t, m.GetGenericArguments().Single()))
                        .Select(t => (Method: m.MakeGenericMethod(t), Name: $"{type.Name}.{m.Name}<{t.Name}>"))
                    : [(m, $"{type.Name}.{m.Name}")];
                foreach (var (method, name) in instances)
                {
                    var first = method.GetParameters()[0].ParameterType;
                    var grouping = first == typeof(Index1D) || first == typeof(Index2D) || first == typeof(Index3D) ? KernelGrouping.Implicit : KernelGrouping.Explicit;
                    list.Add(new KernelEntry(name, method, grouping, product));
                }
            }
        return list;
    }

    /// <summary>Whether struct <paramref name="t"/> meets every constraint of the generic parameter (its interfaces; struct-ness is given).</summary>
    static bool Satisfies(Type t, Type parameter) =>
        parameter.GetGenericParameterConstraints().All(c => c.IsAssignableFrom(t));
}
