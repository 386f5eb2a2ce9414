using System.Text.RegularExpressions;
using Gpu.Engine.Runtime;
using ILGPU;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace Gpu.Engine.Analysis;

/// <summary>One kernel compiled to PTX for one architecture at one optimisation level, and what the PTX holds.</summary>
internal sealed record PtxResult(string Kernel, KernelGrouping Grouping, string Architecture, string Target, string Isa, OptimizationLevel Level,
    int Lines, int LocalBytes, int SharedBytes, IReadOnlyList<string> Approximate, IReadOnlyList<string> Problems, string Ptx)
{
    public bool Passed => Problems.Count == 0;

    /// <summary>A file name for the PTX: Kernel_sm_80_O2.ptx.</summary>
    public string FileName => $"{Regex.Replace(Kernel, "[^A-Za-z0-9.]+", "_").TrimEnd('_')}_{Architecture}_{LevelName}.ptx";

    /// <summary>O0, O1 or O2 (ILGPU's enum also calls O1 "Release").</summary>
    public string LevelName => PtxCheck.Name(Level);
}

/// <summary>
/// Every ILGPU kernel (<see cref="KernelCatalogue"/>) compiled to PTX with ILGPU's PTX backend and a CUDA capability
/// context, as a CUDA accelerator would compile it (the same context settings, entry point, grouping and specialisation
/// from the CUDA device profile), but with no GPU and no CUDA driver: the PTX a build sends to the driver, checked
/// before a GPU is at hand. A kernel fails when it does not compile, when a product (GEMM) holds local memory
/// (<c>.local</c>: an array or struct ILGPU could not keep in registers; the driver's own register spills are not
/// visible in PTX), or when it holds any approximate instruction, whatever its documented error: op.approx[.ftz].type
/// (ex2, lg2, rcp, sqrt, rsqrt, sin, cos, div, tanh) or div.full.f32. (lg2.approx.f32's absolute error of 2^-22 near 1
/// made a confident softmax row's loss wrong by percents on an H200.) ILGPU writes IEEE-rounded division and square
/// root (div.rn.f32, rcp.rn.f32, sqrt.rn.f32) but lowers XMath.Exp, XMath.Log and XMath.Tanh to approximate
/// instructions, so the kernels take exp and log from <see cref="Gpu.Kernels.ExactMath"/>. `gpu check --ptx` prints
/// it; the PTX tests run it in CI. One kind of <c>.local</c> is not refused: ILGPU 1.5.3 hands every operand of inline PTX
/// (<c>CudaAsm.EmitRef</c>) through a 4-byte local variable, stored just before the instruction and loaded just after, so a
/// tensor-core product holds 14 of them per mma.sync site (4 D, 4 A, 2 B, 4 C registers: m16n8k8 tf32 and m16n8k16 bf16 alike). A product passes with exactly
/// that much local memory, in 4-byte variables, and no other. Whether ptxas makes them registers is not visible here:
/// ptxas 11.8 -O3 -v on the staged tensor-tf32 kernel's O2 PTX (the level the engine opens devices at) gives 0 bytes stack
/// frame and 122 registers for sm_80 (124 for sm_90), on its O1 PTX a 1912-byte stack frame (benchmarks/RESULTS.md).
/// </summary>
internal static class PtxCheck
{
    /// <summary>The architectures checked: A100 (sm_80) and H100/H200 (sm_90).</summary>
    public static IReadOnlyList<CudaArchitecture> Architectures { get; } = [CudaArchitecture.SM_80, CudaArchitecture.SM_90];

    public static IReadOnlyList<OptimizationLevel> Levels { get; } = [OptimizationLevel.O1, OptimizationLevel.O2];

    /// <summary>An approximate PTX instruction: op.approx[.ftz].type, or div.full[.ftz].f32 (the fast full-range division, 2 ulp).</summary>
    static readonly Regex ApproxInstruction = new(@"\b[a-z0-9]+\.approx(?:\.ftz)?\.[a-z0-9]+\b|\bdiv\.full(?:\.ftz)?\.f32\b", RegexOptions.Compiled);
    static readonly Regex LocalDecl = new(@"^\s*\.local\b[^\[;]*\[(?<n>\d+)\]", RegexOptions.Compiled | RegexOptions.Multiline);
    static readonly Regex SharedDecl = new(@"^\s*\.shared\b[^\[;]*\.b8\s+\S+\[(?<n>\d+)\]", RegexOptions.Compiled | RegexOptions.Multiline);
    static readonly Regex Target = new(@"^\s*\.target\s+(?<t>\w+)", RegexOptions.Compiled | RegexOptions.Multiline);
    static readonly Regex MmaSite = new(@"^\s*mma\.sync\.", RegexOptions.Compiled | RegexOptions.Multiline);

