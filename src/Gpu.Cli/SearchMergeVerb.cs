using Gpu.Engine;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// <c>gpu search merge DIR</c>: the shards of a search (<c>gpu search --shard K/N --output DIR</c>, one per task of an
/// array job) combined into DIR as the unsharded search leaves it, ranked on validation; with --retrain the best is
/// retrained and its test accuracy reported, as <c>gpu search</c> does. <see cref="Program"/> turns the two words
/// "search merge" into this verb.
/// </summary>
[Verb("search merge", HelpText = "Combines the shards of a search ('gpu search --shard K/N --output DIR', e.g. the tasks of a Slurm array job) into DIR: search.csv with every trial, search.json and best.json, as an unsharded search writes them. Refuses shards of different grids or settings; reports missing trials by number and the shard that runs them (exit code 2).")]
internal sealed class SearchMergeVerb : IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Stop);

    [Word("DIR", "The --output folder of the sharded search, holding shard-K-of-N/ folders.")]
    public string? Folder { get; set; }

    [Flag(nameof(Flags.Retrain))]
    public bool Retrain { get; set; }

    [Flag(nameof(Flags.MergeDevice))]
    public string Device { get; set; } = "";

    public int Execute(TextWriter stdout, TextWriter stderr, CancellationToken stop)
    {
        string dir = Folder ?? throw new UserError("give the folder to merge: gpu search merge DIR (the --output of the sharded search)");
        try
        {
            Gpu.Search.Merge(dir, new MergeOptions { Retrain = Retrain, Device = Device, Say = stdout.WriteLine, Cancel = stop });
            return 0;
        }
        catch (OperationCanceledException stopped) when (stop.IsCancellationRequested)
        {
            stderr.WriteLine(stopped.Message);
            return 130;
        }
    }
}
