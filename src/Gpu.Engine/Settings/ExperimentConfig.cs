using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Gpu.Engine.Settings;

/// <summary>One setting of an experiment file: which hyperparameter, where it was written, and its value(s).</summary>
internal sealed record ConfigEntry(Hyperparameter Key, string Where, IReadOnlyList<object> Values);

/// <summary>
/// An experiment file in YAML, in the layout of the NumPy code's <c>config_exp.yaml</c> (README):
/// <code>
/// Train:
///   batch_size: 64
///   learning_rate: 0.1
///   reg: 0.001        # L2
///   epochs: 10
///   momentum: 0.9
/// Model:
///   hidden_size: [256, 128]
/// </code>
/// <c>Train:</c> takes every training setting under its train flag's name ('_' or '-'), plus
/// learning_rate and reg; <c>Model:</c> takes the hidden widths (hidden_size, hidden_sizes, hidden or
/// layers: a number, a list or a comma string), activation, loss, init and bias_init. For
/// <c>gpu train</c> every key has one value. For <c>gpu search</c> (a grid file) a list gives the
/// choices of a grid axis (<see cref="Hyperparameter.IsGridAxis"/>); a width choice is a number, a
/// list of numbers or a comma string, and one string may hold several choices separated by ';'.
/// Every mistake (unreadable YAML, unknown section or key, a key in the wrong section or given twice,
/// a value of the wrong type or out of range) is one <see cref="UserError"/> naming the file, the line,
/// the key and what is accepted.
/// </summary>
internal sealed class ExperimentConfig
{
    public string Path { get; }
    public IReadOnlyList<ConfigEntry> Entries { get; }

    ExperimentConfig(string path, IReadOnlyList<ConfigEntry> entries) { Path = path; Entries = entries; }

    static readonly string[] Sections = ["Train", "Model"];

