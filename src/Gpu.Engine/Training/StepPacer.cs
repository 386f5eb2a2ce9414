namespace Gpu.Engine.Training;

/// <summary>
/// How far the host may run ahead of the device inside an epoch. Launches are asynchronous: without a wait, the host
/// enqueues a whole epoch in moments (on OpenCL and CUDA, more so with CUDA graph replays), so a stop request, the
/// progress line and a divergence read all see steps the device has not run. The pacer says when to wait: after a
/// number of steps sized so that about <see cref="Target"/> of device work lies between two waits, measured from the
/// last waits (one step at first, then at most doubling), so a Ctrl-C or SIGTERM is answered within about that time of
/// the current step and progress is never more than that ahead. A wait costs the device one queue drain, a few
/// microseconds to a millisecond, four times a second: nothing measurable against the steps in between.
/// </summary>
internal sealed class StepPacer(TimeSpan target)
{
    /// <summary>The device work between two waits the engine aims at.</summary>
    public static readonly TimeSpan Target = TimeSpan.FromSeconds(0.25);

    int pending, limit = 1;

    /// <summary>Steps enqueued since the last wait.</summary>
    public int Pending => pending;

    /// <summary>Steps the next wait comes after.</summary>
    public int Limit => limit;

    /// <summary>Counts one enqueued step; true when the caller should now wait for the device.</summary>
    public bool Step() => ++pending >= limit;

    /// <summary>
    /// After a wait that drained <see cref="Pending"/> steps in <paramref name="elapsed"/> (since the previous wait): the
    /// next limit, so that its steps take about the target (at least one step, at most twice as many as this time).
    /// </summary>
    public void Waited(TimeSpan elapsed)
    {
        double perStep = elapsed.TotalSeconds / Math.Max(1, pending);
        double fits = perStep > 0 ? target.TotalSeconds / perStep : double.PositiveInfinity;
        limit = (int)Math.Clamp(Math.Floor(fits), 1, Math.Max(2, 2L * pending));
        pending = 0;
    }
}
