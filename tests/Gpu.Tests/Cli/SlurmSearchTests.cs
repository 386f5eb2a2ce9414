using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// A real Slurm: a single-node cluster of this machine (its short host name, its CPUs and memory as slurmd
/// sees them) with its own slurm.conf, munged, slurmctld and slurmd, all in a temporary folder and started
/// by this fixture, which stops them by their process ids afterwards, also when something failed. It submits
/// examples/slurm/search.sbatch as a 3-task array job for a 6-trial grid (sbatch --wait), lets the merge job
/// the first task submits run, and checks that the merged search (every trial's row, the ranking, the best and
/// its retrained test accuracy) equals an unsharded 'gpu search' of the same grid bit for bit (CPU device, same seeds).
/// Where Slurm or root is missing the test is skipped with the reason, except where GPU_REQUIRE_SLURM=1 (.ci/run,
/// which installs Slurm) or CI is set: there it fails. Daemons that do not start fail the test with their logs.
/// </summary>
[TestFixture, Category("Slurm"), NonParallelizable]
public sealed class SlurmSearchTests
{
    static readonly string[] Programs = ["/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/bin/sbatch", "/usr/bin/squeue", "/usr/bin/scontrol", "/usr/bin/setpriv"];

    /// <summary>The grid: 6 trials, small and short; the merge retrains the best.</summary>
    static string[] Grid => ["--data", Repo.FashionMnist, "--limit", "2000", "--layers", "8;16", "--lr", "0.01,0.05,0.1", "--epochs", "1"];

    string dir = null!;          // the cluster's folder: slurm.conf, state, spool, logs, munge socket
    string conf = null!;
    readonly List<Process> daemons = [];

    static bool Required => Environment.GetEnvironmentVariable("GPU_REQUIRE_SLURM") == "1" || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    [OneTimeSetUp]
    public void StartCluster()
    {
        string? missing = !OperatingSystem.IsLinux() ? "not Linux"
            : Programs.FirstOrDefault(p => !File.Exists(p)) is string p ? $"{p} not found (bash .ci/install-slurm installs Slurm and MUNGE)"
            : Environment.UserName != "root" ? "not root: munged runs as user munge and slurmd as root"
            : !File.Exists("/etc/munge/munge.key") ? "no /etc/munge/munge.key (bash .ci/install-slurm makes one)"
            : null;
        if (missing != null)
        {
            if (Required) Assert.Fail($"Slurm is required here (GPU_REQUIRE_SLURM=1 or CI) but {missing}");
            Assert.Ignore($"skipped: {missing}");
        }
        dir = Path.Combine(Path.GetTempPath(), "gpu-slurm-" + Guid.NewGuid().ToString("N")[..12]);
        try { if (OperatingSystem.IsLinux()) Start(); }
        catch
        {
            StopDaemons();
            throw;
        }
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    void Start()
    {
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_101_101);   // 755: munged checks every folder above its socket
        string munge = Path.Combine(dir, "munge");
        Directory.CreateDirectory(munge);
        File.SetUnixFileMode(munge, (UnixFileMode)0b111_101_101);
        Exec("chown", ["munge:munge", munge]);
        foreach (var d in new[] { "state", "spool", "jobs" }) Directory.CreateDirectory(Path.Combine(dir, d));

        // the node as slurmd sees it: "NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105"
        string host = Exec("hostname", ["-s"]).Trim();
        string node = Exec("/usr/sbin/slurmd", ["-C"]).Split('\n')[0];
        string Field(string key) => node.Split(' ').FirstOrDefault(f => f.StartsWith(key + "="))?[(key.Length + 1)..]
            ?? throw new InvalidOperationException($"slurmd -C printed no {key}: {node}");
        string socket = Path.Combine(munge, "munge.socket");
        conf = Path.Combine(dir, "slurm.conf");
        File.WriteAllText(conf, $"""
            ClusterName=gputest
            SlurmctldHost={host}(127.0.0.1)
            SlurmctldPort={FreePort()}
            SlurmdPort={FreePort()}
            SlurmUser=root
            SlurmdUser=root
            AuthType=auth/munge
            CredType=cred/munge
            AuthInfo=socket={socket}
            ProctrackType=proctrack/linuxproc
            TaskPlugin=task/none
            SelectType=select/cons_tres
            SelectTypeParameters=CR_Core
            JobAcctGatherType=jobacct_gather/none
            AccountingStorageType=accounting_storage/none
            MpiDefault=none
            MailProg=/bin/true
            ReturnToService=2
            StateSaveLocation={dir}/state
            SlurmdSpoolDir={dir}/spool
            SlurmctldPidFile={dir}/slurmctld.pid
            SlurmdPidFile={dir}/slurmd.pid
            SlurmctldLogFile={dir}/slurmctld.log
            SlurmdLogFile={dir}/slurmd.log
            NodeName={host} NodeAddr=127.0.0.1 CPUs={Field("CPUs")} RealMemory={Field("RealMemory")} State=UNKNOWN
            PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP

            """);

        Daemon("munged", "/usr/bin/setpriv", ["--reuid=munge", "--regid=munge", "--init-groups", "/usr/sbin/munged", "--foreground",
            $"--socket={socket}", $"--pid-file={munge}/munged.pid", $"--log-file={munge}/munged.log", $"--seed-file={munge}/munged.seed"]);
        WaitFor(() => File.Exists(socket), 15, "munged to create its socket");
        Daemon("slurmctld", "/usr/sbin/slurmctld", ["-D", "-f", conf]);
        Daemon("slurmd", "/usr/sbin/slurmd", ["-D", "-f", conf]);
        WaitFor(() => Slurm("sinfo", ["-h", "-o", "%T"]).Out.Trim() == "idle", 30, "the node to be idle in sinfo");
    }