    /// <summary>Reads an experiment file (<paramref name="grid"/>: false for train, true for a search grid).</summary>
    public static ExperimentConfig Read(string path, bool grid)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserError($"--config {path}: cannot read it ({e.Message.TrimEnd('.')}); give a YAML file with Train: and Model: sections");
        }
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e)
        {
            throw new UserError($"{path} line {e.Start.Line}: not valid YAML ({Inner(e).Message.Split('\n')[0].TrimEnd('.')}); write 'Train:' and 'Model:' sections of 'key: value' lines");
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)   // YamlDotNet's own failures on some broken files
        {
            throw new UserError($"{path}: not valid YAML ({e.Message.Split('\n')[0].TrimEnd('.')}); write 'Train:' and 'Model:' sections of 'key: value' lines");
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new UserError($"{path}: expected one YAML mapping with Train: and Model: sections (e.g. 'Train:' then '  learning_rate: 0.1')");

        var entries = new List<ConfigEntry>();
        foreach (var (sectionNode, body) in root.Children)
        {
            string sectionText = Scalar(sectionNode) ?? "?";
            string? section = Sections.FirstOrDefault(s => string.Equals(s, sectionText, StringComparison.OrdinalIgnoreCase));
            if (section == null)
                throw new UserError($"{path} line {sectionNode.Start.Line}: unknown section '{sectionText}'; use Train: (training settings) and Model: (hidden sizes, activation, loss, init)");
            if (body is YamlScalarNode { Value: null or "" }) continue;   // an empty section
            if (body is not YamlMappingNode settings)
                throw new UserError($"{path} line {body.Start.Line}: section {section} must hold 'key: value' lines");
            foreach (var (keyNode, valueNode) in settings.Children)
                entries.Add(ReadEntry(path, section, keyNode, valueNode, grid, entries));
        }
        return new ExperimentConfig(path, entries);
    }

    static ConfigEntry ReadEntry(string path, string section, YamlNode keyNode, YamlNode valueNode, bool grid, List<ConfigEntry> seen)
    {
        string name = Scalar(keyNode) ?? "?";
        string where = $"{path} line {keyNode.Start.Line}: {section}.{name}";
        var key = Hyperparameter.ByName(name) ?? throw new UserError($"{where}: unknown key; {section} accepts {Accepted(section)}");
        if (key.Section != section)
            throw new UserError($"{where}: {name} belongs under {key.Section}:, not {section}:");
        if (seen.FirstOrDefault(e => e.Key == key) is { } earlier)
            throw new UserError($"{where}: given twice (also at {earlier.Where.Split(": ")[0]}); keep one");
        var values = grid ? GridValues(key, valueNode, where) : [OneValue(key, valueNode, where)];
        if (values.Count == 0) throw new UserError($"{where}: empty list; give at least one value ({key.Accepts})");
        if (values.Count > 1 && !key.IsGridAxis)
            throw new UserError($"{where}: a list of choices is only allowed for {string.Join(", ", Hyperparameter.All.Where(h => h.IsGridAxis).Select(h => h.Names[0]))}; give one value ({key.Accepts})");
        CheckDistinct(values, where);
        return new ConfigEntry(key, where, values);
    }

    /// <summary>One value for train: a scalar, or for the widths a list of numbers.</summary>
    static object OneValue(Hyperparameter key, YamlNode node, string where)
    {
        if (node is YamlSequenceNode list)
        {
            if (key.Flag != "layers")
                throw new UserError($"{where}: a list is a grid of choices, which 'gpu search --config' takes; train takes one value ({key.Accepts})");
            return key.Parse(Widths(list, where), where);
        }
        return key.Parse(ScalarValue(node, key, where), where);
    }

    /// <summary>The choices of a grid key: a list gives several; ';' separates width choices inside one string.</summary>
    static List<object> GridValues(Hyperparameter key, YamlNode node, string where)
    {
        if (node is YamlSequenceNode list)
            return list.Children.Select(item => key.Parse(item is YamlSequenceNode widths && key.Flag == "layers"
                ? Widths(widths, where) : ScalarValue(item, key, where), where)).ToList();
        string text = ScalarValue(node, key, where);
        return key.Flag == "layers" ? SplitChoices(text, ';', key, where) : [key.Parse(text, where)];
    }

    /// <summary>
    /// Splits a command-line or file list of choices ("0.01,0.1", or "256,128;512" for widths) and
    /// parses each; empty choices are refused. <paramref name="where"/> is null for the command line.
    /// </summary>
    public static List<object> SplitChoices(string text, char separator, Hyperparameter key, string? where)
    {
        var parts = text.Split(separator, StringSplitOptions.TrimEntries);
        string origin = where ?? $"--{key.Flag} '{text}'";
        if (parts.Any(p => p.Length == 0))
            throw new UserError($"{origin}: empty choice; separate the choices with '{separator}', each {key.Accepts}");
        var values = parts.Select(p => key.Parse(p, where)).ToList();
        CheckDistinct(values, origin);
        return values;
    }

    /// <summary>A choice listed twice would be a duplicate trial.</summary>
    static void CheckDistinct(List<object> values, string origin)
    {
        var dup = values.Select(Hyperparameter.Format).GroupBy(v => v).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new UserError($"{origin}: the value {dup.Key} is listed twice; list each choice once");
    }

    static string Widths(YamlSequenceNode list, string where) =>
        string.Join(",", list.Children.Select(c => Scalar(c) ?? throw new UserError($"{where}: a width list holds whole numbers, e.g. [256, 128]")));

    static string ScalarValue(YamlNode node, Hyperparameter key, string where)
    {
        string? text = Scalar(node);
        if (text == null || (text.Length == 0 && key.Flag != "layers"))
            throw new UserError($"{where}: no value; give {key.Accepts}");
        return text;
    }

    static string? Scalar(YamlNode node) => node is YamlScalarNode s ? s.Value ?? "" : null;

    static string Accepted(string section) =>
        string.Join(", ", Hyperparameter.All.Where(h => h.Section == section).SelectMany(h => h.Names));

    static Exception Inner(Exception e) => e.InnerException is YamlException inner ? Inner(inner) : e;

    /// <summary>
    /// The file's settings applied to <paramref name="options"/>, except those whose flag the command
    /// line gave (<paramref name="givenOnCommandLine"/> gets "--lr" etc.): flags override the file.
    /// In a grid file, only the keys with one value are applied (the axes are the search's).
    /// </summary>
    public TrainOptions ApplyTo(TrainOptions options, Func<string, bool> givenOnCommandLine)
    {
        foreach (var e in Entries)
            if (e.Values.Count == 1 && !givenOnCommandLine("--" + e.Key.Flag))
                options = e.Key.Apply(options, e.Values[0]);
        return options;
    }
}
