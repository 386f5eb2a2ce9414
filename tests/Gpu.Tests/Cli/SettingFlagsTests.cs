using System.Reflection;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CommandLine;
using Gpu.Cli;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// The setting flags come from the setting table: help shows TrainOptions' defaults, a flag needs a value,
/// every JSON file the program writes holds values the flags' parsers read, and README's option table agrees.
/// </summary>
public sealed class SettingFlagsTests : TempFolderTest
{
    static readonly string[] SettingVerbs = ["train", "landscape", "gradcheck", "search"];

    /// <summary>"--lr" to the text after "(Default: " on its help line.</summary>
    static Dictionary<string, string> HelpDefaults(string help) =>
        Regex.Matches(help, @"^  (--[a-z0-9-]+) +(?:Required\. )?(?:\(Default: ([^)]*)\))?", RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Success ? m.Groups[2].Value : "");

    static Type VerbType(string verb) => typeof(TrainVerb).Assembly.GetTypes().Single(t => t.GetCustomAttributes(typeof(VerbAttribute), false).OfType<VerbAttribute>().Any(v => v.Name == verb));

    [TestCaseSource(nameof(SettingVerbs))]
    public void Help_lists_every_setting_flag_with_the_TrainOptions_default(string verb)
    {
        var r = Run(verb, "--help");
        Assert.That(r.Code, Is.Zero, r.Err);
        var defaults = HelpDefaults(r.Out);
        var flags = SettingFlags.Of(VerbType(verb));
        Assert.That(flags, Is.Not.Empty);
        foreach (var f in flags)
        {
            Assert.That(defaults.ContainsKey(f.Name), $"{verb} --help lists {f.Name}");
            Assert.That(f.Setting.Parse(defaults[f.Name], where: null), Is.EqualTo(f.Setting.Default), $"{verb} --help default of {f.Name} is TrainOptions' default");
            Assert.That(r.Out, Does.Contain(f.Setting.Help.Split(' ')[0]), "the table's help text");
        }
        // every other flag a verb takes is listed, with the flag registry's default
        foreach (var (_, f, _) in VerbHelp.Options(VerbType(verb)))
            Assert.That(defaults[f.Dashed], Is.EqualTo(f.Default is { } d ? Convert.ToString(d, CultureInfo.InvariantCulture) : ""), f.Name);
    }

    [Test]
    public void Train_takes_every_user_setting_of_the_table_and_help_shows_words()
    {
        var flags = SettingFlags.Of(typeof(TrainVerb)).Select(f => f.Setting);
        Assert.That(flags, Is.EquivalentTo(Hyperparameter.All.Where(h => h.OnCommandLine)));
        var help = Run("train", "--help").Out;
        Assert.That(help, Does.Contain("(Default: softmax-ce)").And.Contain("(Default: he)").And.Contain("(Default: cosine)")
            .And.Contain("(Default: loss)").And.Contain("(Default: auto)"));
        Assert.That(help, Does.Not.Contain("Default: Cosine").And.Not.Contain("Default: Loss").And.Not.Contain("Default: Auto"));
        Assert.That(help.Split('\n').Skip(1).Max(l => l.Length), Is.LessThanOrEqualTo(80), "option lines fit 80 columns");
    }

    [TestCase(new[] { "train", "--epochs" }, "--epochs needs a value (e.g. --epochs 10)")]
    [TestCase(new[] { "train", "--device", "cpu", "--epochs", "--lr", "0.1" }, "--epochs needs a value")]
    [TestCase(new[] { "train", "--lr", "0.1", "--layers" }, "--layers needs a value")]
    [TestCase(new[] { "train", "--limit" }, "--limit needs a value")]
    [TestCase(new[] { "train", "--data", "--limit", "5" }, "--data needs a value")]
    [TestCase(new[] { "search", "--output" }, "--output needs a value")]
    [TestCase(new[] { "search", "--output", "x", "--lr" }, "--lr needs a value")]
    [TestCase(new[] { "gradcheck", "--seed" }, "--seed needs a value")]
    [TestCase(new[] { "eval", "--model" }, "--model needs a value")]
    [TestCase(new[] { "train", "--lr", "0.1", "--lr=0.2" }, "option '--lr' given more than once")]
    [TestCase(new[] { "train", "--lr=fast" }, "--lr: 'fast' is not valid; give a positive number")]
    [TestCase(new[] { "train", "--loss", "SoftmaxCrossEntropy" }, "--loss: 'SoftmaxCrossEntropy' is not valid; give softmax-ce or sigmoid-sse")]
    [TestCase(new[] { "landscape", "--dropout", "0.5" }, "unknown option '--dropout'")]
    public void Flag_errors_are_one_line_with_exit_code_2(string[] args, string message) => AssertOneLineError(Run(args), message, 2);

