using System.Runtime.InteropServices;
using Gpu.Engine;
using CommandLine.Text;
using CommandLine;

namespace Gpu.Cli;

/// <summary>What a verb runs with: the program's output and error writers, the flags given (with dashes), the stop request (Ctrl-C, SIGTERM) and whether stdout is a terminal.</summary>
internal sealed record VerbContext(TextWriter Out, TextWriter Err, IReadOnlySet<string> Given, CancellationToken Stop, bool Terminal);

/// <summary>A verb of the program: one class per verb, listed in <see cref="Program.VerbTypes"/>.</summary>
internal interface IVerb
{
    int Execute(VerbContext c);
}

/// <summary>
/// Entry point: parses the verb, runs it, and turns every error a user can cause into one line on
/// stderr and a non-zero exit code (2: bad input, 3: training diverged, 4: device fault, 130: interrupted, 1: internal error).
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        // Ctrl-C (SIGINT) or SIGTERM: train finishes the current step and writes a checkpoint, search finishes the current trial; exit 130. A second Ctrl-C kills at once.
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (stop.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine("stopping: train after the current step, with a checkpoint; search after the current trial (Ctrl-C again to abort at once)...");
            stop.Cancel();
        };
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        return Run(args, Console.Out, Console.Error, stop.Token, terminal: !Console.IsOutputRedirected);
    }

    /// <summary>Runs the program; <paramref name="stop"/> requests an interruption, <paramref name="terminal"/> enables the live progress bar.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, CancellationToken stop = default, bool terminal = false)
    {
        if (args.Length is 2 or 3 && args[0] == "help") args = [.. args[1..], "--help"];   // "gpu help train" == "gpu train --help"
        if (args.Length >= 2 && args[0] == "search" && args[1] == "merge") args = [MergeVerb, .. args[2..]];   // a verb of two words
        return Guard(stderr, () =>
        {
            var verb = VerbTypes.FirstOrDefault(t => args.Length > 0 && VerbHelp.Name(t) == args[0]);
            if (verb != null)
            {
                if (args.Skip(1).Contains("--help"))
                {
                    stdout.WriteLine(VerbHelp.Render(verb, Heading));
                    return 0;
                }
                var bound = VerbParser.Parse(verb, args[1..], out var given);
                return bound.Execute(new VerbContext(stdout, stderr, given, stop, terminal));
            }
            // no verb, an unknown one, --help or --version: CommandLineParser's verb list and messages
            using var parser = new Parser(s =>
            {
                s.HelpWriter = null;
                s.AutoHelp = true;
                s.AutoVersion = true;
            });
            var result = parser.ParseArguments(args, VerbTypes);
            return result.MapResult((object _) => throw new InvalidOperationException("a verb parsed by CommandLineParser"),
                errors => ReportParseErrors(result, errors.ToList(), stdout, stderr));
        });
    }

    /// <summary>
    /// The program's error boundary: runs <paramref name="body"/> and turns a <see cref="UserError"/> into one
    /// "error: ..." line and its exit code, and anything else into one "internal error: ..." line and exit code 1
    /// (a bug: GPU_TRACE=1 prints the stack trace too).
    /// </summary>
    public static int Guard(TextWriter stderr, Func<int> body)
    {
        try { return body(); }
        catch (UserError e)
        {
            stderr.WriteLine($"error: {e.Message.Replace('\n', ' ')}");
            return e.ExitCode;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"internal error: {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()} (set GPU_TRACE=1 for details)");
            if (Environment.GetEnvironmentVariable("GPU_TRACE") == "1") stderr.WriteLine(e);
            return 1;
        }
    }

    /// <summary>
    /// How the user can run this program again from the folder they are in: "gpu" when a gpu on the PATH is
    /// this program (or when it runs inside another host, such as the tests), else the path of this program
    /// ("src/Gpu.Cli/bin/Release/net10.0/gpu", what 'dotnet run' builds), or "dotnet PATH/gpu.dll".
    /// </summary>
    public static string Command
    {
        get
        {
            string? self = Environment.ProcessPath;
            if (self != null && Path.GetFileNameWithoutExtension(self) == "gpu")
                return OnPath("gpu") is string found && SameFile(found, self) ? "gpu" : Shown(self);
            // Not Assembly.Location: it is empty in a single-file publish (benchmarks/gpu/publish.sh --cli), warning IL3000.
            if (System.Reflection.Assembly.GetEntryAssembly()?.GetName().Name != "gpu") return "gpu";
            string entry = Path.Combine(AppContext.BaseDirectory, "gpu.dll");
            return File.Exists(entry) ? $"dotnet {Shown(entry)}" : "gpu";
        }
    }

    static string? OnPath(string name) => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
        .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    static bool SameFile(string a, string b)
    {
        static string Real(string p) => new FileInfo(p).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(p);
        try { return Real(a) == Real(b); } catch (IOException) { return false; }
    }

    /// <summary>A path as short as it can be typed from the working folder: relative below it, else absolute.</summary>
    static string Shown(string path)
    {
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, path);
        return relative.StartsWith("..") || Path.IsPathRooted(relative) ? path : relative.Contains('/') ? relative : "./" + relative;
    }

    /// <summary>The verbs' names, in <see cref="VerbTypes"/>' order: "train, eval, ...".</summary>
    static string Verbs => string.Join(", ", VerbTypes.Select(VerbHelp.Name));

    /// <summary>"search merge": the verb <see cref="SearchMergeVerb"/>, typed as two words, which CommandLineParser sees as one.</summary>
    const string MergeVerb = "search merge";

    /// <summary>Every verb, the one list: parsing, dispatch (each is an <see cref="IVerb"/>), help and the error messages read it.</summary>
    internal static readonly Type[] VerbTypes =
        [typeof(TrainVerb), typeof(EvalVerb), typeof(PredictVerb), typeof(WeightsVerb), typeof(ExportVerb), typeof(SearchVerb), typeof(SearchMergeVerb), typeof(GradcheckVerb), typeof(LandscapeVerb), typeof(DevicesVerb), typeof(CheckVerb)];

    const string Heading = "gpu: train multilayer perceptrons on ILGPU kernels (CUDA, OpenCL or the CPU accelerator)";

    static int ReportParseErrors<T>(ParserResult<T> result, List<Error> errors, TextWriter stdout, TextWriter stderr)
    {
        if (errors.Any(e => e is HelpRequestedError or HelpVerbRequestedError or VersionRequestedError))
        {
            var help = errors.Any(e => e is VersionRequestedError)
                ? HeadingInfo.Default.ToString()
                : HelpText.AutoBuild(result, h =>
                {
                    h.AdditionalNewLineAfterOption = false;
                    h.Heading = Heading;
                    h.Copyright = "";
                    if (Verb(result) is VerbAttribute v) h.AddPreOptionsLine($"gpu {v.Name}: {v.HelpText}");   // a verb's own help says what it does
                    return HelpText.DefaultParsingErrorsHandler(result, h);
                }, e => e, verbsIndex: result.TypeInfo.Current == typeof(NullInstance));
            stdout.WriteLine(help);
            return 0;
        }
        var first = errors.First();
        string verb = args0(result);
        string message = first switch
        {
            NoVerbSelectedError => $"no verb given; use one of: {Verbs} (see 'gpu --help')",
            BadVerbSelectedError b => $"unknown verb '{b.Token}'; use one of: {Verbs} (see 'gpu --help')",
            UnknownOptionError u => $"unknown option '{Dash(u.Token)}'{verb}; see 'gpu{VerbName(result)} --help'",
            BadFormatConversionError f => $"option '{Dash(f.NameInfo.NameText)}' got a value that is not valid{verb}; see 'gpu{VerbName(result)} --help'",
            MissingValueOptionError m => $"option '{Dash(m.NameInfo.NameText)}' needs a value; see 'gpu{VerbName(result)} --help'",
            RepeatedOptionError r => $"option '{Dash(r.NameInfo.NameText)}' given more than once",
            MissingRequiredOptionError m => $"option '{Dash(m.NameInfo.NameText)}' is required; see 'gpu{VerbName(result)} --help'",
            _ => $"bad command line ({first.Tag}); see 'gpu --help'",
        };
        stderr.WriteLine($"error: {message}");
        return 2;
    }

    static string Dash(string name) => name.StartsWith('-') ? name : (name.Length == 1 ? "-" + name : "--" + name);
    static VerbAttribute? Verb<T>(ParserResult<T> r) => r.TypeInfo.Current.GetCustomAttributes(typeof(VerbAttribute), false).FirstOrDefault() as VerbAttribute;
    static string VerbName<T>(ParserResult<T> r) => Verb(r) is VerbAttribute v ? " " + v.Name : "";
    static string args0<T>(ParserResult<T> r) => VerbName(r) is { Length: > 0 } v ? $" for '{v.Trim()}'" : "";
}
