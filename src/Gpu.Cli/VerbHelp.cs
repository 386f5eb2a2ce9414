using System.Globalization;
using System.Reflection;
using System.Text;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// A verb's --help: its setting flags (name, default and help from the setting table), then its
/// CommandLineParser options (from their [Option] attributes), in CommandLineParser's layout.
/// </summary>
public static class VerbHelp
{
    const int Width = 80;

    /// <summary>The verb's name: "train".</summary>
    public static string Name(Type verb) => verb.GetCustomAttribute<VerbAttribute>()?.Name ?? verb.Name;

    /// <summary>The verb's CommandLineParser options, base class first, each in declaration order.</summary>
    public static IEnumerable<(PropertyInfo Property, OptionAttribute Attribute)> Options(Type verb)
    {
        var chain = new List<Type>();
        for (var t = verb; t != null && t != typeof(object); t = t.BaseType) chain.Insert(0, t);
        foreach (var t in chain)
            foreach (var p in t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
                if (p.GetCustomAttribute<OptionAttribute>() is { } a) yield return (p, a);
    }

    /// <summary>The help text: <paramref name="heading"/>, "gpu VERB: what it does", a blank line, then one entry per option.</summary>
    public static string Render(Type verb, string heading)
    {
        var entries = new List<(string Name, string Text)>();
        foreach (var f in SettingFlags.Of(verb))
            entries.Add((f.Name, $"(Default: {f.Setting.DefaultText}) {f.Help}"));
        foreach (var (_, a) in Options(verb))
        {
            string text = (a.Required ? "Required. " : "") + (a.Default is { } d ? $"(Default: {Convert.ToString(d, CultureInfo.InvariantCulture)}) " : "") + a.HelpText;
            entries.Add(("--" + a.LongName, text));
        }
        entries.Add(("--help", "Display this help screen."));
        entries.Add(("--version", "Display version information."));

        int column = entries.Max(e => e.Name.Length) + 6;
        var sb = new StringBuilder(heading).Append('\n');
        if (verb.GetCustomAttribute<VerbAttribute>() is { } v)   // a verb's own help says what it does
            foreach (var line in Wrap($"gpu {v.Name}: {v.HelpText}", Width)) sb.Append(line).Append('\n');
        sb.Append('\n');
        foreach (var (name, text) in entries)
        {
            var lines = Wrap(text, Width - column);
            sb.Append("  ").Append(name.PadRight(column - 2)).Append(lines[0]).Append('\n');
            foreach (var line in lines.Skip(1)) sb.Append(' ', column).Append(line).Append('\n');
        }
        return sb.ToString();
    }

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