    /// <summary>Starts a daemon in the foreground as a child of this process, its output in DIR/NAME.out.</summary>
    void Daemon(string name, string file, string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        daemons.Add(p);
        var log = new StreamWriter(Path.Combine(dir, name + ".out")) { AutoFlush = true };
        p.OutputDataReceived += (_, e) => { if (e.Data != null) lock (log) log.WriteLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (log) log.WriteLine(e.Data); };
        p.Exited += (_, _) => { lock (log) log.Flush(); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
    }

    void WaitFor(Func<bool> done, int seconds, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (daemons.FirstOrDefault(d => d.HasExited) is { } dead)
                Assert.Fail($"{Path.GetFileName(dead.StartInfo.FileName)} (pid {dead.Id}) ended with exit code {dead.ExitCode} while waiting for {what}\n{Logs()}");
            if (clock.Elapsed.TotalSeconds > seconds) Assert.Fail($"waited {seconds} s for {what}\n{Logs()}");
            Thread.Sleep(250);
        }
    }

    /// <summary>The daemons' and the jobs' logs, for a failure message.</summary>
    string Logs()
    {
        var sb = new StringBuilder();
        foreach (var f in Directory.Exists(dir) ? Directory.EnumerateFiles(dir, "*.*", SearchOption.AllDirectories) : [])
            if (f.EndsWith(".out") || f.EndsWith(".log"))
            {
                string text;
                try { text = File.ReadAllText(f); } catch (IOException) { continue; }
                var lines = text.Split('\n');
                sb.Append($"--- {f} (last 30 lines)\n").AppendJoin('\n', lines.Skip(Math.Max(0, lines.Length - 30))).Append('\n');
            }
        return sb.ToString();
    }

