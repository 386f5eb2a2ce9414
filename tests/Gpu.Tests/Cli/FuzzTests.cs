using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Gpu.Cli;
using Gpu.Engine.Data;
using Gpu.Engine.Runs;
using Gpu.Engine.Settings;

namespace Gpu.Tests.Cli;

/// <summary>
/// Seeded mutation fuzzing of every file the program reads: real IDX (plain and gzip), NPY, CSV, YAML,
/// model.json + model.npy and checkpoint files, each damaged by a few random edits (bit flips, interesting
/// bytes and integers, truncation, deleted, inserted and repeated ranges; for text, numbers replaced by
/// -1, 1e400, NaN or 20-digit values and YAML/JSON punctuation inserted; for JSON, a node replaced by a
/// value of another type or removed). Every case must end as the program promises: exit code 0, or a user
/// error (2) reported as exactly one line starting "error: " — never an internal error (exit code 1).
/// <para>Two tiers: the readers each verb calls, run inside the program's own error boundary
/// (<see cref="Program.Guard"/>), a few hundred cases per format; and the program end to end
/// (<see cref="Program.Run"/>) on commands that read the file and then stop cheaply (a missing data
/// folder after a config or model, or other data than the checkpoint's), so no case trains. A failure
/// names the format, the case's seed and the edits, so it can be replayed.</para>
/// </summary>
public sealed class FuzzTests : TempFolderTest
{
    /// <summary>The base seed (15, the issue's number); GPU_FUZZ_SEED=N explores other cases, GPU_FUZZ_SCALE=K runs K times as many.</summary>
    static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("GPU_FUZZ_SEED"), out int s) ? s : 15;
    static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("GPU_FUZZ_SCALE"), out int k) && k > 0 ? k : 1;
    static readonly int ReaderCases = 500 * Scale, CliCases = 100 * Scale;   // per format: about 4,000 cases in all, some 15 s

    // ---- the seeds: real files of every kind, made once ----

    static string root = null!;
    static string idxFolder = null!, gzFolder = null!, npyFolder = null!, csvFolder = null!, modelFolder = null!, runFolder = null!;
    static string[] yamlFiles = null!;

    [OneTimeSetUp]
    public static void MakeSeeds()
    {
        root = Path.Combine(Path.GetTempPath(), "gpu-fuzz-" + Guid.NewGuid().ToString("N"));
        // a tiny dataset: 40 training and 20 test images of 4 x 4 pixels, as IDX (gzip and plain), NPY and CSV
        gzFolder = SyntheticData.Folder(Path.Combine(root, "gz"), features: 16, train: 40, test: 20);
        var data = DataSource.OfFolder(gzFolder).Load();
        idxFolder = Path.Combine(root, "idx");
        Directory.CreateDirectory(idxFolder);
        foreach (var (set, stem) in new[] { (data.Train, "train"), (data.Test, "t10k") })
        {
            File.WriteAllBytes(Path.Combine(idxFolder, $"{stem}-images-idx3-ubyte"), SyntheticData.Idx([set.Count, 4, 4], set.Pixels));
            File.WriteAllBytes(Path.Combine(idxFolder, $"{stem}-labels-idx1-ubyte"), SyntheticData.Idx([set.Count], set.Labels.Select(l => (byte)l).ToArray()));
        }
        npyFolder = Path.Combine(root, "npy");
        Directory.CreateDirectory(npyFolder);
        foreach (var (set, stem) in new[] { (data.Train, "train"), (data.Test, "test") })
        {
            TestFiles.WriteNpy(Path.Combine(npyFolder, $"fuzz_{stem}_images.npy"), "|u1", [set.Count, 4, 4], set.Pixels);
            TestFiles.WriteNpy(Path.Combine(npyFolder, $"fuzz_{stem}_labels.npy"), "<i8", [set.Count], TestFiles.Longs(set.Labels.Select(l => (long)l)));
        }
        csvFolder = Path.Combine(root, "csv");
        Directory.CreateDirectory(csvFolder);
        File.WriteAllText(Path.Combine(csvFolder, "train.csv"), TestFiles.Csv(data.Train, header: true));
        File.WriteAllText(Path.Combine(csvFolder, "test.csv"), TestFiles.Csv(data.Test, header: false));
        yamlFiles = Directory.GetFiles(Path.Combine(Repo.Root, "src", "Gpu.Cli", "examples"), "*.yaml");

        // a trained model, and an unfinished run with its checkpoint (interrupted in its first epoch)
        modelFolder = Path.Combine(root, "model");
        Assert.That(CliRun.Run("train", "--data", gzFolder, "--layers", "4", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--output", modelFolder).Code, Is.Zero);
        runFolder = Path.Combine(root, "run");
        var stopped = CliRun.Run(["train", "--data", gzFolder, "--layers", "4", "--epochs", "2", "--batch-size", "8", "--device", "cpu", "--output", runFolder],
            new CancellationToken(canceled: true));
        Assert.That(stopped.Code, Is.EqualTo(130), stopped.Err);
    }

    [OneTimeTearDown]
    public static void RemoveSeeds() { if (Directory.Exists(root)) Directory.Delete(root, true); }

    // ---- mutations ----

    static readonly byte[] InterestingBytes = [0, 1, 0x7F, 0x80, 0xFF, (byte)'\n', (byte)',', (byte)'-'];
    static readonly int[] InterestingInts = [0, -1, 1, int.MaxValue, int.MinValue, 0x7FFFFFFF, 0x3FFFFFFF, 65536, 255, 256];
    static readonly string[] InterestingNumbers = ["-1", "0", "1e400", "-1e400", "NaN", "Infinity", "99999999999999999999", "2147483648", "0.5", "", "1,2", "0x10", "1e-400"];
    static readonly string[] InterestingText = ["[", "]", "{", "}", ":", ",", "\"", "'", "\n", "\t", "#", "&a", "*a", "!", "|", ">", "- ", "? ", " ", "\0", "é", "\\"];

    /// <summary>One to three random edits of <paramref name="input"/>, half of them aimed at its first 64 bytes (the headers); a description of each is added to <paramref name="log"/>.</summary>
    static byte[] MutateBytes(byte[] input, Random r, List<string> log)
    {
        var b = new List<byte>(input);
        int edits = 1 + r.Next(3);
        for (int e = 0; e < edits; e++)
        {
            if (b.Count == 0) { b.Add((byte)r.Next(256)); log.Add("add one byte"); continue; }
            int at = r.Next(2) == 0 ? r.Next(Math.Min(64, b.Count)) : r.Next(b.Count);
            switch (r.Next(7))
            {
                case 0: b[at] ^= (byte)(1 << r.Next(8)); log.Add($"flip a bit at {at}"); break;
                case 1: b[at] = InterestingBytes[r.Next(InterestingBytes.Length)]; log.Add($"byte {at} = {b[at]}"); break;
                case 2: b.RemoveRange(at, b.Count - at); log.Add($"truncate at {at}"); break;
                case 3: { int n = Math.Min(1 + r.Next(16), b.Count - at); b.RemoveRange(at, n); log.Add($"delete {n} at {at}"); break; }
                case 4: { var extra = new byte[1 + r.Next(16)]; r.NextBytes(extra); b.InsertRange(at, extra); log.Add($"insert {extra.Length} at {at}"); break; }
                case 5: { int n = Math.Min(1 + r.Next(64), b.Count - at); b.InsertRange(at, b.GetRange(at, n)); log.Add($"repeat {n} at {at}"); break; }
                default:
                {
                    int v = InterestingInts[r.Next(InterestingInts.Length)];
                    byte[] word = r.Next(2) == 0 ? [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v] : BitConverter.GetBytes(v);
                    for (int i = 0; i < 4 && at + i < b.Count; i++) b[at + i] = word[i];
                    log.Add($"int {v} at {at}");
                    break;
                }
            }
        }
        return [.. b];
    }

    static string MutateText(string text, Random r, List<string> log)
    {
        int edits = 1 + r.Next(3);
        for (int e = 0; e < edits; e++)
        {
            var numbers = System.Text.RegularExpressions.Regex.Matches(text, @"-?\d+(\.\d+)?(e-?\d+)?");
            int at = text.Length == 0 ? 0 : r.Next(text.Length);
            switch (r.Next(6))
            {
                case 0 or 1 when numbers.Count > 0:
                {
                    var m = numbers[r.Next(numbers.Count)];
                    string v = InterestingNumbers[r.Next(InterestingNumbers.Length)];
                    text = text[..m.Index] + v + text[(m.Index + m.Length)..];
                    log.Add($"number at {m.Index} = '{v}'");
                    break;
                }
                case 2: { string v = InterestingText[r.Next(InterestingText.Length)]; text = text.Insert(at, v); log.Add($"insert '{v}' at {at}"); break; }
                case 3: { int n = Math.Min(1 + r.Next(8), text.Length - at); text = text.Remove(at, n); log.Add($"delete {n} at {at}"); break; }
                case 4: { var lines = text.Split('\n').ToList(); int i = r.Next(lines.Count); lines.Insert(i, lines[r.Next(lines.Count)]); text = string.Join('\n', lines); log.Add($"repeat a line at {i}"); break; }
                default: text = text[..at]; log.Add($"truncate at {at}"); break;
            }
        }
        return text;
    }

    static readonly Func<JsonNode?>[] OtherValues =
    [
        () => null, () => "", () => "bogus", () => -1, () => 0, () => 1e308, () => JsonNode.Parse("99999999999999999999"), () => 0.5,
        () => new JsonArray(), () => new JsonObject(), () => new JsonArray(1, 2), () => true, () => "../elsewhere", () => "SoftmaxCrossEntropy",
    ];

    /// <summary>A node of the JSON replaced by a value of another type, or removed; or, one time in four, a text edit of the file.</summary>
    static string MutateJson(string json, Random r, List<string> log)
    {
        if (r.Next(4) == 0) return MutateText(json, r, log);
        var doc = JsonNode.Parse(json)!;
        int edits = 1 + r.Next(2);
        for (int e = 0; e < edits; e++)
        {
            var nodes = new List<(JsonNode Parent, string? Key, int Index)>();
            void Walk(JsonNode? n)
            {
                if (n is JsonObject o) foreach (var (k, v) in o.ToList()) { nodes.Add((o, k, -1)); Walk(v); }
                else if (n is JsonArray a) for (int i = 0; i < a.Count; i++) { nodes.Add((a, null, i)); Walk(a[i]); }
            }
            Walk(doc);
            if (nodes.Count == 0) break;
            var (parent, key, index) = nodes[r.Next(nodes.Count)];
            bool remove = r.Next(5) == 0;
            var value = OtherValues[r.Next(OtherValues.Length)]();
            if (parent is JsonObject po)
            {
                if (remove) { po.Remove(key!); log.Add($"remove \"{key}\""); }
                else { po[key!] = value; log.Add($"\"{key}\" = {value?.ToJsonString() ?? "null"}"); }
            }
            else if (parent is JsonArray pa)
            {
                if (remove) { pa.RemoveAt(index); log.Add($"remove [{index}]"); }
                else { pa[index] = value; log.Add($"[{index}] = {value?.ToJsonString() ?? "null"}"); }
            }
        }
        return doc.ToJsonString();
    }

    // ---- one case ----

    /// <summary>A fresh copy of <paramref name="folder"/> for one case, with one of its files (chosen by <paramref name="pick"/>) damaged.</summary>
    string Damaged(string folder, Random r, List<string> log, Func<string, bool>? pick = null)
    {
        string copy = Path.Combine(dir, "case-" + Guid.NewGuid().ToString("N")[..8]);
        CopyFolder(folder, copy);
        var files = Directory.GetFiles(copy, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.') && (pick?.Invoke(f) ?? true)).OrderBy(f => f).ToArray();
        string file = files[r.Next(files.Length)];
        log.Insert(0, Path.GetRelativePath(copy, file) + ":");
        Damage(file, r, log);
        return copy;
    }

    static void Damage(string file, Random r, List<string> log)
    {
        string ext = Path.GetExtension(file);
        if (ext == ".json") File.WriteAllText(file, MutateJson(File.ReadAllText(file), r, log));
        else if (ext is ".csv" or ".yaml") File.WriteAllText(file, MutateText(File.ReadAllText(file), r, log));
        else File.WriteAllBytes(file, MutateBytes(File.ReadAllBytes(file), r, log));
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from)) CopyFolder(d, Path.Combine(to, Path.GetFileName(d)));
    }

    /// <summary>Exit code 0, or 2 with exactly one line on stderr starting "error: " — never an internal error.</summary>
    static void AssertPromise(string format, int seed, List<string> log, int code, string stderr, string what)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        bool kept = code == 0 || code == 2 && lines.Length == 1 && lines[0].StartsWith("error: ") && !stderr.Contains("   at ");
        if (!kept)
            Assert.Fail($"{format} case seed {seed} ({string.Join("; ", log)}), {what}: exit code {code}, stderr: {stderr.Trim()}");
    }

    /// <summary>Runs <paramref name="cases"/> seeded cases of <paramref name="body"/> (seed, random, log) and says how many ended in which way.</summary>
    static void Cases(string format, int cases, Action<int, Random, List<string>> body)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            int seed = Seed * 10_000_000 + Fnv(format) * 100_000 + i;   // fixed per format and case: a failure names its seed
            body(seed, new Random(seed), []);
        }
        TestContext.Out.WriteLine($"{format}: {cases} cases in {clock.Elapsed.TotalSeconds:F1} s");
    }

    static int Fnv(string s) => (int)(s.Aggregate(2166136261u, (h, c) => (h ^ c) * 16777619u) % 100);

    /// <summary>Runs <paramref name="read"/> inside the program's error boundary and checks the promise.</summary>
    static void Guarded(string format, int seed, List<string> log, string what, Action read)
    {
        var err = new StringWriter();
        int code = Program.Guard(err, () => { read(); return 0; });
        AssertPromise(format, seed, log, code, err.ToString(), what);
    }

    /// <summary>Runs the program and checks the promise.</summary>
    static void Cli(string format, int seed, List<string> log, params string[] args)
    {
        var r = CliRun.Run(args);
        AssertPromise(format, seed, log, r.Code, r.Err, "gpu " + string.Join(' ', args));
    }

    // ---- tier 1: the readers, inside the program's error boundary ----

    [TestCase("idx"), TestCase("idx.gz"), TestCase("npy"), TestCase("csv")]
    public void Damaged_data_files_are_read_or_refused_in_one_line(string format)
    {
        string seedFolder = format switch { "idx" => idxFolder, "idx.gz" => gzFolder, "npy" => npyFolder, _ => csvFolder };
        Cases(format, ReaderCases, (seed, r, log) =>
        {
            string folder = Damaged(seedFolder, r, log);
            Guarded(format, seed, log, "DataSource.Load", () => DataFingerprint.Of(DataSource.OfFolder(folder).Load()));
            string images = Directory.GetFiles(folder).Where(f => f.Contains("test") || f.Contains("t10k")).First(f => f.Contains("image") || f.EndsWith(".csv"));
            string? labels = images.EndsWith(".csv") ? null : Directory.GetFiles(folder).First(f => (f.Contains("test") || f.Contains("t10k")) && f.Contains("label"));
            Guarded(format, seed, log, "predict's reader", () => TableData.ReadImages(images, labels, 16, 10));
            Directory.Delete(folder, true);
        });
    }

    [Test]
    public void Damaged_yaml_files_are_read_or_refused_in_one_line()
    {
        Cases("yaml", ReaderCases, (seed, r, log) =>
        {
            string file = Path.Combine(dir, $"case-{seed}.yaml");
            string source = yamlFiles[r.Next(yamlFiles.Length)];
            log.Add(Path.GetFileName(source) + ":");
            File.WriteAllText(file, MutateText(File.ReadAllText(source), r, log));
            Guarded("yaml", seed, log, "train --config", () => ExperimentConfig.Read(file, grid: false).ApplyTo(new TrainOptions(), _ => false).Validate());
            Guarded("yaml", seed, log, "search --config", () =>
            {
                var grid = ExperimentConfig.Read(file, grid: true);
                Gpu.Engine.Experiments.SearchGrid.Build(grid.ApplyTo(new TrainOptions(), _ => false), grid, new Dictionary<string, string>());
            });
            File.Delete(file);
        });
    }

    [Test]
    public void Damaged_models_are_read_or_refused_in_one_line()
    {
        Cases("model", ReaderCases, (seed, r, log) =>
        {
            string folder = Damaged(modelFolder, r, log, f => Path.GetFileName(f) is "model.json" or "model.npy");
            Guarded("model", seed, log, "SavedModel.Read and what eval and gradcheck use", () =>
            {
                var m = SavedModel.Read(folder);
                _ = (m.Options, m.Data?.Describe(), m.Data?.Missing());
                var n = Gpu.Network.Load(folder);   // what eval, predict, export and weights read through the library
                _ = (n.ClassNames, n.Description, n.Metrics, n.Warnings);
            });
            Directory.Delete(folder, true);
        });
    }

    [Test]
    public void Damaged_checkpoints_are_read_or_refused_in_one_line()
    {
        Cases("checkpoint", ReaderCases, (seed, r, log) =>
        {
            string folder = Damaged(runFolder, r, log, f => f.Contains(Path.DirectorySeparatorChar + "checkpoint" + Path.DirectorySeparatorChar));
            Guarded("checkpoint", seed, log, "Checkpoint.Read and what train --resume uses", () =>
            {
                var c = Checkpoint.Read(folder);
                c.Run.Options.Validate();
                _ = (c.Run.Data.Describe(), c.Run.Data.Missing(), c.Run.Fingerprint?.Describe());
            });
            using (var taken = RunFolder.Take(folder, "fuzz")) Guarded("checkpoint", seed, log, "the check of a fresh train's --output", () => _ = taken.Previous());
            Directory.Delete(folder, true);
        });
    }

    // ---- tier 2: the program end to end ----

    [Test]
    public void The_program_keeps_its_promise_on_damaged_files()
    {
        string missing = Path.Combine(dir, "no-data-here");
        Cases("cli yaml", CliCases, (seed, r, log) =>
        {
            string file = Path.Combine(dir, $"case-{seed}.yaml");
            File.WriteAllText(file, MutateText(File.ReadAllText(yamlFiles[r.Next(yamlFiles.Length)]), r, log));
            Cli("cli yaml", seed, log, "train", "--config", file, "--data", missing, "--device", "cpu");
            Cli("cli yaml", seed, log, "search", "--config", file, "--data", missing, "--device", "cpu", "--output", Path.Combine(dir, $"search-{seed}"));
        });
        Cases("cli model", CliCases, (seed, r, log) =>
        {
            string folder = Damaged(modelFolder, r, log, f => Path.GetFileName(f) is "model.json" or "model.npy");
            Cli("cli model", seed, log, "eval", "--model", folder, "--data", missing, "--device", "cpu");
            Cli("cli model", seed, log, "predict", "--model", folder, "--input", Path.Combine(missing, "x.npy"), "--device", "cpu");
            Cli("cli model", seed, log, "gradcheck", "--model", folder, "--data", missing, "--device", "cpu");
            Cli("cli model", seed, log, "weights", "--model", folder, "--output", Path.Combine(folder, "w.png"));
        });
        Cases("cli checkpoint", CliCases, (seed, r, log) =>
        {
            string folder = Damaged(runFolder, r, log, f => f.Contains(Path.DirectorySeparatorChar + "checkpoint" + Path.DirectorySeparatorChar));
            Cli("cli checkpoint", seed, log, "train", "--resume", folder, "--data", missing, "--device", "cpu");
            Cli("cli checkpoint", seed, log, "train", "--data", missing, "--device", "cpu", "--output", folder);
        });
        var trained = DataFingerprint.Of(DataSource.OfFolder(gzFolder).Load());
        foreach (var (format, seedFolder) in new[] { ("cli idx", idxFolder), ("cli npy", npyFolder), ("cli csv", csvFolder) })
            Cases(format, CliCases, (seed, r, log) =>
            {
                string folder = Damaged(seedFolder, r, log);
                // a damaged copy that still holds the very same images and labels would train; such a case is read only
                bool same;
                try { same = DataFingerprint.Of(DataSource.OfFolder(folder).Load()) == trained; }
                catch (Gpu.Engine.UserError) { same = false; }
                if (!same) Cli(format, seed, log, "train", "--resume", runFolder, "--data", folder, "--device", "cpu");
            });
    }
}
