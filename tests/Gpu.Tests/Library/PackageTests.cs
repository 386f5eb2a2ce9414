using System.Diagnostics;
using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Gpu.Tests.Library;

/// <summary>
/// The packages as users get them: <c>dotnet pack</c> makes Gpu.Kernels, Gpu.Engine and the Gpu.Cli tool once
/// (a version of their own, so no earlier package in the NuGet cache stands in), then a fresh project copied from
/// examples/library restores Gpu.Engine from that folder (plus the machine's own package sources), builds and runs,
/// and the tool is installed into a temporary tool path and trains. The cache entries made here are removed at the end.
/// </summary>
[NonParallelizable]
public sealed class PackageTests
{
    string root = null!, feed = null!, version = null!;

    static readonly string Dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    [OneTimeSetUp]
    public void Pack()
    {
        root = Directory.CreateTempSubdirectory("gpu-packages-").FullName;
        feed = Path.Combine(root, "feed");
        version = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        // outputs under root (--artifacts-path): the repository's own bin/ and obj/ are left as the test run built them
        foreach (var project in new[] { "src/Gpu.Cli", "src/Gpu.Engine", "kernels/Gpu.Kernels" })
            Run(Repo.Root, 300, Dotnet, "pack", Path.Combine(Repo.Root, project), "-c", "Release", "-o", feed,
                "--artifacts-path", Path.Combine(root, "artifacts"), $"-p:Version={version}", "--disable-build-servers", "-nodeReuse:false");
    }

