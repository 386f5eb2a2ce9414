
using CommandLine;

namespace Gpu.Cli;

[Verb("devices", HelpText = "List the devices ILGPU sees, and why any of them cannot be used.")]
internal sealed class DevicesVerb : IVerb
{
    int IVerb.Execute(VerbContext c) => Execute(c.Out);

    public int Execute(TextWriter stdout)
    {
        var list = Device.List();
        stdout.WriteLine($"{"id",-10} {"kind",-10} {"usable",-6} {"memory",10}  name / note");
        foreach (var d in list)
        {
            string mem = d.MemoryBytes > 0 ? $"{d.MemoryBytes / (1024.0 * 1024 * 1024):F1} GiB" : "-";
            stdout.WriteLine($"{d.Id,-10} {d.Kind,-10} {(d.Usable ? "yes" : "no"),-6} {mem,10}  {d.Name}: {d.Note}");
        }
        using var chosen = Device.Open("auto");
        stdout.WriteLine($"--device auto picks {chosen.Description}");
        return 0;
    }
}
