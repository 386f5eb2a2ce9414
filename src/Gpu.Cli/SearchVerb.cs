using Gpu.Engine.Settings;
using CommandLine;

namespace Gpu.Cli;

/// <summary>
/// <c>gpu search</c>: the grid from the setting flags' choices and --config, the data and device the flags name, then
/// <see cref="Gpu.Search.Run"/>, which runs the search and says every line printed; a stop prints where it stopped (exit code 130).
/// </summary>
[Verb("search", HelpText = "Hyperparameter grid search: train every combination on the training split, score it on the validation split, then retrain the best and report its test accuracy.")]
[Settings("val-fraction", "precision", GridAxes = true)]
internal sealed class SearchVerb : SettingsVerb, IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out, c.Err, c.Given, c.Stop);

    [Flag(nameof(Flags.SearchOutput), Required = true)]
    public string Output { get; set; } = "";

    [Flag(nameof(Flags.SearchConfig))]
    public string? Config { get; set; }

    [Flag(nameof(Flags.SearchData))]
    public string Data { get; set; } = "";

    [Flag(nameof(Flags.SearchLimit))]
    public int Limit { get; set; }

    [Flag(nameof(Flags.SearchDevice))]
    public string Device { get; set; } = "";

    [Flag(nameof(Flags.Shard))]
    public string? ShardText { get; set; }

    [Flag(nameof(Flags.SearchOverwrite))]
    public bool Overwrite { get; set; }

    public int Execute(TextWriter stdout, TextWriter stderr, IReadOnlySet<string> given, CancellationToken stop)
    {
        var grid = TrialGrid.Build(Settings.ApplyTo(new TrainOptions()), Settings.Choices, Config, given.Contains);
        var data = ImageData.Open(new DataFiles { Folder = Data }, Limit);
        using var device = Gpu.Device.Open(Device);
        try
        {
            Gpu.Search.Run(device, data, grid, new SearchOptions
            {
                Output = Output, Overwrite = Overwrite, Shard = ShardText, ShardFromEnvironment = true, Say = stdout.WriteLine, Cancel = stop,
            });
            return 0;
        }
        catch (OperationCanceledException stopped) when (stop.IsCancellationRequested)
        {
            stderr.WriteLine(stopped.Message);
            return 130;
        }
    }
}
