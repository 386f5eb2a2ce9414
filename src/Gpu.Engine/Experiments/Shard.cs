using System.Globalization;
using System.Text.RegularExpressions;

namespace Gpu.Engine.Experiments;

/// <summary>
/// One part of a grid search run by one process of many: shard <see cref="Index"/> (0 to Count-1) of
/// <see cref="Count"/> runs the trials whose grid index (trial number - 1, in the grid's own order) is
/// Index modulo Count, so every shard agrees on the split without talking to the others.
/// <see cref="Source"/> says where it came from, in words: "--shard 1/3" or the array job's variables.
/// </summary>
internal sealed partial record Shard(int Index, int Count, string Source)
{
    /// <summary>The variables of a Slurm array job (set by Slurm in every task).</summary>
    public const string SlurmIndex = "SLURM_ARRAY_TASK_ID", SlurmCount = "SLURM_ARRAY_TASK_COUNT";

    /// <summary>
    /// The variables of a Kubernetes Indexed Job: the index is set by Kubernetes in every pod; the count is
    /// not, so the Job passes its completions in <see cref="KubernetesCount"/> (examples/kubernetes/search-indexed-job.yaml).
    /// </summary>
    public const string KubernetesIndex = "JOB_COMPLETION_INDEX", KubernetesCount = "JOB_COMPLETIONS";

    /// <summary>Whether this shard runs trial <paramref name="t"/>.</summary>
    public bool Owns(Trial t) => (t.Number - 1) % Count == Index;

    /// <summary>The shard that runs trial number <paramref name="number"/> of a grid split in <paramref name="count"/>.</summary>
    public static int IndexOf(int number, int count) => (number - 1) % count;

    /// <summary>"1/3"</summary>
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>The folder a shard writes inside the search's output folder: "shard-1-of-3".</summary>
    public string FolderName => $"shard-{Index}-of-{Count}";

    /// <summary>The shard a folder name names ("shard-1-of-3"), or null when it is not a shard folder's name.</summary>
    public static Shard? FromFolderName(string name)
    {
        var m = FolderPattern().Match(name);
        if (!m.Success || !int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            || !int.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || k >= n) return null;
        return new Shard(k, n, name);
    }

    [GeneratedRegex(@"^shard-([0-9]+)-of-([0-9]+)$")]
    private static partial Regex FolderPattern();

    /// <summary>"K/N" as --shard takes it: shard K (0 to N-1) of N. Anything else is a one-line <see cref="UserError"/>.</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new UserError($"--shard '{text}': give K/N, shard K (0 to N-1) of N shards, e.g. --shard 0/4");
        return Make(k, n, $"--shard {text}", "");
    }

    /// <summary>
    /// The shard an array job's environment gives (<paramref name="env"/> reads a variable): Slurm's
    /// <see cref="SlurmIndex"/> and <see cref="SlurmCount"/>, else Kubernetes' <see cref="KubernetesIndex"/> and
    /// <see cref="KubernetesCount"/>; null when neither index is set. An index without its count, or values
    /// that do not make a shard, are a one-line <see cref="UserError"/>.
    /// </summary>
    public static Shard? FromEnvironment(Func<string, string?> env)
    {
        foreach (var (index, count, what) in new[] { (SlurmIndex, SlurmCount, "Slurm array job"), (KubernetesIndex, KubernetesCount, "Kubernetes Indexed Job") })
        {
            string? k = env(index);
            if (string.IsNullOrEmpty(k)) continue;
            string? n = env(count);
            if (string.IsNullOrEmpty(n))
                throw new UserError(index == SlurmIndex
                    ? $"{index}={k} is set but {count} is not (Slurm older than 18.08?); pass the shard yourself: --shard {k}/N"
                    : $"{index}={k} is set but {count} is not; give the Job's completions to the pod as {count} (see examples/kubernetes/search-indexed-job.yaml), or pass --shard {k}/N");
            if (!int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out int ki) || !int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int ni))
                throw new UserError($"{index}={k}, {count}={n}: not whole numbers; pass the shard yourself: --shard K/N");
            string source = $"{index}={k}, {count}={n} ({what})";
            string fix = index == SlurmIndex
                ? "; submit the array as --array=0-(N-1) without a step, or run one shard with --shard K/N"
                : $"; set {count} to the Job's completions, or run one shard with --shard K/N";
            return Make(ki, ni, source, fix);
        }
        return null;
    }

    static Shard Make(int k, int n, string source, string fix)
    {
        if (n < 1) throw new UserError($"{source}: a search needs at least 1 shard (K/N with N >= 1, e.g. 0/4){fix}");
        if (k >= n) throw new UserError($"{source}: there is no shard {k} of {n}, the shards are 0 to {n - 1}{fix}");
        return new Shard(k, n, source);
    }
}