    [Test]
    public void Flags_with_equals_and_negative_values_reach_the_table()
    {
        var r = Run("train", "--lr=-0.5");
        AssertOneLineError(r, "--lr -0.5: give a positive number", 2);
        var o = Path.Combine(dir, "out");
        var ok = Run("train", "--data", Repo.FashionMnist, "--limit", "300", "--layers=8", "--epochs", "1", "--schedule=constant", "--init", "Xavier",
            "--device", "cpu", "--output", o);
        Assert.That(ok.Code, Is.Zero, ok.Err);
        Assert.That(ok.Out, Does.Contain("network: 784-8-10").And.Contain("constant schedule"));
        var saved = SavedModel.Read(o).Options!;
        Assert.That((saved.Schedule, saved.Init), Is.EqualTo((LrSchedule.Constant, InitKind.Glorot)));
    }

    // ---- every JSON the program writes, read back through the flags' parsers ----

    /// <summary>A JSON value as the text a flag would get: strings as they are, numbers as written, width lists joined by ','.</summary>
    static string FlagText(JsonNode node) => node switch
    {
        JsonArray a => string.Join(",", a.Select(n => n!.ToJsonString())),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => node.ToJsonString(),
    };

    /// <summary>Parses <paramref name="node"/> with <paramref name="setting"/>'s flag parser; a string must be the canonical text (a word, not an enum name).</summary>
    static void ParsesAsFlag(Hyperparameter setting, JsonNode? node, string where)
    {
        Assert.That(node, Is.Not.Null, where);
        string text = FlagText(node!);
        object value = null!;
        Assert.That(() => value = setting.Parse(text, where), Throws.Nothing, $"{where}: '{text}' through --{setting.Flag}'s parser");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String)
            Assert.That(text, Is.EqualTo(setting.Name(value)), $"{where}: the canonical word");
    }

    /// <summary>A hyperparameter object: every key a setting's JSON key, every setting present, every value a flag's text.</summary>
    static void HyperparametersParse(JsonNode? h, string where)
    {
        Assert.That(h, Is.InstanceOf<JsonObject>(), where);
        var keys = h!.AsObject().Select(kv => kv.Key).ToList();
        Assert.That(keys, Is.EquivalentTo(Hyperparameter.All.Select(s => s.JsonKey)), $"{where}: one key per setting");
        foreach (var s in Hyperparameter.All) ParsesAsFlag(s, h[s.JsonKey], $"{where}.{s.JsonKey}");
    }

    /// <summary>A grid object of search.json or best.json: keys are search.csv's columns (the flag with '_').</summary>
    static void GridSettingsParse(JsonNode? g, string where, bool lists)
    {
        Assert.That(g, Is.InstanceOf<JsonObject>(), where);
        foreach (var (column, value) in g!.AsObject())
        {
            var s = Hyperparameter.ByName(column);
            Assert.That(s, Is.Not.Null, $"{where}.{column} names a setting");
            Assert.That(s!.IsGridAxis, $"{where}.{column} is a grid axis");
            IEnumerable<JsonNode?> items = lists ? value!.AsArray() : new[] { value };
            foreach (var item in items) ParsesAsFlag(s, item, $"{where}.{column}");
        }
    }

    static JsonNode ReadJson(string path) => JsonNode.Parse(File.ReadAllText(path))!;

    static void ModelJsonParses(string folder)
    {
        var m = ReadJson(Path.Combine(folder, "model.json"));
        ParsesAsFlag(Hyperparameter.ByFlag("activation"), m["activation"], "model.json activation");
        ParsesAsFlag(Hyperparameter.ByFlag("loss"), m["loss"], "model.json loss");
        ParsesAsFlag(Hyperparameter.ByFlag("seed"), m["seed"], "model.json seed");
        ParsesAsFlag(Hyperparameter.ByFlag("data-path"), m["data"]!["data_path"], "model.json data.data_path");
        HyperparametersParse(m["hyperparameters"], $"{folder}/model.json hyperparameters");
    }

    [Test]
    public void Every_json_train_and_search_write_holds_values_the_flags_parse()
    {
        var train = Path.Combine(dir, "train");
        var r = Run("train", "--data", Repo.FashionMnist, "--limit", "400", "--layers", "8", "--epochs", "2", "--patience", "1", "--stop-on", "accuracy",
            "--loss", "sse", "--init", "kaiming", "--optimizer", "adamw", "--schedule", "step", "--data-path", "stream", "--device", "cpu", "--output", train);
        Assert.That(r.Code, Is.Zero, r.Err);
        ModelJsonParses(train);
        HyperparametersParse(ReadJson(Path.Combine(train, "checkpoint", "state.json"))["hyperparameters"], "checkpoint/state.json hyperparameters");
        var model = ReadJson(Path.Combine(train, "model.json"));
        Assert.That((string?)model["hyperparameters"]!["loss"], Is.EqualTo("sigmoid-sse"));
        Assert.That((string?)model["hyperparameters"]!["init"], Is.EqualTo("he"));
        Assert.That((string?)model["hyperparameters"]!["data_path"], Is.EqualTo("stream"));
        Assert.That((string?)model["hyperparameters"]!["stop_on"], Is.EqualTo("accuracy"));

        var search = Path.Combine(dir, "search");
        r = Run("search", "--data", Repo.FashionMnist, "--limit", "400", "--layers", "8;6-4", "--epochs", "1", "--device", "cpu", "--output", search);
        Assert.That(r.Code, Is.Zero, r.Err);
        var settings = ReadJson(Path.Combine(search, "search.json"));
        HyperparametersParse(settings["shared"], "search.json shared");
        GridSettingsParse(settings["grid"], "search.json grid", lists: true);
        var best = ReadJson(Path.Combine(search, "best.json"));
        HyperparametersParse(best["hyperparameters"], "best.json hyperparameters");
        GridSettingsParse(best["best"]!["settings"], "best.json best.settings", lists: false);
        ModelJsonParses(Path.Combine(search, "best"));
        // search.csv's settings cells, and the widths of progress lines, are flag text too
        var header = File.ReadLines(Path.Combine(search, "search.csv")).First().Split(',');
        foreach (var row in File.ReadLines(Path.Combine(search, "search.csv")).Skip(1).Select(l => l.Split(',')))
            for (int i = 0; i < header.Length && Hyperparameter.ByName(header[i]) is { IsGridAxis: true } s; i++)
                Assert.That(() => s.Parse(row[i], null), Throws.Nothing, $"search.csv {header[i]} '{row[i]}'");
    }

    [Test]
    public void Folders_written_with_enum_names_by_earlier_versions_resume_and_rerun()
    {
        var output = Path.Combine(dir, "out");
        var r = Run("train", "--data", Repo.FashionMnist, "--limit", "300", "--layers", "8", "--epochs", "1", "--device", "cpu", "--output", output);
        Assert.That(r.Code, Is.Zero, r.Err);
        // rewrite the files as 0.1 wrote them: enum member names
        foreach (var file in new[] { Path.Combine(output, "checkpoint", "state.json"), Path.Combine(output, "model.json") })
        {
            var json = ReadJson(file);
            var h = json["hyperparameters"]!;
            (h["loss"], h["init"], h["data_path"], h["stop_on"]) = ("SoftmaxCrossEntropy", "He", "Resident", "Loss");
            File.WriteAllText(file, json.ToJsonString());
        }
        File.Delete(Path.Combine(output, "model.sha256"));   // 0.1 wrote no digests: its folders are read unchecked
        File.Delete(Path.Combine(output, "checkpoint", "state.sha256"));
        Assert.That(SavedModel.Read(output).Options!.Loss, Is.EqualTo(LossKind.SoftmaxCrossEntropy));
        var resumed = Run("train", "--resume", output, "--epochs", "2");
        Assert.That(resumed.Code, Is.Zero, resumed.Err);
        Assert.That((string?)ReadJson(Path.Combine(output, "checkpoint", "state.json"))["hyperparameters"]!["loss"], Is.EqualTo("softmax-ce"), "written back as words");

        var search = Path.Combine(dir, "search");
        string[] grid = ["search", "--data", Repo.FashionMnist, "--limit", "300", "--layers", "8", "--epochs", "1", "--device", "cpu", "--output", search];
        Assert.That(Run(grid).Code, Is.Zero);
        var settingsPath = Path.Combine(search, "search.json");
        var settings = ReadJson(settingsPath);
        (settings["shared"]!["loss"], settings["shared"]!["init"]) = ("SoftmaxCrossEntropy", "He");
        File.WriteAllText(settingsPath, settings.ToJsonString());
        var again = Run(grid);
        Assert.That(again.Code, Is.Zero, again.Err);
        Assert.That(again.Out, Does.Contain("skipping them, 0 to run"), "the earlier search's rows still count");
    }

    // ---- README ----

    [Test]
    public void Readme_train_option_table_lists_every_flag_with_its_default()
    {
        var lines = File.ReadAllLines(Path.Combine(Repo.Root, "README.md"));
        int start = Array.FindIndex(lines, l => l.StartsWith("`train` options"));
        Assert.That(start, Is.GreaterThan(0), "README has the train option table");
        var rows = lines.Skip(start + 1).SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|')).Skip(2).ToList();
        var readme = new Dictionary<string, string>();
        foreach (var row in rows)
        {
            var cells = row.Split(" | ");
            var flags = Regex.Matches(cells[0], "`(--[a-z0-9-]+)").Select(m => m.Groups[1].Value).ToList();
            var defaults = cells[1].Trim() == "none" ? flags.Select(_ => "none").ToList() : Regex.Matches(cells[1], "`([^`]*)`").Select(m => m.Groups[1].Value).ToList();
            Assert.That(defaults, Has.Count.EqualTo(flags.Count), $"README row {row[..Math.Min(row.Length, 40)]}: a default per flag");
            for (int i = 0; i < flags.Count; i++) readme[flags[i]] = defaults[i];
        }

        var settings = SettingFlags.Of(typeof(TrainVerb));
        var options = VerbHelp.Options(typeof(TrainVerb)).Select(o => o.Flag).ToList();
        Assert.That(readme.Keys, Is.EquivalentTo(settings.Select(f => f.Name).Concat(options.Select(o => o.Dashed))),
            "README's train table lists exactly the flags of 'gpu train'");
        foreach (var f in settings)
            Assert.That(f.Setting.Parse(readme[f.Name], where: null), Is.EqualTo(f.Setting.Default), $"README default of {f.Name}");
        foreach (var o in options)
            Assert.That(readme[o.Dashed], Is.EqualTo(o.Default is { } d ? Convert.ToString(d, CultureInfo.InvariantCulture) : "none"), $"README default of {o.Dashed}");
    }
}

