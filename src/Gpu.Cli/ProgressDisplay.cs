using System.Diagnostics;
using Spectre.Console;

namespace Gpu.Cli;

/// <summary>
/// Shows a training run's progress: a live Spectre.Console bar (rate, time left) when stdout is a
/// terminal, plain periodic lines otherwise (CI, pipes; no escape codes). It is driven by the
/// trainer's host-side step counter, so it never makes the host wait for the device.
/// </summary>
internal abstract class ProgressDisplay
{
    public static ProgressDisplay For(TextWriter stdout, bool terminal) =>
        terminal ? new LiveProgress() : new PlainProgress(stdout, TimeSpan.FromSeconds(15));

    /// <summary>Runs <paramref name="work"/> while the display is shown.</summary>
    public abstract T Run<T>(Func<T> work);

    /// <summary>A permanent line of output (the per-epoch lines).</summary>
    public abstract void Line(string text);

    /// <summary>Called after every training step.</summary>
    public abstract void Step(StepReport p);

    /// <summary>
    /// A (done, total) reporter for work other than training steps: writes "  {what} done/total (p%), T left"
    /// through <paramref name="line"/> at most every 15 seconds (timed from the first call; never for the last item).
    /// </summary>
    public static Action<int, int> Counter(Action<string> line, string what)
    {
        var clock = new Stopwatch();
        var last = TimeSpan.Zero;
        return (done, total) =>
        {
            if (!clock.IsRunning) clock.Start();
            if (clock.Elapsed - last < TimeSpan.FromSeconds(15) || done == total) return;
            last = clock.Elapsed;
            line($"  {what} {done:N0}/{total:N0} ({100.0 * done / total:F0}%), {Duration(clock.Elapsed.TotalSeconds * (total - done) / done)} left");
        };
    }

    /// <summary>"1h 02m", "3m 05s", "42s" (the search's trial lines, written by the engine, say times in the same words: Experiments/SearchRun.Duration)</summary>
    public static string Duration(double seconds)
    {
        if (!double.IsFinite(seconds) || seconds < 0) return "?";
        var t = TimeSpan.FromSeconds(Math.Round(seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h {t.Minutes:D2}m" : t.TotalMinutes >= 1 ? $"{t.Minutes}m {t.Seconds:D2}s" : $"{t.Seconds}s";
    }
}

/// <summary>Plain lines every <c>interval</c>: where the run is, its rate and the time left. For pipes and logs.</summary>
internal sealed class PlainProgress(TextWriter stdout, TimeSpan interval) : ProgressDisplay
{
    readonly Stopwatch clock = Stopwatch.StartNew();
    TimeSpan last;
    long firstStep = -1;

    public override T Run<T>(Func<T> work) => work();
    public override void Line(string text) => stdout.WriteLine(text);

    public override void Step(StepReport p)
    {
        if (firstStep < 0) { firstStep = p.GlobalStep - 1; clock.Restart(); last = TimeSpan.Zero; }
        var now = clock.Elapsed;
        if (now - last < interval || p.Step == p.StepsPerEpoch) return;   // the epoch line follows at epoch end anyway
        last = now;
        double stepsPerSecond = (p.GlobalStep - firstStep) / now.TotalSeconds;
        // progress within the epoch and over the run, each named: "epoch 2/10, step 90/422 (21%); run 12% done; ..."
        double rate = stepsPerSecond * p.BatchSize;
        stdout.WriteLine($"  epoch {p.Epoch}/{p.Epochs}, step {p.Step}/{p.StepsPerEpoch} ({100.0 * p.Step / p.StepsPerEpoch:F0}%); " +
            $"run {100.0 * p.GlobalStep / p.TotalSteps:F0}% done; {(rate >= 100_000 ? $"{rate / 1000:F0}k" : $"{rate:N0}")} samples/s; " +
            $"{Duration((p.TotalSteps - p.GlobalStep) / stepsPerSecond)} left");
    }
}

/// <summary>A live bar at the bottom of the terminal; epoch lines scroll above it.</summary>
internal sealed class LiveProgress : ProgressDisplay
{
    ProgressTask? task;
    readonly Stopwatch clock = new();
    long firstStep = -1;

    public override T Run<T>(Func<T> work) =>
        AnsiConsole.Progress()
            .AutoClear(true)
            .HideCompleted(true)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 20 },
                new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                task = ctx.AddTask("starting", maxValue: 1);
                try { return work(); }
                finally { task.StopTask(); }
            });

    public override void Line(string text) => AnsiConsole.Console.WriteLine(text);

    public override void Step(StepReport p)
    {
        if (task == null) return;
        if (firstStep < 0) { firstStep = p.GlobalStep - 1; clock.Start(); }
        double rate = (p.GlobalStep - firstStep) * p.BatchSize / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        task.MaxValue = p.TotalSteps;
        task.Value = p.GlobalStep;
        if (p.Step == 1 || p.Step % 16 == 0 || p.Step == p.StepsPerEpoch)
            task.Description = Markup.Escape($"epoch {p.Epoch}/{p.Epochs}, step {p.Step}/{p.StepsPerEpoch}, {rate:N0} samples/s; run");   // the bar and percentage that follow are the run's
    }
}
