using System.Diagnostics;

namespace Gpu.Tests.Cli;

/// <summary>
/// The GPU kit fits what a device session carries: every tracked file (data/ included) plus publish/kit, at most 64 MiB
/// (benchmarks/gpu/README.md). Measured where benchmarks/gpu/publish.sh has made the kit; skipped, saying so, elsewhere
/// (CI does not publish).
/// </summary>
public sealed class KitSizeTests
{
    const long Limit = 64L * 1024 * 1024;

    [Test]
    public void The_kit_and_the_tracked_tree_fit_in_64_MiB()
    {
        var kit = Path.Combine(Repo.Root, "publish", "kit");
        if (!File.Exists(Path.Combine(kit, "Gpu.Benchmarks.xz")))
            Assert.Ignore("skipped: no publish/kit/Gpu.Benchmarks.xz here (CI does not publish; bash benchmarks/gpu/publish.sh makes it)");
        var files = TrackedFiles();
        if (files == null) Assert.Ignore("skipped: git cannot list the tracked files here");
        long tracked = files!.Select(f => new FileInfo(Path.Combine(Repo.Root, f))).Where(f => f.Exists).Sum(f => f.Length);
        long carried = new DirectoryInfo(kit).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        Assert.That(tracked + carried, Is.LessThan(Limit),
            $"tracked tree {tracked:N0} + publish/kit {carried:N0} bytes: over the 64 MiB a device session may carry");
        TestContext.Out.WriteLine($"tracked tree {tracked:N0} + publish/kit {carried:N0} = {tracked + carried:N0} bytes, {(Limit - tracked - carried) / 1048576.0:F1} MiB to spare");
    }

    static string[]? TrackedFiles()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("git", ["ls-files", "-z"])
            {
                WorkingDirectory = Repo.Root, RedirectStandardOutput = true, RedirectStandardError = true,
            })!;
            var text = p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            p.WaitForExit();
            return p.ExitCode == 0 ? text.Split('\0', StringSplitOptions.RemoveEmptyEntries) : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
