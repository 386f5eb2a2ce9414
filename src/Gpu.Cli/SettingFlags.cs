using System.Reflection;
using Gpu.Engine.Settings;
using Gpu.Engine;

namespace Gpu.Cli;

/// <summary>
/// Which settings of the setting table (<see cref="Hyperparameter.All"/>) a verb takes as flags: the
/// named ones, or every setting users give when none is named. With <see cref="GridAxes"/> the grid
/// axes are taken too, each as a list of choices (<c>gpu search</c>).
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
internal sealed class SettingsAttribute(params string[] flags) : Attribute
{
    public IReadOnlyList<string> Flags { get; } = flags;
    public bool GridAxes { get; set; }
}

/// <summary>A verb whose command line may hold setting flags: <see cref="Program"/> reads them into <see cref="Settings"/>.</summary>
internal abstract class SettingsVerb
{
    /// <summary>The setting flags given on the command line, parsed with the setting table.</summary>
    public SettingFlags Settings { get; set; } = SettingFlags.None;
}

/// <summary>
/// The setting flags of one command line. They never reach CommandLineParser: their names, defaults,
/// help texts, parsers and range rules all come from the setting table, so each is stated once.
/// <see cref="Take"/> reads them out of the arguments (a flag without a value, or given twice, is an
/// error) and hands the rest on; <see cref="VerbHelp"/> lists them in the verb's help.
/// </summary>
internal sealed class SettingFlags
{
    /// <summary>One setting flag of a verb: the setting, and whether it takes a list of choices (a grid axis of search).</summary>
    public sealed record Flag(Hyperparameter Setting, bool Choices)
    {
        public string Name => "--" + Setting.Flag;
        /// <summary>What separates the choices: ';' between width lists, ',' otherwise.</summary>
        public char Separator => Setting.Flag == "layers" ? ';' : ',';
        public string Help => Choices
            ? $"{Setting.Help} A grid axis: give several values separated by '{Separator}' to try each."
            : Setting.Help;
    }

    public static readonly SettingFlags None = new();

    readonly List<(Hyperparameter Setting, object Value)> values = [];
    readonly Dictionary<string, string> choices = [];

    /// <summary>The setting flags <paramref name="verb"/> takes, in table order.</summary>
    public static IReadOnlyList<Flag> Of(Type verb)
    {
        if (verb.GetCustomAttribute<SettingsAttribute>() is not { } a) return [];
        var named = a.Flags.Select(Hyperparameter.ByFlag).ToHashSet();
        return Hyperparameter.All
            .Where(h => h.OnCommandLine && (named.Contains(h) || (a.GridAxes && h.IsGridAxis) || (a.Flags.Count == 0 && !a.GridAxes)))
            .Select(h => new Flag(h, a.GridAxes && h.IsGridAxis))
            .ToList();
    }

    /// <summary>
    /// Reads the setting flags of <paramref name="verb"/> out of <paramref name="args"/> (the arguments
    /// after the verb): "--lr 0.1" or "--lr=0.1". Single values are parsed and range-checked at once;
    /// lists of choices are kept as text for the grid. Returns the other arguments in <paramref name="rest"/>.
    /// </summary>
    public static SettingFlags Take(Type verb, IReadOnlyList<string> args, out List<string> rest)
    {
        var flags = Of(verb).ToDictionary(f => f.Name);
        var taken = new SettingFlags();
        var seen = new HashSet<string>();
        rest = [];
        for (int i = 0; i < args.Count; i++)
        {
            var (name, inline) = VerbParser.Split(args[i]);
            if (!flags.TryGetValue(name, out var flag)) { rest.Add(args[i]); continue; }
            string text = inline is { Length: > 0 } ? inline
                : inline == null && i + 1 < args.Count && !VerbParser.IsFlag(args[i + 1]) ? args[++i]
                : throw new UserError($"{name} needs a value (e.g. {name} {flag.Setting.DefaultText}); see 'gpu {VerbHelp.Name(verb)} --help'");
            if (text.Length == 0) throw new UserError(VerbParser.EmptyValue(name, VerbHelp.Name(verb)));
            if (!seen.Add(name)) throw new UserError($"option '{name}' given more than once");
            if (flag.Choices) taken.choices[flag.Setting.Flag] = text;
            else taken.values.Add((flag.Setting, flag.Setting.Parse(text, where: null)));
        }
        return taken;
    }

    /// <summary>The setting flags given, with dashes: "--lr".</summary>
    public IEnumerable<string> GivenFlags => values.Select(v => "--" + v.Setting.Flag).Concat(choices.Keys.Select(k => "--" + k));

    /// <summary>Whether the command line gave the setting with this flag (without dashes).</summary>
    public bool Given(string flag) => values.Any(v => v.Setting.Flag == flag) || choices.ContainsKey(flag);

    /// <summary><paramref name="options"/> with every single-valued setting flag applied.</summary>
    public TrainOptions ApplyTo(TrainOptions options)
    {
        foreach (var (setting, value) in values) options = setting.Apply(options, value);
        return options;
    }

    /// <summary>The lists of choices given for grid axes: flag without dashes to text, e.g. "lr" to "0.01,0.1".</summary>
    public IReadOnlyDictionary<string, string> Choices => choices;
}
