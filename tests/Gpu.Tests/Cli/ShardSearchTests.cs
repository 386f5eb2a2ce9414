using System.Text.Json;
using Gpu.Engine;
using Gpu.Engine.Experiments;
using static Gpu.Tests.CliRun;

namespace Gpu.Tests.Cli;

/// <summary>
/// gpu search --shard K/N and gpu search merge DIR without a cluster, on a small synthetic data folder: shards
/// merged equal the unsharded search, missing trials are reported by number and shard, a torn last line of a
/// shard's search.csv is reported and its trial rerun, mixed shards and empty folders are refused, the shard is
/// read from an array job's variables and named in the first line.
/// </summary>
[NonParallelizable]   // sets SLURM_* variables of this process for one test
public sealed class ShardSearchTests : TempFolderTest
{
    string Data => Directory.Exists(Path.Combine(dir, "data")) ? Path.Combine(dir, "data") : SyntheticData.Folder(Path.Combine(dir, "data"), features: 64, train: 400, test: 100);

    /// <summary>4 trials: layers 6 | 10, lr 0.05 | 0.1.</summary>
    string[] Grid(string output, params string[] more) =>
        ["search", "--data", Data, "--layers", "6;10", "--lr", "0.05,0.1", "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--output", output, .. more];

    static (int Code, string Out, string Err) Ok(params string[] args)
    {
        var r = Run(args);
        Assert.That(r.Code, Is.Zero, $"gpu {string.Join(' ', args)}: {r.Err}");
        return r;
    }

    static List<string> Rows(string folder) =>   // search.csv without the seconds column
        File.ReadAllLines(Path.Combine(folder, "search.csv")).Select(l => string.Join(",", l.Split(',')[..^1])).ToList();

    static IEnumerable<TestCaseData> BadShards()
    {
        yield return new TestCaseData("3/2", "--shard 3/2: there is no shard 3 of 2, the shards are 0 to 1").SetName("Shard_index_not_below_count");
        yield return new TestCaseData("0/0", "--shard 0/0: a search needs at least 1 shard").SetName("Shard_count_zero");
        yield return new TestCaseData("abc", "--shard 'abc': give K/N, shard K (0 to N-1) of N shards").SetName("Shard_garbage");
        yield return new TestCaseData("-1/3", "--shard '-1/3': give K/N").SetName("Shard_negative");
        yield return new TestCaseData("1/2/3", "--shard '1/2/3': give K/N").SetName("Shard_three_parts");
        yield return new TestCaseData("1/", "--shard '1/': give K/N").SetName("Shard_no_count");
    }

    [TestCaseSource(nameof(BadShards))]
    public void Bad_shard(string shard, string message)
    {
        string output = Path.Combine(dir, "out");
        AssertOneLineError(Run(Grid(output, "--shard", shard)), message, 2);
        Assert.That(Directory.Exists(output), Is.False, "nothing written");
    }

    static Func<string, string?> Env(params (string Key, string Value)[] vars) => k => vars.FirstOrDefault(v => v.Key == k).Value;