    [OneTimeTearDown]
    public void StopCluster()
    {
        if (dir == null) return;
        StopDaemons();
        try { Directory.Delete(dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Stops the daemons this fixture started, by their process ids (SIGTERM, then SIGKILL after 10 s), and checks that nothing of the cluster is left running.</summary>
    void StopDaemons()
    {
        foreach (var d in Enumerable.Reverse(daemons))
        {
            if (d.HasExited) continue;
            Exec("kill", ["-TERM", d.Id.ToString(CultureInfo.InvariantCulture)], check: false);
            if (!d.WaitForExit(10_000)) { d.Kill(); d.WaitForExit(5_000); }
        }
        var left = daemons.Where(d => !d.HasExited).Select(d => d.Id).ToList();
        daemons.Clear();
        // a job step (slurmstepd) or daemon still naming the cluster's folder would be ours too
        var strays = Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => int.TryParse(n, out _))
            .Where(n => int.Parse(n!) != Environment.ProcessId && ReadCmdline(n!).Contains(dir)).Select(n => int.Parse(n!)).ToList();
        foreach (var pid in strays) Exec("kill", ["-KILL", pid.ToString(CultureInfo.InvariantCulture)], check: false);
        if (left.Count > 0 || strays.Count > 0)
            Assert.Fail($"left running after the Slurm test: {string.Join(", ", left.Concat(strays))} (now killed)");
    }

    static string ReadCmdline(string pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    static string Exec(string file, string[] args, bool check = true)
    {
        var r = RunProcess(file, args, null, null, 60);
        if (check && r.Code != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)}: exit code {r.Code}: {r.Err}");
        return r.Out;
    }

    static (int Code, string Out, string Err) RunProcess(string file, string[] args, string? workingDirectory, IDictionary<string, string>? env, int seconds)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory != null) psi.WorkingDirectory = workingDirectory;
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(seconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return (124, stdout.Result, stderr.Result + $"\n(killed after {seconds} s)");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    (int Code, string Out, string Err) Slurm(string command, string[] args, IDictionary<string, string>? env = null, int seconds = 30)
    {
        var all = new Dictionary<string, string>(env ?? new Dictionary<string, string>()) { ["SLURM_CONF"] = conf };
        return RunProcess("/usr/bin/" + command, args, Path.Combine(dir, "jobs"), all, seconds);
    }

    [Test]
    public void Example_array_job_and_its_merge_equal_an_unsharded_search()
    {
        string jobs = Path.Combine(dir, "jobs"), sharded = Path.Combine(jobs, "out");
        string gpu = Path.Combine(AppContext.BaseDirectory, "gpu");
        var env = new Dictionary<string, string>
        {
            ["GPU"] = gpu,
            ["OUT"] = sharded,
            ["SEARCH"] = string.Join(' ', Grid),
            ["DEVICE"] = "cpu",
        };
        // the example as a person submits it, with this cluster's partition and 3 shards in place of the file's 4
        var submit = Slurm("sbatch", ["--wait", "--partition=test", "--array=0-2", Path.Combine(Repo.Root, "examples", "slurm", "search.sbatch")], env, seconds: 240);
        Assert.That(submit.Code, Is.Zero, $"sbatch --wait: {submit.Out}{submit.Err}\n{Logs()}");
        string arrayJob = submit.Out.Trim().Split(' ')[^1];

        // each task's first line of gpu output names its shard and where it came from
        for (int k = 0; k < 3; k++)
        {
            string log = File.ReadAllText(Path.Combine(jobs, $"gpu-search-{arrayJob}_{k}.out"));
            Assert.That(log, Does.Contain($"shard {k}/3 from SLURM_ARRAY_TASK_ID={k}, SLURM_ARRAY_TASK_COUNT=3 (Slurm array job): 2 of the 6 trials"), log);
            Assert.That(log.Split('\n').SkipWhile(l => l.StartsWith("merge job:")).First(), Does.StartWith($"shard {k}/3 from"));
        }

        // the merge: submitted by the first task, with --dependency=afterok on the array
        string first = File.ReadAllText(Path.Combine(jobs, $"gpu-search-{arrayJob}_0.out"));
        string mergeJob = first.Split('\n').Single(l => l.StartsWith("merge job: "))["merge job: ".Length..].Split(' ')[0];
        var clock = Stopwatch.StartNew();
        while (Slurm("squeue", ["-h", "-j", mergeJob]).Out.Trim().Length > 0)
        {
            if (clock.Elapsed.TotalSeconds > 180) Assert.Fail($"merge job {mergeJob} did not end in 180 s\n{Logs()}");
            Thread.Sleep(500);
        }
        string state = Slurm("scontrol", ["show", "job", "-o", mergeJob]).Out;
        string mergeLog = File.ReadAllText(Path.Combine(jobs, $"gpu-search-merge-{mergeJob}.out"));
        Assert.That(state, Does.Contain("JobState=COMPLETED").And.Contain("ExitCode=0:0"), $"{state}\n{mergeLog}\n{Logs()}");

        // the same grid unsharded, in this process
        string plain = Path.Combine(jobs, "unsharded");
        var r = Run(["search", .. Grid, "--device", "cpu", "--output", plain]);
        Assert.That(r.Code, Is.Zero, r.Err);

        // every trial's row, bit for bit (all but the seconds it took)
        static List<string> Rows(string folder) =>
            File.ReadAllLines(Path.Combine(folder, "search.csv")).Select(l => string.Join(",", l.Split(',')[..^1])).ToList();
        var merged = Rows(sharded);
        Assert.That(merged, Has.Count.EqualTo(7), "a header and 6 trials");
        Assert.That(merged, Is.EqualTo(Rows(plain)));

        // the ranking the merge printed is the unsharded search's ranking
        var header = merged[0].Split(',');
        int acc = Array.IndexOf(header, "val_accuracy"), loss = Array.IndexOf(header, "val_loss");
        var want = Rows(plain).Skip(1).Select((l, i) => (Trial: i + 1, Cells: l.Split(',')))
            .OrderByDescending(x => double.Parse(x.Cells[acc], CultureInfo.InvariantCulture)).ThenBy(x => double.Parse(x.Cells[loss], CultureInfo.InvariantCulture))
            .ThenBy(x => x.Trial).Select(x => x.Trial).ToList();
        var printed = mergeLog.Split('\n').Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+\d+\. trial \d+"))
            .Select(l => int.Parse(l.Split("trial ")[1].Split(' ', ':')[0], CultureInfo.InvariantCulture)).ToList();
        Assert.That(printed, Is.EqualTo(want), mergeLog);

        // the best and its retrained test accuracy
        static (string Best, double Test) Best(string folder)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "best.json")));
            var b = doc.RootElement.GetProperty("best");
            string best = string.Join(";", b.EnumerateObject().Where(p => p.Name != "seconds").Select(p => $"{p.Name}={p.Value.GetRawText()}"));
            return (best, doc.RootElement.GetProperty("test").GetProperty("accuracy").GetDouble());
        }
        Assert.That(Best(sharded), Is.EqualTo(Best(plain)));
        Assert.That(mergeLog, Does.Contain($"test accuracy {Best(plain).Test:F4}"));
    }
}
