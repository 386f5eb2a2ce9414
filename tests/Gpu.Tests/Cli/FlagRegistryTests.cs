using System.Reflection;
using Gpu.Cli;

namespace Gpu.Tests.Cli;

/// <summary>
/// Issue 22, case 7: every flag of every verb comes from one of two tables, the setting table (the settings) and the flag
/// registry (<see cref="Flags"/>, the rest): the verbs declare no flag of their own, and one command-line reader binds them all.
/// </summary>
public sealed class FlagRegistryTests
{
    static IEnumerable<PropertyInfo> VerbProperties() =>
        Program.VerbTypes.SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance)).Distinct();

    [Test]
    public void No_verb_declares_a_flag_outside_the_registry()
    {
        var own = typeof(Program).Assembly.GetTypes()
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Where(p => p.GetCustomAttributes().Any(a => a.GetType().Namespace == "CommandLine" && a.GetType().Name is "OptionAttribute" or "ValueAttribute"))
            .Select(p => $"{p.DeclaringType!.Name}.{p.Name}").ToList();
        Assert.That(own, Is.Empty, "flags declared with CommandLineParser's attributes instead of [Flag(nameof(Flags.X))]");
    }

    [Test]
    public void Every_registered_flag_is_taken_by_a_verb_and_named_once_per_verb()
    {
        var used = VerbProperties().Select(p => p.GetCustomAttribute<FlagAttribute>()?.Flag).OfType<CliFlag>().ToHashSet();
        Assert.That(Flags.All.Where(f => !used.Contains(f)).Select(f => f.Name), Is.Empty, "registry entries no verb takes");
        foreach (var verb in Program.VerbTypes)
        {
            var names = VerbHelp.Options(verb).Select(o => o.Flag.Name).Concat(SettingFlags.Of(verb).Select(f => f.Setting.Flag)).ToList();
            Assert.That(names, Is.Unique, $"{VerbHelp.Name(verb)}: a flag named twice (a setting and a flag of its own?)");
        }
    }

    [Test]
    public void A_flag_of_several_verbs_means_one_thing_unless_the_registry_says_otherwise()
    {
        // --device, --pixel-range: one entry each, shared by every verb that takes them
        var device = Program.VerbTypes.SelectMany(VerbHelp.Options).Where(o => o.Flag.Name == "pixel-range").Select(o => o.Flag).Distinct();
        Assert.That(device.Count(), Is.EqualTo(1));
        foreach (var f in Flags.All)
        {
            Assert.That(f.Help, Does.EndWith(".").Or.EndWith(")"), $"--{f.Name}: help is a sentence");
            Assert.That(f.IsSwitch ? f.Default : null, Is.Null, $"--{f.Name}: a switch has no default");
        }
    }

    [Test]
    public void Registry_rules_and_types_refuse_bad_values_in_one_line()
    {
        CliRun.AssertOneLineError(CliRun.Run("predict", "--model", "m", "--input", "x", "--limit", "-1"), "--limit -1: give a whole number >= 0");
        CliRun.AssertOneLineError(CliRun.Run("weights", "--model", "m", "--count", "many"), "--count many: give a whole number");
        CliRun.AssertOneLineError(CliRun.Run("gradcheck", "--threshold", "tiny"), "--threshold tiny: give a number");
        CliRun.AssertOneLineError(CliRun.Run("train", "--verbose=yes"), "--verbose takes no value");
        CliRun.AssertOneLineError(CliRun.Run("eval", "--device", "cpu"), "option '--model' is required");
        CliRun.AssertOneLineError(CliRun.Run("train", "--pixel-range", "0-9"), "--pixel-range 0-9: give 0-255");
    }
}