    [Test]
    public void Shard_from_the_environment()
    {
        Assert.That(Shard.FromEnvironment(Env()), Is.Null, "no array job: no shard");
        var slurm = Shard.FromEnvironment(Env(("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")))!;
        Assert.That((slurm.Index, slurm.Count), Is.EqualTo((1, 3)));
        Assert.That(slurm.Source, Is.EqualTo("SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=3 (Slurm array job)"));
        var k8s = Shard.FromEnvironment(Env(("JOB_COMPLETION_INDEX", "4"), ("JOB_COMPLETIONS", "5")))!;
        Assert.That((k8s.Index, k8s.Count), Is.EqualTo((4, 5)));
        Assert.That(k8s.Source, Does.EndWith("(Kubernetes Indexed Job)"));
        var both = Shard.FromEnvironment(Env(("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "2"), ("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "3")))!;
        Assert.That(both.Source, Does.StartWith("SLURM"), "Slurm first");

        void Refused(string contains, params (string, string)[] vars) =>
            Assert.That(() => Shard.FromEnvironment(Env(vars)), Throws.TypeOf<UserError>().With.Message.Contains(contains));
        Refused("SLURM_ARRAY_TASK_ID=2 is set but SLURM_ARRAY_TASK_COUNT is not", ("SLURM_ARRAY_TASK_ID", "2"));
        Refused("JOB_COMPLETION_INDEX=2 is set but JOB_COMPLETIONS is not; give the Job's completions", ("JOB_COMPLETION_INDEX", "2"));
        // a rerun of one task (sbatch --array=5) must not run shard 0 of 1
        Refused("there is no shard 5 of 1, the shards are 0 to 0; submit the array as --array=0-(N-1)", ("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_COUNT", "1"));
        Refused("not whole numbers", ("JOB_COMPLETION_INDEX", "x"), ("JOB_COMPLETIONS", "3"));

        // which trials a shard runs: grid index (number - 1) modulo the count
        var grid = SearchGrid.Build(new Gpu.Engine.Settings.TrainOptions(), null, new Dictionary<string, string> { ["lr"] = "0.01,0.02,0.03,0.04,0.05", ["seed"] = "1,2" });
        Assert.That(grid.Trials.Where(new Shard(1, 3, "").Owns).Select(t => t.Number), Is.EqualTo(new[] { 2, 5, 8 }));
        Assert.That(Enumerable.Range(0, 3).SelectMany(k => grid.Trials.Where(new Shard(k, 3, "").Owns)).Select(t => t.Number).Order(),
            Is.EqualTo(Enumerable.Range(1, 10)), "every trial in exactly one shard");
    }

