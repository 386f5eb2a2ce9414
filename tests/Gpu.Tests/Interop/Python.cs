using System.Diagnostics;

namespace Gpu.Tests.Interop;

/// <summary>
/// The Python 3 with PyTorch and NumPy (Debian's python3-torch and python3-numpy, which <c>.ci/install-python</c>
/// installs) that the interop tests run: /usr/bin/python3 first (a pyenv shim on the PATH may lack them), then
/// python3 on the PATH. Without one the tests are ignored, unless GPU_REQUIRE_TORCH=1 (CI), where they fail.
/// </summary>
public static class Python
{
    static readonly Lazy<string?> found = new(() =>
    {
        foreach (var exe in new[] { "/usr/bin/python3", "python3" })
            if (Run(exe, ["-c", "import torch, numpy"], TimeSpan.FromSeconds(60)).Code == 0) return exe;
        return null;
    });

    /// <summary>The interpreter; ignores or fails the calling test when there is none.</summary>
    public static string Require()
    {
        if (found.Value is string exe) return exe;
        const string why = "no python3 with torch and numpy (apt-get install python3-torch python3-numpy, or bash .ci/install-python)";
        if (DeviceCase.Required("torch")) Assert.Fail(why + ", and GPU_REQUIRE_TORCH=1");
        Assert.Ignore(why);
        return "";
    }

    /// <summary>Runs a script of tests/parity with arguments; fails the test with its output when it exits non-zero.</summary>
    public static string Script(string script, params string[] args)
    {
        var r = ScriptResult(script, args);
        Assert.That(r.Code, Is.Zero, $"{script} failed:\n{r.Out}\n{r.Err}");
        return r.Out;
    }

    /// <summary>Runs a script of tests/parity with arguments and returns its exit code and output, whatever the code.</summary>
    public static (int Code, string Out, string Err) ScriptResult(string script, params string[] args) =>
        Run(Require(), [Path.Combine(Repo.Root, "tests", "parity", script), .. args], TimeSpan.FromMinutes(5));

    /// <summary>Runs a peer script of benchmarks/peers with arguments; fails the test with its output when it exits non-zero.</summary>
    public static string Peer(string script, params string[] args)
    {
        var r = Run(Require(), [Path.Combine(Repo.Root, "benchmarks", "peers", script), .. args], TimeSpan.FromMinutes(5));
        Assert.That(r.Code, Is.Zero, $"{script} failed:\n{r.Out}\n{r.Err}");
        return r.Out;
    }

    static (int Code, string Out, string Err) Run(string exe, string[] args, TimeSpan limit)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["OMP_NUM_THREADS"] = "1";   // deterministic, and polite to the other processes on a 2-core machine
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception) { return (-1, "", $"{exe} not found"); }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(limit)) { p.Kill(entireProcessTree: true); return (-1, stdout.Result, "timed out"); }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
    }
}
