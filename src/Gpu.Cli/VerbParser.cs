using System.Globalization;
using System.Reflection;
using Gpu.Engine;

namespace Gpu.Cli;

/// <summary>
/// A verb's command line to the verb: its setting flags read with the setting table (<see cref="SettingFlags.Take"/>), every
/// other flag with the flag registry (<see cref="Flags"/>), the one word a verb may take without a flag. Each mistake is one line
/// naming the word or the flag: a word that belongs to no flag ("gpu train out" for "--output out"), an unknown flag, a flag
/// without a value (at the end, before another flag, or "--name="), an empty value (an unset shell variable), a value its rule
/// or type refuses, a flag given twice, a required flag missing.
/// </summary>
internal static class VerbParser
{
    /// <summary>The verb <paramref name="verb"/> with <paramref name="args"/> (those after the verb's name) bound; <paramref name="given"/>: the flags given, with dashes.</summary>
    public static IVerb Parse(Type verb, IReadOnlyList<string> args, out IReadOnlySet<string> given)
    {
        var settings = SettingFlags.Take(verb, args, out var rest);
        var instance = (IVerb)Activator.CreateInstance(verb)!;
        if (instance is SettingsVerb s) s.Settings = settings;
        var flags = VerbHelp.Options(verb).ToDictionary(o => o.Flag.Dashed);
        var word = VerbHelp.Word(verb);
        string name = VerbHelp.Name(verb), help = $"see 'gpu {name} --help'";
        var seen = new HashSet<string>();
        var taken = new List<string>();
        for (int i = 0; i < rest.Count; i++)
        {
            var (flag, inline) = Split(rest[i]);
            if (flag == "")
            {
                string text = rest[i];
                if (word != null && taken.Count == 0 && text.Length > 0) { taken.Add(text); continue; }
                throw new UserError(text.Length == 0
                    ? $"an empty word on the command line of 'gpu {name}' (an unset shell variable?); every value follows its flag, e.g. --output DIR; {help}"
                    : $"unexpected word '{text}': 'gpu {name}' takes {(word != null ? "no more words" : "no words of its own")}, every value follows its flag" +
                      (flags.ContainsKey("--output") ? $" (did you mean --output {text}?)" : "") + $"; {help}");
            }
            if (!flags.TryGetValue(flag, out var option)) throw new UserError($"unknown option '{flag}' for '{name}'; {help}");
            if (!seen.Add(flag)) throw new UserError($"option '{flag}' given more than once");
            if (option.Flag.IsSwitch)
            {
                if (inline != null) throw new UserError($"{flag} takes no value (it is a switch: give it or leave it out); {help}");
                option.Property.SetValue(instance, true);
                continue;
            }
            if (inline == "" || inline == null && (i + 1 == rest.Count || IsFlag(rest[i + 1])))
                throw new UserError($"{flag} needs a value ({option.Flag.Metavar}); {help}");
            string value = inline ?? rest[++i];
            if (value.Length == 0) throw new UserError(EmptyValue(flag, name));
            if (option.Flag.Rule?.Invoke(value) is string problem) throw new UserError(problem);
            option.Property.SetValue(instance, Convert(value, option.Property.PropertyType, flag, help));
        }
        foreach (var (flag, option) in flags.Where(f => !seen.Contains(f.Key)))
        {
            if (option.Required) throw new UserError($"option '{flag}' is required; {help}");
            if (option.Flag.Default is { } d) option.Property.SetValue(instance, System.Convert.ChangeType(d, Nullable.GetUnderlyingType(option.Property.PropertyType) ?? option.Property.PropertyType, CultureInfo.InvariantCulture));
        }
        if (word != null && taken.Count == 1) word.SetValue(instance, taken[0]);
        given = seen.Concat(settings.GivenFlags).ToHashSet();
        return instance;
    }

    /// <summary>A value as the property's type: text, a whole number, a number.</summary>
    static object Convert(string value, Type type, string flag, string help)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        if (t == typeof(string)) return value;
        if (t == typeof(int))
            return int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n : throw new UserError($"{flag} {value}: give a whole number; {help}");
        if (t == typeof(double))
            return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double x) && double.IsFinite(x) ? x : throw new UserError($"{flag} {value}: give a number; {help}");
        throw new InvalidOperationException($"{flag}: no conversion to {t.Name}");
    }

    /// <summary>"--output got an empty value": what "--output ''" or "--output $UNSET" gives.</summary>
    public static string EmptyValue(string flag, string verb) =>
        $"{flag} got an empty value (an unset shell variable?); give a value or leave {flag} out; see 'gpu {verb} --help'";

    /// <summary>"--name=value" to ("--name", "value"), "--name" to ("--name", null), a word to ("", null).</summary>
    public static (string Name, string? Value) Split(string arg)
    {
        if (!IsFlag(arg)) return ("", null);
        int eq = arg.IndexOf('=');
        return eq < 0 ? (arg, null) : (arg[..eq], arg[(eq + 1)..]);
    }

    /// <summary>"--lr" is a flag; "-0.5" and "--" are not.</summary>
    public static bool IsFlag(string arg) => arg.Length > 2 && arg.StartsWith("--");
}
