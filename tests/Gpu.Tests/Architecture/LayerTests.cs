using ArchUnitNET.Loader;
using Gpu.Engine.Model;

namespace Gpu.Tests.Architecture;

/// <summary>
/// The engine's folders are layers that only look down (ARCHITECTURE.md). Every type's dependencies,
/// read from the compiled IL (fields, signatures, method bodies, attributes), must point at its own
/// namespace or at a layer listed below it; an edge up or sideways fails and is named.
/// </summary>
public sealed class LayerTests
{
    /// <summary>Each namespace with the layer it sits on: a type may use its own namespace and lower layers only.</summary>
    public static readonly IReadOnlyDictionary<string, int> Layers = new Dictionary<string, int>
    {
        ["Gpu.Engine"] = 0,               // UserError, Rng, AtomicFile
        ["Gpu.Engine.Settings"] = 1,      // options, choices and their words, the setting registry, experiment files
        ["Gpu.Engine.Data"] = 1,          // dataset readers
        ["Gpu.Engine.Model"] = 2,         // network spec, packing, initialisation
        ["Gpu.Engine.Reference"] = 3,     // the float64 oracle (Model only)
        ["Gpu.Engine.Runtime"] = 3,       // devices, device profile, kernel set, device model, batch sources
        ["Gpu.Engine.Training"] = 4,      // the loop, schedule, scheduler, control hooks, results
        ["Gpu.Engine.Analysis"] = 5,      // kernel and gradient checks, PCA, plots
        ["Gpu.Engine.Runs"] = 6,          // checkpoints, saved models, history and curves
        ["Gpu.Engine.Experiments"] = 7,   // grid search, loss landscape
        ["Gpu.Engine.Inference"] = 7,     // a saved model over new images
        ["Gpu"] = 8,                      // the public library API (src/Gpu.Engine/Api): device, data, network
    };

    /// <summary>The engine's own namespaces: Gpu (the public API) and Gpu.Engine with those under it.</summary>
    static bool IsEngine(string ns) => ns == "Gpu" || ns.StartsWith("Gpu.Engine");

    static readonly ArchUnitNET.Domain.Architecture Engine = new ArchLoader().LoadAssemblies(typeof(MlpSpec).Assembly).Build();

    /// <summary>Every (from namespace, to namespace) edge of the engine, with one example type pair each.</summary>
    static Dictionary<(string From, string To), string> Edges()
    {
        var edges = new Dictionary<(string, string), string>();
        foreach (var type in Engine.Types)
        {
            string from = type.Namespace.FullName;
            if (!IsEngine(from)) continue;
            foreach (var d in type.Dependencies)
            {
                string? to = d.Target.Namespace?.FullName;   // a generic type parameter (PerAccelerator<T>'s T) has no namespace
                if (to == null || to == from || !IsEngine(to)) continue;
                edges.TryAdd((from, to), $"{type.FullName} -> {d.Target.FullName}");
            }
        }
        return edges;
    }

    [Test]
    public void Every_engine_namespace_has_a_layer()
    {
        var unknown = Engine.Namespaces.Select(n => n.FullName).Where(n => IsEngine(n) && !Layers.ContainsKey(n)).ToList();
        Assert.That(unknown, Is.Empty, "namespaces missing from the layer table (add them here and to ARCHITECTURE.md)");
    }

    [Test]
    public void Layers_only_look_down()
    {
        var wrong = Edges().Where(e => Layers.TryGetValue(e.Key.From, out int from) && Layers.TryGetValue(e.Key.To, out int to) && to >= from)
            .Select(e => $"{e.Key.From} (layer {Layers[e.Key.From]}) uses {e.Key.To} (layer {Layers[e.Key.To]}): {e.Value}")
            .ToList();
        Assert.That(wrong, Is.Empty, "dependencies that point up or sideways:\n" + string.Join("\n", wrong));
    }

    [Test]
    public void Reference_depends_on_the_model_only()
    {
        var uses = Edges().Keys.Where(e => e.From == "Gpu.Engine.Reference").Select(e => e.To).ToList();
        Assert.That(uses, Is.SubsetOf(new[] { "Gpu.Engine", "Gpu.Engine.Model", "Gpu.Engine.Settings" }));
    }

    [Test]
    public void The_kernels_project_knows_nothing_of_the_engine()
    {
        var kernels = typeof(Gpu.Kernels.GemmKernels).Assembly;
        Assert.That(kernels.GetReferencedAssemblies().Select(a => a.Name), Has.None.StartsWith("Gpu."));
    }

    /// <summary>
    /// The CLI is a client of the library: every verb reaches the engine through the public API (namespace Gpu, the exported
    /// types) and the settings (Gpu.Engine.Settings: the setting table the flags come from); it never uses the engine's internals,
    /// so a verb cannot orchestrate work the library does not offer. A dependency on any other engine type fails, named.
    /// </summary>
    [Test]
    public void The_cli_uses_the_public_api_and_settings_only()
    {
        var cli = new ArchLoader().LoadAssemblies(typeof(Gpu.Cli.Program).Assembly, typeof(MlpSpec).Assembly).Build();
        var exported = typeof(MlpSpec).Assembly.GetExportedTypes().Select(t => t.FullName!).ToHashSet();
        bool Allowed(string ns, string type) => !IsEngine(ns) || ns == "Gpu.Engine.Settings" || exported.Contains(type);
        var reaching = new SortedDictionary<string, SortedSet<string>>();
        foreach (var type in cli.Types.Where(t => t.Namespace.FullName == "Gpu.Cli"))
            foreach (var d in type.Dependencies)
            {
                string? ns = d.Target.Namespace?.FullName;
                string target = d.Target.FullName.Split('`')[0];
                if (ns == null || Allowed(ns, target)) continue;
                string top = type.FullName["Gpu.Cli.".Length..].Split('+')[0].Split('`')[0];
                if (!reaching.TryGetValue(top, out var set)) reaching[top] = set = [];
                set.Add(target);
            }
        var inside = reaching.Select(r => $"{r.Key} -> {string.Join(", ", r.Value)}").ToList();
        Assert.That(inside, Is.Empty, "CLI types that reach past the public API (Gpu.*, exported) and Settings:\n" + string.Join("\n", inside));
    }
}
