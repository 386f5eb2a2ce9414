using System.Diagnostics;

namespace Gpu.Tests.Cli;

/// <summary>
/// What the tests of the GPU kit's scripts (benchmarks/gpu/first-light.sh, devices-light.sh) share: stand-in programs written into
/// a folder, one run of a script with its environment, and the rows of the summary it writes.
/// </summary>
internal static class KitScript
{
    /// <summary>Writes an executable stand-in <paramref name="name"/> holding <paramref name="text"/> into <paramref name="dir"/>; returns its path.</summary>
    public static string Stub(string dir, string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text.Replace("\r\n", "\n") + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    /// <summary>
    /// Runs benchmarks/gpu/<paramref name="script"/> in <paramref name="dir"/> with OUT=<paramref name="output"/>, STUB_CALLS (a fresh
    /// calls.txt the stand-ins append to), <paramref name="stand"/> (stand-ins and settings; null removes a variable) and then
    /// <paramref name="env"/> (a test's overrides, the same way); returns the exit code, summary.md and the calls.
    /// </summary>
    public static (int Code, string Summary, string Calls) Run(string script, string dir, string output,
        IEnumerable<(string Key, string? Value)> stand, IEnumerable<(string Key, string? Value)> env)
    {
        var calls = Path.Combine(dir, "calls.txt");
        File.WriteAllText(calls, "");
        var start = new ProcessStartInfo("bash", [Path.Combine(Repo.Root, "benchmarks", "gpu", script)])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir,
        };
        start.Environment["OUT"] = output;
        start.Environment["STUB_CALLS"] = calls;
        foreach (var (k, v) in stand.Concat(env))
            if (v == null) start.Environment.Remove(k); else start.Environment[k] = v;
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        stderr.Wait();
        p.WaitForExit();
        Assert.That(File.Exists(Path.Combine(output, "results.txt")), "results.txt written");
        return (p.ExitCode, File.ReadAllText(Path.Combine(output, "summary.md")), File.ReadAllText(calls));
    }

    /// <summary>The summary's row of <paramref name="part"/>.</summary>
    public static string Row(string summary, string part) => summary.Split('\n').Single(l => l.StartsWith($"| {part} |"));

    /// <summary>The part names of the summary's first table, in order.</summary>
    public static List<string> PartRows(string summary) =>
        summary.Split('\n').SkipWhile(l => !l.StartsWith("| part |")).Skip(2).TakeWhile(l => l.StartsWith("| "))
            .Select(l => l.Split(" | ")[0].TrimStart('|', ' ')).ToList();
}
