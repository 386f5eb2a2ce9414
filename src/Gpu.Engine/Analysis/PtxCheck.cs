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
/// visible in PTX), or when it holds an approximate instruction whose documented error exceeds the kernel checks'
/// tolerance (<see cref="KernelCheck.Tolerance"/>) or is not documented here. `gpu check --ptx` prints it; the PTX
/// tests run it in CI.
/// </summary>
internal static class PtxCheck
{
    /// <summary>The architectures checked: A100 (sm_80) and H100/H200 (sm_90).</summary>
    public static IReadOnlyList<CudaArchitecture> Architectures { get; } = [CudaArchitecture.SM_80, CudaArchitecture.SM_90];

    public static IReadOnlyList<OptimizationLevel> Levels { get; } = [OptimizationLevel.O1, OptimizationLevel.O2];

    /// <summary>
    /// PTX's approximate instructions (op.approx[.ftz].type) and the relative error NVIDIA documents for each, as we
    /// read the PTX ISA and the CUDA Programming Guide's table of the intrinsics built on them; infinity where the
    /// documentation gives no relative bound (sin and cos: an absolute error, so any relative error near a zero).
    /// An instruction not listed fails the check until its bound is added here.
    /// </summary>
    public static IReadOnlyDictionary<string, double> ApproximateBounds { get; } = new Dictionary<string, double>
    {
        ["ex2.f32"] = Math.Pow(2, -22),    // 2 ulp (exp2f, which is this instruction)
        ["lg2.f32"] = Math.Pow(2, -22),    // 2^-22 absolute near 1, 2 ulp elsewhere (log2f / __log2f)
        ["rcp.f32"] = Math.Pow(2, -23),    // 1 ulp
        ["sqrt.f32"] = Math.Pow(2, -23),   // 1 ulp
        ["rsqrt.f32"] = Math.Pow(2, -22.9),
        ["rsqrt.f64"] = Math.Pow(2, -22.9),   // approximate f64: single precision only
        ["rcp.f64"] = Math.Pow(2, -22.9),
        ["div.f32"] = Math.Pow(2, -22),    // 2 ulp for divisors in [2^-126, 2^126]
        ["tanh.f32"] = Math.Pow(2, -11),   // about 2^-11 = 4.9e-4
        ["tanh.f16"] = Math.Pow(2, -10), ["tanh.bf16"] = Math.Pow(2, -7),
        ["ex2.f16"] = Math.Pow(2, -9.9), ["ex2.bf16"] = Math.Pow(2, -7),
        ["sin.f32"] = double.PositiveInfinity, ["cos.f32"] = double.PositiveInfinity,
    };

    static readonly Regex ApproxInstruction = new(@"\b(?<op>[a-z0-9]+)\.approx(?:\.ftz)?\.(?<type>[a-z0-9]+)\b", RegexOptions.Compiled);
    static readonly Regex LocalDecl = new(@"^\s*\.local\b[^\[;]*\[(?<n>\d+)\]", RegexOptions.Compiled | RegexOptions.Multiline);
    static readonly Regex SharedDecl = new(@"^\s*\.shared\b[^\[;]*\.b8\s+\S+\[(?<n>\d+)\]", RegexOptions.Compiled | RegexOptions.Multiline);
    static readonly Regex Target = new(@"^\s*\.target\s+(?<t>\w+)", RegexOptions.Compiled | RegexOptions.Multiline);

    /// <summary>What a PTX text holds: local and shared bytes declared, its approximate instructions, and the problems the check fails on.</summary>
    public static (int LocalBytes, int SharedBytes, List<string> Approximate, List<string> Problems) Analyze(string ptx, bool product)
    {
        int local = LocalDecl.Matches(ptx).Sum(m => int.Parse(m.Groups["n"].Value));
        int shared = SharedDecl.Matches(ptx).Sum(m => int.Parse(m.Groups["n"].Value));
        var problems = new List<string>();
        if (product && Regex.IsMatch(ptx, @"\.local\b"))
            problems.Add($"local memory in a product ({local} bytes of .local): its register block no longer fits in registers");
        var approx = ApproxInstruction.Matches(ptx).Select(m => m.Value).Distinct().OrderBy(v => v).ToList();
        foreach (var instruction in approx)
        {
            var m = ApproxInstruction.Match(instruction);
            string key = $"{m.Groups["op"].Value}.{m.Groups["type"].Value}";
            if (!ApproximateBounds.TryGetValue(key, out double bound))
                problems.Add($"{instruction}: an approximate instruction with no documented bound in PtxCheck.ApproximateBounds");
            else if (bound > KernelCheck.Tolerance)
                problems.Add($"{instruction}: documented relative error {(double.IsInfinity(bound) ? "unbounded (absolute error only)" : bound.ToString("E1"))} exceeds the kernel checks' {KernelCheck.Tolerance:E0}");
        }
        return (local, shared, approx, problems);
    }

    /// <summary>The approximate instructions of a list, each with its documented bound: "ex2.approx.f32 (2.4E-007)".</summary>
    public static string Describe(IEnumerable<string> approximate) => string.Join(", ", approximate.Select(a =>
    {
        var m = ApproxInstruction.Match(a);
        return ApproximateBounds.TryGetValue($"{m.Groups["op"].Value}.{m.Groups["type"].Value}", out double b) ? $"{a} ({b:E1})" : $"{a} (undocumented)";
    }));

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
