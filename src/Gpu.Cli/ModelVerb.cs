using Gpu.Engine.Runs;
using CommandLine;

namespace Gpu.Cli;

/// <summary>A verb that works on a trained model: the --model option, read and validated by <see cref="SavedModel.Read"/>.</summary>
internal abstract class ModelVerb
{
    [Option("model", Required = true, HelpText = "The --output folder of a 'gpu train' run (model.npy + model.json).")]
    public string Model { get; set; } = "";

    protected SavedModel ReadModel(TextWriter stdout)
    {
        var model = SavedModel.Read(Model);
        stdout.WriteLine($"model: {model.Describe()}");
        return model;
    }
}
