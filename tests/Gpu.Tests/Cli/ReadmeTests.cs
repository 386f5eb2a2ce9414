using System.Text.RegularExpressions;
using Gpu.Cli;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Cli;

/// <summary>
/// Issue 22, case 8: what a newcomer hit in the README. The quick start comes before the packaging; the tool
/// install says how to get ~/.dotnet/tools onto the PATH; the publish recipe makes ~/.local/bin before linking
/// into it; the YAML Train: section's claim names exactly what it does not take.
/// </summary>
public sealed class ReadmeTests
{
    static readonly string Readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));

    [Test]
    public void Quick_start_comes_before_install() =>
        Assert.That(Readme.IndexOf("\n## Quick start\n", StringComparison.Ordinal), Is.LessThan(Readme.IndexOf("\n## Install\n", StringComparison.Ordinal)).And.GreaterThan(0));

    [Test]
    public void The_tool_install_puts_its_folder_on_the_path()
    {
        int install = Readme.IndexOf("dotnet tool install -g", StringComparison.Ordinal);
        Assert.That(install, Is.GreaterThan(0));
        Assert.That(Readme.IndexOf("export PATH=\"$PATH:$HOME/.dotnet/tools\"", install, StringComparison.Ordinal), Is.GreaterThan(install));
    }

    [Test]
    public void Every_link_into_local_bin_makes_the_folder_first()
    {
        var links = Regex.Matches(Readme, @"^.*ln -s\S* \S+ ~/\.local/bin/.*$", RegexOptions.Multiline);
        Assert.That(links, Is.Not.Empty);
        foreach (Match m in links)
            Assert.That(m.Value.IndexOf("mkdir -p ~/.local/bin", StringComparison.Ordinal), Is.InRange(0, m.Value.IndexOf("ln -s", StringComparison.Ordinal)), m.Value);
    }

    [Test]
    public void The_yaml_train_section_takes_the_setting_flags_and_not_the_run_flags()
    {
        var claim = Regex.Match(Readme, @"`Train:` also takes every other training setting.*?stay on the command line", RegexOptions.Singleline);
        Assert.That(claim.Success, "README states what Train: takes");
        var named = Regex.Matches(claim.Value, @"`(--[a-z-]+)`").Select(m => m.Groups[1].Value).ToList();
        var settings = SettingFlags.Of(typeof(TrainVerb)).Select(f => f.Name).ToHashSet();
        var own = VerbHelp.Options(typeof(TrainVerb)).Select(o => o.Flag.Dashed).ToList();
        foreach (var flag in named) Assert.That(settings, Does.Not.Contain(flag), $"{flag} is named as no key, so it must be no setting");
        // every train flag that is no setting (no YAML key) is named, except the --config flag itself and the file flags, summed up as "the file flags"
        foreach (var flag in own.Where(f => f != "--config" && !f.StartsWith("--train-") && !f.StartsWith("--test-")))
            Assert.That(named, Does.Contain(flag), $"train {flag} is not a Train: key; the README must say so");
        foreach (var h in Hyperparameter.All.Where(h => h.Section == "Train" && h.OnCommandLine))
            Assert.That(settings, Does.Contain("--" + h.Flag), $"Train: key {h.Names[0]} is a train flag");
    }
}