    [Test]
    public void Shards_merge_into_what_the_unsharded_search_writes()
    {
        string output = Path.Combine(dir, "out"), plain = Path.Combine(dir, "plain");
        var first = Ok(Grid(output, "--shard", "0/2"));
        Assert.That(first.Out.Split('\n')[0], Is.EqualTo($"shard 0/2 from --shard 0/2: 2 of the 4 trials, into {Path.Combine(output, "shard-0-of-2")}"));
        Assert.That(first.Out, Does.Contain("[2/2] trial 3").And.Not.Contain("retrained"));
        Assert.That(Directory.Exists(Path.Combine(output, "shard-0-of-2", "best")), Is.False, "a shard does not retrain");

        // one shard of two: the merge writes what there is and names the missing trials and their shard
        var partial = Run("search", "merge", output);
        AssertOneLineError(partial, "2 of 4 trials missing: trial 2 (shard 1/2), 4 (shard 1/2); run shard 1/2 again", 2);
        Assert.That(Rows(output), Has.Count.EqualTo(3));

        // the other shard from a Slurm array job's variables; then the merge is complete
        Environment.SetEnvironmentVariable("SLURM_ARRAY_TASK_ID", "1");
        Environment.SetEnvironmentVariable("SLURM_ARRAY_TASK_COUNT", "2");
        (int Code, string Out, string Err) second;
        try { second = Run(Grid(output)); }
        finally
        {
            Environment.SetEnvironmentVariable("SLURM_ARRAY_TASK_ID", null);
            Environment.SetEnvironmentVariable("SLURM_ARRAY_TASK_COUNT", null);
        }
        Assert.That(second.Code, Is.Zero, second.Err);
        Assert.That(second.Out.Split('\n')[0], Does.StartWith("shard 1/2 from SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=2 (Slurm array job): 2 of the 4 trials"));

        var merged = Run("search", "merge", output, "--retrain", "--device", "cpu");
        Assert.That(merged.Code, Is.Zero, merged.Err);
        Assert.That(merged.Out.Split('\n')[0], Does.StartWith("merging 2 of 2 shards of search ").And.EndWith(": 4 trials"));
        Assert.That(merged.Out, Does.Contain("shard-0-of-2: 2 of 2 trials").And.Contain("shard-1-of-2: 2 of 2 trials").And.Contain("ranking on validation (4 finished trials"));

        var unsharded = Run(Grid(plain));
        Assert.That(unsharded.Code, Is.Zero, unsharded.Err);
        Assert.That(Rows(output), Is.EqualTo(Rows(plain)), "every trial's row, in grid order, bit for bit (but its seconds)");
        using var a = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "best.json")));
        using var b = JsonDocument.Parse(File.ReadAllText(Path.Combine(plain, "best.json")));
        Assert.That(a.RootElement.GetProperty("best").GetProperty("trial").GetInt32(), Is.EqualTo(b.RootElement.GetProperty("best").GetProperty("trial").GetInt32()));
        Assert.That(a.RootElement.GetProperty("test").GetProperty("accuracy").GetDouble(), Is.EqualTo(b.RootElement.GetProperty("test").GetProperty("accuracy").GetDouble()));
        using var sa = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "search.json")));
        using var sb = JsonDocument.Parse(File.ReadAllText(Path.Combine(plain, "search.json")));
        Assert.That(sa.RootElement.GetProperty("fingerprint").GetString(), Is.EqualTo(sb.RootElement.GetProperty("fingerprint").GetString()));
        Assert.That(sa.RootElement.TryGetProperty("shard", out _), Is.False);

        // the merged folder is an unsharded search's: the search itself finds every trial done
        var again = Run(Grid(output));
        Assert.That(again.Code, Is.Zero, again.Err);
        Assert.That(again.Out, Does.Contain("holds 4 of the 4 trials already: skipping them, 0 to run").And.Contain("reused it"));
    }

    [Test]
    public void A_torn_last_line_is_reported_and_its_trial_rerun()
    {
        string output = Path.Combine(dir, "out");
        Ok(Grid(output, "--shard", "0/2"));
        string csv = Path.Combine(output, "shard-0-of-2", "search.csv");
        var before = Rows(Path.GetDirectoryName(csv)!);
        string text = File.ReadAllText(csv);
        int last = text.LastIndexOf('\n', text.Length - 2) + 1;
        File.WriteAllText(csv, text[..(last + (text.Length - last) / 2)]);   // a copy cut off in the middle of the last row

        var merged = Run("search", "merge", output);
        Assert.That(merged.Out, Does.Contain($"{csv} line 3 is torn (the file ends in the middle of it: ").And.Contain("rerunning shard 0/2 runs that trial again"));
        Assert.That(merged.Out, Does.Contain("shard-0-of-2: 1 of 2 trials"));
        AssertOneLineError(merged, "3 of 4 trials missing: trial 2 (shard 1/2), 3 (shard 0/2), 4 (shard 1/2)", 2);

        var rerun = Run(Grid(output, "--shard", "0/2"));
        Assert.That(rerun.Code, Is.Zero, rerun.Err);
        Assert.That(rerun.Out, Does.Contain($"{csv} line 3 is torn").And.Contain(": dropped; its trial runs again")
            .And.Contain("holds 1 of the 2 trials already: skipping them, 1 to run"));
        Assert.That(rerun.Out.Split('\n').Count(l => l.StartsWith('[')), Is.EqualTo(1), "only the torn trial runs");
        Assert.That(File.ReadAllText(csv), Does.EndWith("\n"));
        Assert.That(Rows(Path.GetDirectoryName(csv)!), Is.EqualTo(before), "the kept row, and the rerun trial's same result");
    }

    [Test]
    public void Merge_refuses_folders_without_shards_and_mixed_shards()
    {
        string output = Path.Combine(dir, "out");
        AssertOneLineError(Run("search", "merge"), "give the folder to merge: gpu search merge DIR", 2);
        AssertOneLineError(Run("search", "merge", Path.Combine(dir, "none")), "none: no such folder", 2);
        Directory.CreateDirectory(output);
        AssertOneLineError(Run("search", "merge", output), $"{output} holds no shards (shard-K-of-N/ folders with a search.json", 2);

        // shards of two different grids in one folder
        Ok(Grid(output, "--shard", "0/2"));
        Ok([.. Grid(output, "--shard", "1/2"), "--l2", "0.001"]);
        AssertOneLineError(Run("search", "merge", output),
            "shard-1-of-2 and shard-0-of-2 in " + output + " are shards of different searches (grid l2: [0.0001] in one, [0.001] in the other); merge the shards of one search only", 2);
        Assert.That(File.Exists(Path.Combine(output, "search.csv")), Is.False, "nothing written");

        // other shared settings
        Directory.Delete(Path.Combine(output, "shard-1-of-2"), true);
        Ok([.. Grid(output, "--shard", "1/2"), "--val-fraction", "0.2"]);
        AssertOneLineError(Run("search", "merge", output), "are shards of different searches (shared val_fraction: 0.1 in one, 0.2 in the other)", 2);

        // shards of two splits
        Directory.Delete(Path.Combine(output, "shard-1-of-2"), true);
        Ok(Grid(output, "--shard", "2/3"));
        AssertOneLineError(Run("search", "merge", output), $"{output} holds shards of 2 (shard-0-of-2) and of 3 (shard-2-of-3); merge the shards of one split only", 2);
    }

    [Test]
    public void Help_names_the_shard_flag_and_the_merge()
    {
        var search = Run("search", "--help");
        Assert.That(search.Out, Does.Contain("--shard").And.Contain("SLURM_ARRAY_TASK_ID").And.Contain("JOB_COMPLETION_INDEX"));
        foreach (var help in new[] { Run("search", "merge", "--help"), Run("help", "search", "merge") })
        {
            Assert.That(help.Code, Is.Zero);
            Assert.That(help.Out, Does.Contain("usage: gpu search merge DIR [options]").And.Contain("--retrain"));
        }
        Assert.That(Run("--help").Out, Does.Contain("search merge"));
    }

    /// <summary>The Kubernetes example: an Indexed Job whose JOB_COMPLETIONS equals its completions and parallelism, a gpu search without --shard, and a merge Job on the same output folder, image and claim.</summary>
    [Test]
    public void Kubernetes_example_is_an_indexed_job_with_its_count_and_a_merge()
    {
        static YamlDotNet.RepresentationModel.YamlMappingNode Read(string name)
        {
            var stream = new YamlDotNet.RepresentationModel.YamlStream();
            stream.Load(new StringReader(File.ReadAllText(Path.Combine(Repo.Root, "examples", "kubernetes", name))));
            return (YamlDotNet.RepresentationModel.YamlMappingNode)stream.Documents.Single().RootNode;
        }
        static YamlDotNet.RepresentationModel.YamlNode At(YamlDotNet.RepresentationModel.YamlNode n, params object[] path)
        {
            foreach (var step in path)
                n = step is int i ? ((YamlDotNet.RepresentationModel.YamlSequenceNode)n).Children[i] : ((YamlDotNet.RepresentationModel.YamlMappingNode)n).Children[new YamlDotNet.RepresentationModel.YamlScalarNode((string)step)];
            return n;
        }
        static string S(YamlDotNet.RepresentationModel.YamlNode n) => ((YamlDotNet.RepresentationModel.YamlScalarNode)n).Value!;
        static List<string> Command(YamlDotNet.RepresentationModel.YamlNode job) =>
            ((YamlDotNet.RepresentationModel.YamlSequenceNode)At(job, "spec", "template", "spec", "containers", 0, "command")).Children.Select(S).ToList();

        var job = Read("search-indexed-job.yaml");
        Assert.That(S(At(job, "kind")), Is.EqualTo("Job"));
        Assert.That(S(At(job, "spec", "completionMode")), Is.EqualTo("Indexed"));
        string n = S(At(job, "spec", "completions"));
        Assert.That(S(At(job, "spec", "parallelism")), Is.EqualTo(n));
        var env = ((YamlDotNet.RepresentationModel.YamlSequenceNode)At(job, "spec", "template", "spec", "containers", 0, "env")).Children;
        Assert.That(env.Where(e => S(At(e, "name")) == Shard.KubernetesCount).Select(e => S(At(e, "value"))).Single(), Is.EqualTo(n));
        var search = Command(job);
        Assert.That(search[..2], Is.EqualTo(new[] { "gpu", "search" }));
        Assert.That(search, Does.Not.Contain("--shard"), "the shard comes from the Job's variables");
        string output = search[search.IndexOf("--output") + 1];

        var merge = Read("search-merge-job.yaml");
        Assert.That(Command(merge), Is.EqualTo(new[] { "gpu", "search", "merge", output, "--retrain" }));
        Assert.That(S(At(merge, "spec", "template", "spec", "containers", 0, "image")), Is.EqualTo(S(At(job, "spec", "template", "spec", "containers", 0, "image"))));
        Assert.That(S(At(merge, "spec", "template", "spec", "volumes", 0, "persistentVolumeClaim", "claimName")),
            Is.EqualTo(S(At(job, "spec", "template", "spec", "volumes", 0, "persistentVolumeClaim", "claimName"))));
    }
}