    /// <summary>Local bytes ILGPU's inline-PTX operands take per mma.sync site: 14 registers of 4 bytes.</summary>
    public const int MmaOperandBytes = 14 * 4;

    /// <summary>What a PTX text holds: local and shared bytes declared, its approximate instructions, and the problems the check fails on.</summary>
    public static (int LocalBytes, int SharedBytes, List<string> Approximate, List<string> Problems) Analyze(string ptx, bool product)
    {
        int local = LocalDecl.Matches(ptx).Sum(m => int.Parse(m.Groups["n"].Value));
        int shared = SharedDecl.Matches(ptx).Sum(m => int.Parse(m.Groups["n"].Value));
        var problems = new List<string>();
        int mma = MmaSite.Matches(ptx).Count;
        bool operandsOnly = mma > 0 && local == mma * MmaOperandBytes && LocalDecl.Matches(ptx).All(m => m.Groups["n"].Value == "4");
        if (product && Regex.IsMatch(ptx, @"\.local\b") && !operandsOnly)
            problems.Add($"local memory in a product ({local} bytes of .local): its register block no longer fits in registers");
        var approx = ApproxInstruction.Matches(ptx).Select(m => m.Value).Distinct().OrderBy(v => v).ToList();
        foreach (var instruction in approx)
            problems.Add($"{instruction}: an approximate instruction (every kernel computes with IEEE-rounded arithmetic; exp and log come from ExactMath)");
        return (local, shared, approx, problems);
    }

    /// <summary>The approximate instructions of a list, comma-separated: "ex2.approx.f32, lg2.approx.f32".</summary>
    public static string Describe(IEnumerable<string> approximate) => string.Join(", ", approximate);

    public static string Name(OptimizationLevel level) => level switch { OptimizationLevel.O0 => "O0", OptimizationLevel.O1 => "O1", _ => "O2" };

    /// <summary>The PTX instruction set the check compiles with: the newest ILGPU 1.5.3 emits (a device's accelerator takes the newest its driver accepts).</summary>
    public static CudaInstructionSet InstructionSet => PTXCodeGenerator.SupportedInstructionSets.First();

    /// <summary>Compiles every kernel (or <paramref name="kernels"/>) for each architecture at each level.</summary>
    public static List<PtxResult> Run(IEnumerable<CudaArchitecture>? architectures = null, IEnumerable<OptimizationLevel>? levels = null,
        IEnumerable<KernelEntry>? kernels = null)
    {
        var list = kernels?.ToList() ?? [.. KernelCatalogue.All];
        var results = new List<PtxResult>();
        foreach (var level in levels ?? Levels)
            foreach (var arch in architectures ?? Architectures)
                results.AddRange(Compile(list, arch, level));
        return results;
    }

    /// <summary>Compiles <paramref name="kernels"/> for one architecture at one level, in one context and backend.</summary>
    public static IEnumerable<PtxResult> Compile(IReadOnlyList<KernelEntry> kernels, CudaArchitecture arch, OptimizationLevel level)
    {
        var profile = DeviceProfile.For(DeviceKind.Cuda, 0);
        using var context = Context.Create(b => ComputeDevice.Configure(b, level));
        var isa = InstructionSet;
        using var backend = new PTXBackend(context, new CudaCapabilityContext(arch), arch, isa, null);
        string name = arch.ToString().ToLowerInvariant();
        var results = new List<PtxResult>();
        foreach (var k in kernels)
        {
            string ptx;
            try
            {
                var compiled = (PTXCompiledKernel)backend.Compile(k.EntryPoint, k.Specialization(profile));
                ptx = compiled.PTXAssembly;
            }
            catch (Exception e)
            {
                results.Add(new PtxResult(k.Name, k.Grouping, name, "-", isa.ToString(), level, 0, 0, 0, [],
                    [$"does not compile: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}"], ""));
                continue;
            }
            var (local, shared, approx, problems) = Analyze(ptx, k.IsProduct);
            var target = Target.Match(ptx);
            results.Add(new PtxResult(k.Name, k.Grouping, name, target.Success ? target.Groups["t"].Value : "?", isa.ToString(), level,
                ptx.Count(c => c == '\n'), local, shared, approx, problems, ptx));
        }
        return results;
    }
}