/// <summary>
/// Issue 22, cases 1 and 2: a word that belongs to no flag ("gpu train out" for "--output out") and an empty value
/// ("--output ''", what an unset $OUT gives) are one line and exit code 2 on every verb, for every flag that takes a
/// value, before anything runs (on old main: a full default training that saved nothing, or "internal error: ArgumentException").
/// </summary>
public sealed class StrayWordTests : TempFolderTest
{
    /// <summary>Every verb as it is typed ("search merge" is two words), with its positional values ("search merge DIR").</summary>
    static IEnumerable<string[]> Verbs() => Program.VerbTypes.Select(t => VerbHelp.Name(t).Split(' ').Concat(VerbHelp.Word(t)?.GetCustomAttribute<WordAttribute>() is { } w ? [w.Metavar] : []).ToArray());

    /// <summary>(verb words, flag) for every flag of every verb that takes a value: the setting flags and the verb's own options.</summary>
    static IEnumerable<TestCaseData> ValueFlags() => Program.VerbTypes.SelectMany(t =>
        SettingFlags.Of(t).Select(f => f.Name)
            .Concat(VerbHelp.Options(t).Where(o => !o.Flag.IsSwitch).Select(o => o.Flag.Dashed))
            .Select(flag => new TestCaseData(VerbHelp.Name(t).Split(' '), flag).SetName($"Empty_value_refused({VerbHelp.Name(t)} {flag})")));

