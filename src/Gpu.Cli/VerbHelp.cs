using System.Globalization;
using System.Reflection;
using System.Text;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// A verb's --help: its setting flags (name, default and help from the setting table), then its
/// other flags (from the flag registry, <see cref="Flags"/>), in CommandLineParser's layout.
/// </summary>
internal static class VerbHelp
{
    const int Width = 80;

    /// <summary>The verb's name: "train".</summary>
    public static string Name(Type verb) => verb.GetCustomAttribute<VerbAttribute>()?.Name ?? verb.Name;

    /// <summary>The verb's flags besides its settings (<see cref="Flags"/>), base class first, each in declaration order.</summary>
    public static IEnumerable<(PropertyInfo Property, CliFlag Flag, bool Required)> Options(Type verb)
    {
        var chain = new List<Type>();
        for (var t = verb; t != null && t != typeof(object); t = t.BaseType) chain.Insert(0, t);
        foreach (var t in chain)
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
                if (p.GetCustomAttribute<FlagAttribute>() is { } a) yield return (p, a.Flag, a.Required);
    }

    /// <summary>The property that takes the verb's words in order ("search merge DIR"), or null when it takes none.</summary>
    public static PropertyInfo? Word(Type verb) =>
        verb.GetProperties(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(p => p.GetCustomAttribute<WordAttribute>() != null);

    /// <summary>The flags most runs set, listed first (in this order) by every verb that has them.</summary>
    public static readonly string[] CommonFlags = ["--epochs", "--lr", "--layers", "--output"];

    /// <summary>Lists an option's help names by a placeholder, filled from the registry that owns them (an attribute's text is a constant).</summary>
    static readonly Dictionary<string, Func<string>> Lists = new()
    {
        ["{gemm-families}"] = () => Gpu.Device.ProductFamilies,
    };

    /// <summary>A help text with its placeholders filled.</summary>
    public static string Filled(string text) => Lists.Aggregate(text, (t, l) => t.Replace(l.Key, l.Value()));

    /// <summary>What a verb prints, where its one-sentence description does not already say it.</summary>
    static readonly Dictionary<string, string> Prints = new()
    {
        ["devices"] = "Prints one row per device (id, kind, usable or not, memory, name and what its driver reports, or why it is refused), then the device --device auto picks and why.",
        ["check"] = "Prints the device's profile (kernel family, tile, layout, memory), then one line per kernel case with its relative error and pass or FAIL; exit code 4 if any fails.",
    };

    /// <summary>
    /// The help text: <paramref name="heading"/>, "gpu VERB: what it does" (and what it prints), a usage line,
    /// a blank line, then one entry per option, the <see cref="CommonFlags"/> first, defaults in the words
    /// the flags take (cosine, softmax-ce).
    /// </summary>
    public static string Render(Type verb, string heading)
    {
        var entries = new List<(string Name, string Text, string Value, bool Required)>();
        foreach (var f in SettingFlags.Of(verb))
            entries.Add((f.Name, $"(Default: {f.Setting.DefaultText}) {f.Help}", Metavar(f.Setting.Flag, Name(verb)), false));
        foreach (var (_, f, required) in Options(verb))
        {
            string text = (required ? "Required. " : "") + (f.Default is { } d ? $"(Default: {Shown(d)}) " : "") + Filled(f.Help);
            entries.Add((f.Dashed, text, f.Metavar, required));
        }
        entries = [.. entries.OrderBy(e => Array.IndexOf(CommonFlags, e.Name) is var i && i >= 0 ? i : CommonFlags.Length)];   // stable: the rest keep their order
        if (Word(verb)?.GetCustomAttribute<WordAttribute>() is { } words)   // the words (gpu search merge DIR) first
            entries.Insert(0, (words.Metavar, words.Help, "", true));
        entries.Add(("--help", "Display this help screen.", "", false));
        entries.Add(("--version", "Display version information.", "", false));

        int column = entries.Max(e => e.Name.Length) + 6;
        var sb = new StringBuilder(heading).Append('\n');
        if (verb.GetCustomAttribute<VerbAttribute>() is { } v)   // a verb's own help says what it does, then how to call it
        {
            string what = $"gpu {v.Name}: {v.HelpText}" + (Prints.TryGetValue(v.Name, out var prints) ? " " + prints : "");
            foreach (var line in Wrap(what, Width)) sb.Append(line).Append('\n');
            var usage = new StringBuilder($"usage: gpu {v.Name}");
            foreach (var e in entries.Where(e => e.Required)) usage.Append(e.Value.Length > 0 ? $" {e.Name} {e.Value}" : $" {e.Name}");
            foreach (var e in entries.Where(e => !e.Required && CommonFlags.Contains(e.Name))) usage.Append($" [{e.Name} {e.Value}]");
            if (entries.Any(e => !e.Required && !CommonFlags.Contains(e.Name) && e.Name is not ("--help" or "--version"))) usage.Append(" [options]");
            sb.Append('\n');
            var first = Wrap(usage.ToString(), Width)[0];   // the first line at full width, the rest indented under it
            sb.Append(first).Append('\n');
            if (usage.Length > first.Length)
                foreach (var line in Wrap(usage.ToString()[first.Length..], Width - 6)) sb.Append(' ', 6).Append(line).Append('\n');
        }
        sb.Append('\n');
        foreach (var (name, text, _, _) in entries)
        {
            var lines = Wrap(text, Width - column);
            sb.Append("  ").Append(name.PadRight(column - 2)).Append(lines[0]).Append('\n');
            foreach (var line in lines.Skip(1)) sb.Append(' ', column).Append(line).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>What a setting's value looks like in the usage line: W,W, N, X or VALUE (the other flags' are in <see cref="Flags"/>).</summary>
    static string Metavar(string flag, string verb) => flag switch
    {
        "layers" => "W,W",
        "epochs" or "batch-size" or "seed" or "patience" or "stream-buffer" => "N",
        "lr" or "l2" or "momentum" or "beta1" or "beta2" or "dropout" or "val-fraction" or "warmup-epochs" => "X",
        _ => "VALUE",
    };

    /// <summary>A default as the flag takes it (these options' defaults are numbers and words; setting flags show <see cref="Gpu.Engine.Settings.Hyperparameter.DefaultText"/>, in the setting's words).</summary>
    static string Shown(object value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";

    /// <summary>Words into lines of at most <paramref name="width"/> characters (a longer word gets a line of its own).</summary>
    static List<string> Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = new StringBuilder();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(word);
        }
        lines.Add(line.ToString());
        return lines;
    }
}
