using Gpu.Engine.Runs;
using CommandLine;

namespace Gpu.Cli;

/// <summary>A verb that works on a trained model: the --model option, read and validated by <see cref="Gpu.Network.Load"/>.</summary>
internal abstract class ModelVerb
{
    [Flag(nameof(Flags.Model), Required = true)]
    public string Model { get; set; } = "";

    protected Gpu.Network ReadModel(TextWriter stdout)
    {
        var network = Gpu.Network.Load(Model);
        stdout.WriteLine(ModelLine(network.Folder!, network.Description, network.ParameterCount));
        return network;
    }

    /// <summary>The model as the engine's reader gives it, for the verbs that still work on it directly (eval, predict: see LayerTests' CliReachesInside).</summary>
    protected SavedModel ReadSavedModel(TextWriter stdout)
    {
        var model = SavedModel.Read(Model);
        stdout.WriteLine(ModelLine(model.Folder, model.Spec.Describe(), model.Spec.ParameterCount));
        return model;
    }

    /// <summary>"model: DIR (784-256-128-10 relu, softmax-ce, 235,146 parameters)"</summary>
    static string ModelLine(string folder, string description, int parameters) => $"model: {folder} ({description}, {parameters:N0} parameters)";
}