    [TestCaseSource(nameof(Verbs))]
    public void A_stray_word_is_refused(string[] verb)
    {
        var r = Run([.. verb, "out"]);
        AssertOneLineError(r, "unexpected word 'out'", 2);
        Assert.That(r.Out, Is.Empty, "nothing ran");
        var empty = Run([.. verb, ""]);
        AssertOneLineError(empty, "an empty word", 2);
    }

    [Test]
    public void A_stray_word_after_flags_is_refused_and_suggests_the_output_flag()
    {
        var r = Run("train", "--epochs", "1", "out");
        AssertOneLineError(r, "unexpected word 'out'", 2);
        Assert.That(r.Err, Does.Contain("did you mean --output out?"));
        Assert.That(Directory.Exists(Path.Combine(Environment.CurrentDirectory, "out")), Is.False);
        AssertOneLineError(Run("train", "--resume", Path.Combine(dir, "run"), "junk"), "unexpected word 'junk'", 2);
    }

    [TestCaseSource(nameof(ValueFlags))]
    public void Empty_value_refused(string[] verb, string flag)
    {
        var r = Run([.. verb, flag, ""]);
        AssertOneLineError(r, $"{flag} got an empty value", 2);
        Assert.That(r.Out, Is.Empty, "nothing ran");
    }
}
