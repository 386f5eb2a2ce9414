namespace Gpu.Tests.Library;

/// <summary>
/// The library's public surface is a fixed list: a type made public by accident (or on purpose without
/// updating this list, README's Install section and the package's docs) fails here.
/// </summary>
public sealed class PublicApiTests
{
    /// <summary>Every public type of Gpu.Engine.dll: the API (namespace Gpu), the training options with their choices, and the error users can fix.</summary>
    static readonly string[] Expected =
    [
        "Gpu.CheckedGradient", "Gpu.DataFiles", "Gpu.Device", "Gpu.DeviceListing", "Gpu.Evaluation", "Gpu.GradientReport", "Gpu.ImageData", "Gpu.Images", "Gpu.Landscape", "Gpu.LandscapeOptions",
        "Gpu.MergeOptions", "Gpu.Network", "Gpu.Prediction", "Gpu.ResumeOptions", "Gpu.RunOptions",
        "Gpu.Search", "Gpu.SearchOptions", "Gpu.SearchProgress", "Gpu.SearchResult", "Gpu.SearchTrial", "Gpu.StepReport", "Gpu.TrainingProgress", "Gpu.TrialGrid",
        "Gpu.Engine.UserError",
        "Gpu.Engine.Settings.Activation", "Gpu.Engine.Settings.DataPath", "Gpu.Engine.Settings.EarlyStopMetric", "Gpu.Engine.Settings.ExportFormat", "Gpu.Engine.Settings.InitKind",
        "Gpu.Engine.Settings.LossKind", "Gpu.Engine.Settings.LrSchedule", "Gpu.Engine.Settings.OptimizerKind", "Gpu.Engine.Settings.Precision", "Gpu.Engine.Settings.TrainOptions",
    ];

    [Test]
    public void The_engine_exports_exactly_the_library_api()
    {
        var exported = typeof(Network).Assembly.GetExportedTypes().Select(t => t.FullName!).Order().ToArray();
        Assert.That(exported, Is.EqualTo(Expected.Order().ToArray()),
            "public types of Gpu.Engine; make new types internal, or add them here and to README's Install section");
    }

    [Test]
    public void The_kernels_and_the_program_export_nothing()
    {
        Assert.That(typeof(Gpu.Kernels.GemmKernels).Assembly.GetExportedTypes(), Is.Empty, "Gpu.Kernels is reached through Gpu.Engine only");
        Assert.That(typeof(Gpu.Cli.Program).Assembly.GetExportedTypes(), Is.Empty, "the gpu program is a tool, not a library");
    }

    [Test]
    public void Public_members_use_only_public_types()
    {
        // the compiler already refuses a public signature with an internal type; this catches a public API that hands out ILGPU or other dependencies' types
        var allowed = typeof(Network).Assembly.GetExportedTypes().ToHashSet();
        var leaks = new List<string>();
        foreach (var type in allowed)
            foreach (var m in type.GetMembers(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.DeclaredOnly))
            {
                var types = m switch
                {
                    System.Reflection.MethodInfo mi => [mi.ReturnType, .. mi.GetParameters().Select(p => p.ParameterType)],
                    System.Reflection.ConstructorInfo ci => ci.GetParameters().Select(p => p.ParameterType).ToArray(),
                    System.Reflection.PropertyInfo pi => [pi.PropertyType],
                    System.Reflection.FieldInfo fi => [fi.FieldType],
                    _ => Array.Empty<Type>(),
                };
                foreach (var t in types.SelectMany(Unwrap))
                    if (t.Assembly != typeof(object).Assembly && !allowed.Contains(t) && !t.IsGenericParameter)
                        leaks.Add($"{type.Name}.{m.Name}: {t.FullName}");
            }
        Assert.That(leaks, Is.Empty, "public members that expose types from outside the library's API and the .NET base library");
    }

    static IEnumerable<Type> Unwrap(Type t)
    {
        if (t.HasElementType) return Unwrap(t.GetElementType()!);
        if (t.IsGenericType) return [t.GetGenericTypeDefinition(), .. t.GetGenericArguments().SelectMany(Unwrap)];
        return [t];
    }
}