    [OneTimeTearDown]
    public void RemoveFolderAndCacheEntries()
    {
        if (root != null && Directory.Exists(root)) Directory.Delete(root, true);
        if (version == null) return;
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } c ? c
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        foreach (var id in new[] { "gpu.engine", "gpu.kernels", "gpu.cli" })
        {
            var entry = Path.Combine(cache, id, version.ToLowerInvariant());
            if (Directory.Exists(entry)) Directory.Delete(entry, true);
            var idFolder = Path.Combine(cache, id);
            if (Directory.Exists(idFolder) && !Directory.EnumerateFileSystemEntries(idFolder).Any()) Directory.Delete(idFolder);
        }
    }

    string Package(string id) => Path.Combine(feed, $"{id}.{version}.nupkg");

    static XElement Nuspec(ZipArchive zip, string id)
    {
        using var s = zip.GetEntry(id + ".nuspec")!.Open();
        return XElement.Load(s);
    }

    [Test]
    public void The_library_package_carries_docs_readme_licence_and_the_kernels_with_their_OpenCL_source()
    {
        using var engine = ZipFile.OpenRead(Package("Gpu.Engine"));
        var files = engine.Entries.Select(e => e.FullName).ToList();
        Assert.That(files, Is.SupersetOf(new[] { "lib/net10.0/Gpu.Engine.dll", "lib/net10.0/Gpu.Engine.xml", "README.md" }));
        var meta = Nuspec(engine, "Gpu.Engine").Elements().Single(e => e.Name.LocalName == "metadata");
        string Field(string name) => meta.Elements().Single(e => e.Name.LocalName == name).Value;
        Assert.That(Field("license"), Is.EqualTo("MIT"));
        Assert.That(Field("readme"), Is.EqualTo("README.md"));
        Assert.That(Field("version"), Is.EqualTo(version));
        var kernelsDependency = meta.Descendants().Single(e => e.Name.LocalName == "dependency" && (string?)e.Attribute("id") == "Gpu.Kernels");
        Assert.That((string?)kernelsDependency.Attribute("version"), Is.EqualTo(version), "Gpu.Engine depends on the Gpu.Kernels packed with it");
        using (var xml = engine.GetEntry("lib/net10.0/Gpu.Engine.xml")!.Open())
            Assert.That(XElement.Load(xml).Descendants("member").Select(m => (string?)m.Attribute("name")), Does.Contain("M:Gpu.Network.Train(Gpu.Device,Gpu.ImageData,Gpu.Engine.Settings.TrainOptions,System.Action{Gpu.TrainingProgress},System.Threading.CancellationToken,System.String)"));

        using var kernels = ZipFile.OpenRead(Package("Gpu.Kernels"));
        var dll = new MemoryStream();
        using (var s = kernels.GetEntry("lib/net10.0/Gpu.Kernels.dll")!.Open()) s.CopyTo(dll);
        dll.Position = 0;
        using var pe = new PEReader(dll);
        var md = pe.GetMetadataReader();
        var resources = md.ManifestResources.Select(h => md.GetString(md.GetManifestResource(h).Name)).ToList();
        Assert.That(resources, Does.Contain("Gpu.Kernels.OpenCl.dense_layers.cl"), "the OpenCL C source is embedded in the kernels assembly");
        Assert.That(Nuspec(kernels, "Gpu.Kernels").Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string?)e.Attribute("id")),
            Is.SupersetOf(new[] { "ILGPU", "ILGPU.Algorithms" }));
    }

    [Test]
    public void A_fresh_project_builds_and_runs_the_example_from_the_package()
    {
        string example = Path.Combine(Repo.Root, "examples", "library");
        var program = File.ReadAllLines(Path.Combine(example, "Program.cs"));
        Assert.That(program, Has.Length.LessThan(30), "the example stays under 30 lines");
        Assert.That(program.Where(l => Regex.IsMatch(l, @"^using [\w.]+;$")), Is.EqualTo(new[] { "using Gpu;", "using Gpu.Engine.Settings;" }), "the example uses the API only");
        string csproj = File.ReadAllText(Path.Combine(example, "library.csproj"));
        Assert.That(csproj, Does.Contain("<PackageReference Include=\"Gpu.Engine\"").And.Not.Contain("ProjectReference"));

        string project = Directory.CreateDirectory(Path.Combine(root, "example")).FullName;
        foreach (var file in new[] { "Program.cs", "library.csproj" }) File.Copy(Path.Combine(example, file), Path.Combine(project, file));
        File.WriteAllText(Path.Combine(project, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="gpu-test-feed" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        Run(project, 300, Dotnet, "build", "-c", "Release", $"-p:GpuEngineVersion={version}", "--disable-build-servers", "-nodeReuse:false");
        var output = Run(project, 300, Dotnet, Path.Combine(project, "bin", "Release", "net10.0", "library.dll"), Repo.FashionMnist, "2000", "1");

        Assert.That(output, Does.StartWith("device: "));
        Assert.That(output, Does.Contain("epoch   1/1 loss "));
        Assert.That(Regex.Match(output, @"784-128-10 relu, softmax-ce: test accuracy (0\.\d{4}), loss \d+\.\d{4} on 10000 images").Success, output);
        Assert.That(Regex.Matches(output, @"^test image \d: .+ \(.+\), label .+$", RegexOptions.Multiline), Has.Count.EqualTo(5), output);
        var r = CliRun.Run("eval", "--model", Path.Combine(project, "example-model"), "--device", "cpu");
        Assert.That(r.Code, Is.Zero, "gpu eval reads the model the example saved: " + r.Err);
    }

    [Test]
    public void The_tool_installs_from_the_folder_and_trains()
    {
        string tools = Path.Combine(root, "tools");
        Run(root, 300, Dotnet, "tool", "install", "--tool-path", tools, "--add-source", feed, "Gpu.Cli", "--version", version);
        string gpu = Path.Combine(tools, OperatingSystem.IsWindows() ? "gpu.exe" : "gpu");
        Assert.That(Run(root, 60, gpu, "--help"), Does.Contain("train").And.Contain("predict"));
        // from the repository root, as README's quick start runs it: the default --data data/fashion-mnist is found there
        var output = Run(Repo.Root, 300, gpu, "train", "--limit", "2000", "--epochs", "1");
        Assert.That(output, Does.Contain("data: data/fashion-mnist, 2,000 training images"));
        Assert.That(output, Does.Contain("epoch   1/1 loss "));
        Assert.That(Regex.Match(output, @"test accuracy 0\.\d{4}, test loss \d+\.\d{4} \(10,000 images\); 1,800 train / 200 validation images").Success, output);
    }

    /// <summary>Runs a program to its end in <paramref name="folder"/>; a non-zero exit fails the test with its output. Returns stdout.</summary>
    static string Run(string folder, int timeoutSeconds, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file, args) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(file)} {string.Join(" ", args)} ran past {timeoutSeconds} s");
        }
        p.WaitForExit();
        string output = stdout.Result, errors = stderr.Result;
        Assert.That(p.ExitCode, Is.Zero, $"{Path.GetFileName(file)} {string.Join(" ", args)} in {folder}:\n{output}\n{errors}");
        return output;
    }
}
