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
        stdout.WriteLine($"model: {network.Folder} ({network.Description}, {network.ParameterCount:N0} parameters)");
        return network;
    }
}
